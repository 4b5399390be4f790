"""Best-effort error objects from a failed run's text (what a real Backend.AI server returns).

The local gateway reports real exception data (``error`` on the wire); other servers send only
an exit code and stderr, so the error is read from the stderr text, ANSI colour codes stripped:
Python tracebacks (``Name: value`` last line), node errors (``Name: message`` then ``at`` lines),
Lua messages, and for anything else the exit code and the last stderr line.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["derive_error", "strip_ansi"]

#: CSI sequences (colours, cursor moves) and OSC sequences (titles, links).
_ANSI: Final = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]"
)
_PY_LAST: Final = re.compile(r"^([A-Za-z_][\w.]*)(?::\s?(.*))?$")
_PY_START: Final = "Traceback (most recent call last):"
_NODE: Final = re.compile(r"^(?:Uncaught\s+)?([A-Z]\w*(?:Error|Exception)?)(?:\s\[\w+\])?:\s(.*)$")
_LUA: Final = re.compile(r"^(?:lua\d*(?:\.\d+)?:\s)?(?:.+?:\d+:\s)(.*)$")


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences."""
    return _ANSI.sub("", text)


def derive_error(stderr: str, exit_code: int | None) -> tuple[str, str, list[str]] | None:
    """``(name, value, traceback lines)`` read from a failed run's stderr, or ``None``.

    ``exit_code`` ``None`` (the server did not say) derives only from a recognisable
    Python traceback; ``0`` derives nothing.
    """
    text = strip_ansi(stderr)
    lines = text.splitlines(keepends=True)
    python = _python(lines)
    if python is not None:
        return python
    if not exit_code:
        return None
    return _node(lines) or _lua(lines) or _generic(lines, exit_code)


def _python(lines: list[str]) -> tuple[str, str, list[str]] | None:
    starts = [i for i, line in enumerate(lines) if line.rstrip("\r\n") == _PY_START]
    start = starts[-1] if starts else _syntax_error_start(lines)
    if start is None:
        return None
    block = lines[start:]
    for line in reversed(block):
        stripped = line.strip()
        if not stripped:
            continue
        match = _PY_LAST.match(stripped)
        if match is None or line[:1].isspace():
            return None
        return match.group(1), match.group(2) or "", block
    return None


def _syntax_error_start(lines: list[str]) -> int | None:
    # A SyntaxError of the main code has no "Traceback" line: File ... / code / ^ / Name: msg.
    for index, line in enumerate(lines):
        if line.startswith('  File "') and any(
            re.match(r"^(Syntax|Indentation|Tab)Error\b", later) for later in lines[index:]
        ):
            return index
    return None


def _node(lines: list[str]) -> tuple[str, str, list[str]] | None:
    for index, line in enumerate(lines):
        match = _NODE.match(line.rstrip("\r\n"))
        if match is None:
            continue
        stack = [line]
        for later in lines[index + 1 :]:
            if not later.lstrip().startswith("at "):
                break
            stack.append(later)
        if len(stack) > 1 or line.startswith("Uncaught"):
            return match.group(1), match.group(2), stack
    return None


def _lua(lines: list[str]) -> tuple[str, str, list[str]] | None:
    for index, line in enumerate(lines):
        stripped = line.rstrip("\r\n")
        match = _LUA.match(stripped)
        if match is None:
            continue
        rest = lines[index:]
        if any(item.startswith("stack traceback:") for item in rest) or stripped.startswith("lua"):
            return "LuaError", match.group(1), rest
    return None


def _generic(lines: list[str], exit_code: int) -> tuple[str, str, list[str]]:
    last = next((line.strip() for line in reversed(lines) if line.strip()), "")
    return "NonZeroExit", last or f"exit code {exit_code}", lines
