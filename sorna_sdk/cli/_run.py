"""``sorna run``: run code or files in a kernel and stream its output."""

from __future__ import annotations

import contextlib
import getpass
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
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

__all__ = ["EXEC_TIMEOUT_EXIT", "run_command"]

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
    with printer.progress(f"starting {lang} kernel"):
        kern = Kernel.get_or_create(lang, token, exec_timeout=exec_timeout, session=session)
    try:
        mode: ExecMode
        opts: Mapping[str, Any] | None
        if files:
            with printer.progress(f"uploading {len(files)} file(s)"):
                kern.upload(files, base_dir=Path.cwd())
            mode, opts, first = "batch", {"build": build, "buildLog": True, "exec": exec_cmd}, ""
        else:
            mode, opts, first = "query", None, code or ""
        answer = read_line or _read_line
        result = _loop(kern, first, mode, opts, printer, as_json, answer)
    finally:
        if token is None:
            _discard(kern)
    if as_json:
        print(json.dumps({"kernelId": kern.kernel_id, **result.to_dict()}), flush=True)
    return _exit_status(result, printer)


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
                    prompt[0] = event.item.data
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
