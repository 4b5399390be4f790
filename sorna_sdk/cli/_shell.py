"""``sorna shell``: a kernel's REPL or shell in raw mode, following window resizes.

The kernel's terminal is a bash; for a language with a REPL (python3, nodejs, lua5) and a new
kernel, ``sorna shell`` types one line that ``exec``s the REPL and hides that line and bash's
prompt (everything up to a marker the line prints). The stream ends when the shell or the
REPL exits (``exit``, Ctrl-D: the server closes with 1000 "the shell exited (status N)",
and ``sorna shell`` exits with N), or at Ctrl-] (``0x1d``). The terminal is restored on exit.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import select
import signal
import sys
import termios
import threading
import time
import tty
from types import FrameType

from ..exceptions import KernelNotFoundError, PtyError
from ..pty import SyncStreamPty
from ..session import Session
from ._output import Printer
from ._run import language_of, start_kernel

__all__ = ["ESCAPE_BYTE", "repl_command", "shell_command"]

#: Ctrl-]: the byte that ends ``sorna shell`` (as in telnet).
ESCAPE_BYTE = b"\x1d"
#: What the REPL's launch line prints just before the REPL starts (RS bytes around a word:
#: the echo of the typed line shows ``\036`` as four characters, never these bytes).
MARKER = b"\x1esorna-repl\x1e"
#: Seconds to wait for the marker before showing everything (e.g. a terminal left in a REPL).
MARKER_WAIT = 10.0

# A small Lua REPL on lupa, the Lua 5.4 of the lua5 kernel (which has no lua program).
_LUPA_REPL = """\
import sys
import lupa.lua54 as L
try:
    import readline
except ImportError:
    pass
rt = L.LuaRuntime(register_eval=False)
lua_load = rt.eval("load")
run = rt.eval(
    "function(f) local r = table.pack(pcall(f)) io.stdout:flush()"
    " if not r[1] then return 'E' .. tostring(r[2]) end"
    " local t = {} for i = 2, r.n do t[#t + 1] = tostring(r[i]) end"
    " return 'O' .. table.concat(t, '\\t') end"
)
def load(text):
    res = lua_load(text, "=stdin")
    return res if isinstance(res, tuple) else (res, None)
print(rt.eval("_VERSION") + " (lupa); Ctrl-D or os.exit() leaves")
buf = ""
while True:
    try:
        line = input(">> " if buf else "> ")
    except EOFError:
        print()
        break
    except KeyboardInterrupt:
        print()
        buf = ""
        continue
    buf = buf + "\\n" + line if buf else line
    fn, err = load("return " + buf)
    if fn is None:
        fn, err = load(buf)
    if fn is None:
        if str(err).endswith("<eof>"):
            continue
        print(err, file=sys.stderr)
        buf = ""
        continue
    buf = ""
    out = str(run(fn))
    if out[0] == "E":
        print(out[1:], file=sys.stderr)
    elif out[1:]:
        print(out[1:])
"""


def _lua_repl() -> str:
    source = base64.b64encode(_LUPA_REPL.encode()).decode()
    lupa = f'"$SORNA_PYTHON" -c "import base64;exec(base64.b64decode(\'{source}\'))"'
    return (
        'if [ -n "$SORNA_PYTHON" ] && "$SORNA_PYTHON" -c \'import lupa\' 2>/dev/null; '
        f"then exec {lupa}; elif command -v lua5.4 >/dev/null; then exec lua5.4; else exec lua; fi"
    )


def repl_command(lang: str) -> str | None:
    """The line that replaces the terminal's bash by ``lang``'s REPL (``None``: stay in bash).

    ``SORNA_PYTHON`` is the gateway's Python in a local gateway's terminals (the one its
    python3 and lua5 kernels run on); elsewhere ``python3``.
    """
    known = language_of(lang)
    if known == "python3":
        command = 'exec "${SORNA_PYTHON:-python3}"'
    elif known == "nodejs":
        command = "NODE_REPL_HISTORY= exec node"  # no history file: the home may be read-only
    elif known == "lua5":
        command = _lua_repl()
    else:
        return None
    # A leading space keeps the line out of bash's history (HISTCONTROL=ignorespace).
    return f" printf '\\036sorna-repl\\036'; {command}\r"


def shell_command(session: Session, *, lang: str, token: str | None, printer: Printer) -> int:
    """Attach the local terminal to the kernel's terminal until it ends or Ctrl-]."""
    stdin_fd, stdout_fd = sys.stdin.fileno(), sys.stdout.fileno()
    if not os.isatty(stdin_fd):
        printer.error("sorna shell needs a terminal on standard input")
        return 2
    kern = start_kernel(session, lang, token, printer)
    # A kernel found by its token keeps its terminal as it was left (maybe in the REPL).
    repl = repl_command(lang) if kern.created is not False else None
    if repl is None and kern.created is not False and language_of(lang) not in (None, "bash"):
        printer.note(f"sorna: no REPL known for {lang}; this is the kernel's bash")
    try:
        with kern.stream_pty() as pty:
            if repl is not None:
                pty.send(repl)
            return _attach(pty, stdin_fd, stdout_fd, printer, hide_until_marker=repl is not None)
    finally:
        if token is None:
            with contextlib.suppress(KernelNotFoundError):
                kern.destroy()


_EXIT_STATUS = re.compile(r"status (\d+)")


def _attach(
    pty: SyncStreamPty,
    stdin_fd: int,
    stdout_fd: int,
    printer: Printer,
    *,
    hide_until_marker: bool = False,
) -> int:
    ended = threading.Event()
    failure: list[PtyError] = []
    status = [0]

    def pump_output() -> None:
        hidden = b"" if hide_until_marker else None
        give_up = time.monotonic() + MARKER_WAIT
        try:
            while True:
                try:
                    chunk = pty.read(timeout=0.5 if hidden is not None else None)
                except TimeoutError:
                    chunk = b""
                if hidden is not None:
                    hidden += chunk
                    at = hidden.find(MARKER)
                    if at >= 0:
                        chunk, hidden = hidden[at + len(MARKER) :], None
                    elif time.monotonic() < give_up:
                        continue
                    else:
                        chunk, hidden = hidden, None
                if chunk:
                    os.write(stdout_fd, chunk)
        except PtyError as exc:
            if exc.code == 1000:  # the shell exited (or the server closed normally)
                found = _EXIT_STATUS.search(exc.reason)
                status[0] = int(found.group(1)) if found else 0
            else:
                failure.append(exc)
        except OSError:
            pass
        finally:
            ended.set()

    def send_size() -> None:
        size = os.get_terminal_size(stdout_fd if os.isatty(stdout_fd) else stdin_fd)
        # A terminal that knows no size says 0 (script(1) on a pipe, serial consoles).
        pty.resize(size.lines or 24, size.columns or 80)

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
    return status[0] if 0 <= status[0] < 256 else 1
