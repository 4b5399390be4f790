"""``sorna run``: run code or files in a kernel and stream its output."""

from __future__ import annotations

import contextlib
import getpass
import json
import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from ..exceptions import (
    ExecutionError,
    InvalidArgumentError,
    KernelNotFoundError,
    SornaError,
    StreamResumeError,
)
from ..kernels import Kernel
from ..live import InputRequest, LiveRun, OutputEvent, ResultEvent
from ..models import ExecMode, ExecutionResult
from ..session import Session
from ._output import Printer

__all__ = [
    "EXEC_TIMEOUT_EXIT",
    "entry_command",
    "plan_files",
    "run_command",
    "start_kernel",
    "upload_names",
]

#: Exit status when the kernel's execution time limit ended the run (as timeout(1) does).
EXEC_TIMEOUT_EXIT = 124
#: Exit status of a run ended by Ctrl-C (as a shell reports SIGINT).
INTERRUPTED_EXIT = 130


def run_command(
    session: Session,
    *,
    lang: str,
    code: str | None,
    files: list[str],
    build: str | None,
    exec_cmd: str | None,
    token: str | None,
    exec_timeout: int,
    printer: Printer,
    as_json: bool,
    read_line: Callable[[str, bool], str] | None = None,
) -> int:
    """Run and return the process exit status."""
    if (code is None) == (not files):
        raise InvalidArgumentError("give either -c CODE or one or more FILEs")
    mode: ExecMode
    opts: Mapping[str, Any] | None
    if files:
        names = upload_names(files)
        mode, opts, first = plan_files(lang, names[0], build, exec_cmd)
    else:
        mode, opts, first = "query", None, code or ""
    kern = start_kernel(session, lang, token, printer, exec_timeout=exec_timeout)
    try:
        if files:
            with printer.progress(f"uploading {len(files)} file(s)"):
                kern.upload(files, base_dir=Path.cwd())
        answer = read_line or _read_line
        result = _loop(kern, first, mode, opts, printer, as_json, answer)
    finally:
        if token is None:
            _discard(kern)
    if as_json:
        print(json.dumps({"kernelId": kern.kernel_id, **result.to_dict()}), flush=True)
    return _exit_status(result, printer)


#: How ``sorna run LANG FILE...`` runs its first file, per language (the names Sorna
#: servers and Backend.AI images use): the default entry that batch mode's ``"*"`` runs, and
#: the command for any other file (``{}``: its quoted name).
_ENTRIES: dict[str, tuple[str, str]] = {
    "python3": ("main.py", "python3 {}"),
    "lua5": ("main.lua", "lua {}"),
    "bash": ("main.sh", "bash {}"),
    "nodejs": ("main.js", "node {}"),
}
_ALIASES: dict[str, str] = {
    **{name: "python3" for name in ("python3", "python", "python3x", "kernel-python")},
    **{name: "lua5" for name in ("lua5", "lua", "kernel-lua")},
    **{name: "bash" for name in ("bash", "shell", "sh")},
    **{name: "nodejs" for name in ("nodejs", "node", "javascript", "js", "nodejs6")},
    "kernel-nodejs": "nodejs",
}


def language_of(lang: str) -> str | None:
    """The canonical language ``lang`` names (an alias or a Backend.AI image), if known."""
    key = lang.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    name = key.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]  # [registry/]name[:tag]
    return _ALIASES.get(name)


def plan_files(
    lang: str, first: str, build: str | None, exec_cmd: str | None
) -> tuple[ExecMode, Mapping[str, Any] | None, str]:
    """Mode, options and code of a run of uploaded files whose first is ``first``.

    Batch mode, with ``exec_cmd`` or else the command that runs ``first``; a lua5 file other
    than ``main.lua`` without a build runs in the kernel's own Lua (``dofile``), which has no
    ``lua`` program to run it with.
    """
    if exec_cmd is None and build is None and language_of(lang) == "lua5" and first != "main.lua":
        return "query", None, f"dofile({_lua_string(first)})"
    run = exec_cmd if exec_cmd is not None else entry_command(lang, first)
    return "batch", {"build": build, "buildLog": True, "exec": run}, ""


def _lua_string(text: str) -> str:
    return (
        '"' + "".join(ch if ch.isalnum() or ch in "._-/ " else f"\\{ord(ch)}" for ch in text) + '"'
    )


def entry_command(lang: str, first: str) -> str:
    """The batch ``exec`` that runs the uploaded file ``first`` (``"*"``: the default entry)."""
    known = language_of(lang)
    if known is None:
        if PurePosixPath(first).stem == "main":
            return "*"  # the language's own default, which is what runs main.*
        raise InvalidArgumentError(
            f"sorna does not know how {lang} runs {first}; say it with --exec, "
            f"e.g. --exec {shlex.quote('./' + first)}"
        )
    default, template = _ENTRIES[known]
    if first == default:
        return "*"
    return template.format(shlex.quote(first if not first.startswith("-") else "./" + first))


def upload_names(files: list[str]) -> list[str]:
    """The names ``files`` get on the server (relative to the current folder), checked."""
    base = Path.cwd().resolve()
    names: list[str] = []
    for raw in files:
        full = (base / raw).resolve()
        try:
            relative = full.relative_to(base)
        except ValueError:
            raise InvalidArgumentError(
                f"{raw} is outside the current folder ({base}): files are uploaded by their "
                "path relative to it; cd to a folder that contains every FILE and run "
                "sorna from there"
            ) from None
        if not full.is_file():
            what = "is not a file" if full.exists() else "does not exist"
            raise InvalidArgumentError(f"{raw} {what}")
        names.append(str(PurePosixPath(*relative.parts)))
    return names


def start_kernel(
    session: Session, lang: str, token: str | None, printer: Printer, *, exec_timeout: int = 0
) -> Kernel:
    """Get or create the kernel and say which one it is on stderr (unless ``--quiet``)."""
    with printer.progress(f"starting {lang} kernel"):
        kern = Kernel.get_or_create(lang, token, exec_timeout=exec_timeout, session=session)
    how = "attached to" if kern.created is False else "kernel"
    printer.note(f"sorna: {how} {kern.kernel_id} ({lang})")
    return kern


def _loop(
    kern: Kernel,
    code: str,
    mode: ExecMode,
    opts: Mapping[str, Any] | None,
    printer: Printer,
    as_json: bool,
    read_line: Callable[[str, bool], str],
) -> ExecutionResult:
    # Output is written as it arrives (a live run). A password prompt is held back and
    # written by getpass once echo is off, so nothing typed after it can be echoed.
    prompt = [""]

    def answer(waiting: ExecutionResult) -> str:
        text, prompt[0] = prompt[0], ""
        return read_line(text, waiting.is_password)

    building = mode == "batch" and opts is not None and opts.get("build") is not None
    interrupted = False
    with kern.stream(code, mode=mode, opts=opts, input=answer) as live:
        while True:
            try:
                printer.show_progress("building" if building else "running")
                event = next(live, None)
            except KeyboardInterrupt:
                printer.clear_progress()
                interrupted = _interrupt(kern, printer, interrupted)
                continue  # collect what the interrupted run still says
            except EOFError:
                raise ExecutionError(
                    "the program asked for input, but standard input is closed"
                ) from None
            except StreamResumeError:
                if interrupted:  # a server that cannot resume ended the interrupted run
                    return live.so_far.model_copy(update={"status": "interrupted"})
                raise
            printer.clear_progress()
            if event is None or isinstance(event, ResultEvent):
                return live.result_or_raise()
            if isinstance(event, OutputEvent) and not as_json:
                if _is_password_prompt(live, event):
                    prompt[0] = event.item.text
                else:
                    printer.console([event.item])
            last = live.last
            # Noted once the build's output is all written.
            if (
                building
                and last is not None
                and last.status == "build-finished"
                and not live._core.events
            ):
                building = False
                printer.note("sorna: build finished")


def _is_password_prompt(live: LiveRun, event: OutputEvent) -> bool:
    """Whether ``event`` is the prompt of a hidden entry (the next event asks for it)."""
    if event.item.type != "stdout" or not _can_hide_input():
        return False
    queued = live._core.events
    following = queued[0] if queued else None
    return isinstance(following, InputRequest) and following.is_password


def _interrupt(kern: Kernel, printer: Printer, already: bool) -> bool:
    """The first Ctrl-C interrupts the remote program; a second one leaves."""
    if already:
        raise KeyboardInterrupt
    printer.note("sorna: interrupting the program (Ctrl-C again to leave)")
    try:
        kern.interrupt()
    except SornaError as exc:
        printer.error(f"could not interrupt the program: {exc}")
        raise KeyboardInterrupt from None
    return True


def _discard(kern: Kernel) -> None:
    """Destroy a temporary kernel; an exec timeout may have destroyed it already."""
    with contextlib.suppress(KernelNotFoundError):
        kern.destroy()


def _can_hide_input() -> bool:
    return sys.stdin.isatty()


def _read_line(prompt: str, is_password: bool) -> str:
    """A line from stdin; ``prompt`` is what is left to show (only for hidden entries)."""
    if is_password and _can_hide_input():
        return getpass.getpass(prompt=prompt)
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.rstrip("\n")


def _exit_status(result: ExecutionResult, printer: Printer) -> int:
    if result.status == "interrupted":
        return INTERRUPTED_EXIT
    if result.status == "exec-timeout":
        printer.error("the run exceeded the kernel's execution time limit; the kernel is gone")
        return EXEC_TIMEOUT_EXIT
    code = result.exit_code
    if code is not None:
        return code if 0 <= code < 256 else 1
    return 0
