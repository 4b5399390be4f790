"""``sorna run``: run code or files in a kernel and stream its output."""

from __future__ import annotations

import contextlib
import getpass
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._run import RunState
from ..exceptions import ExecutionError, InvalidArgumentError, KernelNotFoundError, SornaError
from ..kernels import Kernel
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
    # A password prompt is held back and written by getpass once echo is off, so nothing
    # typed right after the prompt can be echoed (or flushed away).
    prompt = [""]
    state = RunState(lambda waiting: read_line(prompt[0], waiting.is_password))
    building = mode == "batch" and opts is not None and opts.get("build") is not None
    interrupted = False
    while True:
        label = "building" if building else "running"
        try:
            with printer.progress(label):
                result = kern.execute(code, mode, opts)
        except KeyboardInterrupt:
            interrupted = _interrupt(kern, printer, interrupted)
            code = ""  # collect what the interrupted run still says
            continue
        state.feed(result)
        items, prompt[0] = list(result.console), ""
        hidden = result.status == "waiting-input" and result.is_password and _can_hide_input()
        if hidden and items and items[-1].type == "stdout":
            prompt[0] = items.pop().data
        if not as_json:
            printer.console(items)
        if result.status == "build-finished":
            building = False
            printer.note("sorna: build finished")
        if state.done:
            return state.result()
        try:
            code = state.next_code()
        except EOFError:
            raise ExecutionError(
                "the program asked for input, but standard input is closed"
            ) from None
        except KeyboardInterrupt:
            interrupted = _interrupt(kern, printer, interrupted)
            code = ""


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
