"""``sorna shell``: the kernel's terminal in raw mode, following window resizes.

Press the escape key, Ctrl-] (``0x1d``), to leave; the terminal is restored on exit.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import termios
import threading
import tty
from types import FrameType

from ..exceptions import KernelNotFoundError, PtyError
from ..kernels import Kernel
from ..pty import SyncStreamPty
from ..session import Session
from ._output import Printer

__all__ = ["ESCAPE_BYTE", "shell_command"]

#: Ctrl-]: the byte that ends ``sorna shell`` (as in telnet).
ESCAPE_BYTE = b"\x1d"


def shell_command(session: Session, *, lang: str, token: str | None, printer: Printer) -> int:
    """Attach the local terminal to the kernel's terminal until Ctrl-] or the stream ends."""
    stdin_fd, stdout_fd = sys.stdin.fileno(), sys.stdout.fileno()
    if not os.isatty(stdin_fd):
        printer.error("sorna shell needs a terminal on standard input")
        return 2
    with printer.progress(f"starting {lang} kernel"):
        kern = Kernel.get_or_create(lang, token, session=session)
    try:
        with kern.stream_pty() as pty:
            return _attach(pty, stdin_fd, stdout_fd, printer)
    finally:
        if token is None:
            with contextlib.suppress(KernelNotFoundError):
                kern.destroy()


def _attach(pty: SyncStreamPty, stdin_fd: int, stdout_fd: int, printer: Printer) -> int:
    ended = threading.Event()
    failure: list[PtyError] = []

    def pump_output() -> None:
        try:
            for chunk in pty:
                os.write(stdout_fd, chunk)
        except PtyError as exc:
            failure.append(exc)
        except OSError:
            pass
        finally:
            ended.set()

    def send_size() -> None:
        size = os.get_terminal_size(stdout_fd if os.isatty(stdout_fd) else stdin_fd)
        pty.resize(size.lines, size.columns)

    # The SIGWINCH handler only wakes the loop: sending from inside the handler could
    # deadlock on the connection's lock if the signal lands in the middle of a send().
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)

    def on_resize(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(wake_w, b"w")

    saved = termios.tcgetattr(stdin_fd)
    previous_handler = signal.signal(signal.SIGWINCH, on_resize)
    reader = threading.Thread(target=pump_output, name="sorna-shell-output", daemon=True)
    try:
        # TCSANOW, not setraw's default TCSAFLUSH: keys typed while connecting are kept.
        tty.setraw(stdin_fd, termios.TCSANOW)
        printer.note("sorna: connected; press Ctrl-] to leave\r")  # raw mode: \r\n by hand
        send_size()
        reader.start()
        while not ended.is_set():
            ready, _, _ = select.select([stdin_fd, wake_r], [], [], 0.1)
            if wake_r in ready:
                os.read(wake_r, 512)
                send_size()
            if stdin_fd not in ready:
                continue
            data = os.read(stdin_fd, 4096)
            if not data:
                break
            escape_at = data.find(ESCAPE_BYTE)
            if escape_at >= 0:
                if escape_at:
                    pty.send(data[:escape_at])
                break
            pty.send(data)
    except PtyError as exc:
        failure.append(exc)
    finally:
        termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous_handler)
        os.close(wake_r)
        os.close(wake_w)
    os.write(stdout_fd, b"\r\n")
    if failure:
        print(f"sorna: error: {failure[0]}", file=sys.stderr, flush=True)
        return 1
    return 0
