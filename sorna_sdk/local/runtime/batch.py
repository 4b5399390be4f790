"""Batch mode: the build and exec shell commands, with the ``"*"`` per-language defaults.

Planning is bounded: the options are checked without touching the disk, and ``build: "*"``
costs at most two ``stat`` calls in the work dir (``Makefile``, ``setup.py``; they follow a
link as ``make`` would, and a loop or a missing permission just means "no such file").
``plan`` does those in a thread; ``plan_batch`` is the blocking form.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sorna_sdk.local.runtime.errors import InvalidParameters

__all__ = ["MAX_COMMAND_BYTES", "BatchPlan", "plan", "plan_batch"]

#: Bytes (UTF-8) of a build or exec command, at most: one ``bash -c`` argument (MAX_ARG_STRLEN).
MAX_COMMAND_BYTES: Final = 128 * 1024 - 1
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)

# Runs a Lua file with the same lupa Lua 5.4 the lua5 kernel uses.
_LUA_RUNNER: Final = (
    "import sys, lupa.lua54 as L\n"
    "rt = L.LuaRuntime(register_eval=False)\n"
    "try:\n"
    "    rt.execute(open(sys.argv[1], encoding='utf-8').read())\n"
    "except L.LuaError as e:\n"
    "    print(e, file=sys.stderr); sys.exit(1)\n"
)


@dataclass(frozen=True)
class BatchPlan:
    """Shell commands of a batch run (None = skip the step)."""

    build: str | None
    exec: str | None
    build_log: bool


def _python() -> str:
    return shlex.quote(sys.executable)


def _is_file(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _default_build(lang: str, workdir: Path) -> str | None:
    """Blocking: ``make`` if there is a Makefile, ``setup.py build`` for python3, else None."""
    try:
        dir_fd = os.open(workdir, _DIR_FLAGS)
    except OSError:
        return None
    try:
        if _is_file(dir_fd, "Makefile"):
            return "make"
        if lang == "python3" and _is_file(dir_fd, "setup.py"):
            return f"{_python()} setup.py build"
        return None
    finally:
        os.close(dir_fd)


def _default_exec(lang: str) -> str | None:
    if lang == "python3":
        return f"{_python()} main.py"
    if lang == "lua5":
        return f"{_python()} -c {shlex.quote(_LUA_RUNNER)} main.lua"
    if lang == "bash":
        return "bash main.sh"
    if lang == "nodejs":
        return "node main.js"
    return None


def _command(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidParameters(f"batch option {name!r} must be a string or null")
    if "\x00" in value:
        raise InvalidParameters(f"batch option {name!r} must not contain NUL")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidParameters(f"batch option {name!r} is not valid Unicode") from None
    if size > MAX_COMMAND_BYTES:
        raise InvalidParameters(
            f"batch option {name!r} is too long: {size} bytes (at most {MAX_COMMAND_BYTES})"
        )
    return value


def _options(options: dict[str, Any]) -> tuple[str | None, str | None, bool]:
    build = _command(options.get("build"), "build")
    run = _command(options.get("exec"), "exec")
    build_log = options.get("buildLog", True)
    if not isinstance(build_log, bool):
        raise InvalidParameters("batch option 'buildLog' must be a boolean")
    return build, run, build_log


def plan_batch(lang: str, workdir: Path, options: dict[str, Any]) -> BatchPlan:
    """Blocking: validate batch options and resolve ``"*"`` to the language's defaults."""
    build, run, build_log = _options(options)
    if build == "*":
        build = _default_build(lang, workdir)
    if run == "*":
        run = _default_exec(lang)
    return BatchPlan(build=build, exec=run, build_log=build_log)


async def plan(lang: str, workdir: Path, options: dict[str, Any]) -> BatchPlan:
    """``plan_batch`` with its disk look-ups (``build: "*"`` only) in a thread.

    Raises ``InvalidParameters`` before anything is looked up.
    """
    build, run, build_log = _options(options)
    if build == "*":
        build = await asyncio.to_thread(_default_build, lang, workdir)
    if run == "*":
        run = _default_exec(lang)
    return BatchPlan(build=build, exec=run, build_log=build_log)
