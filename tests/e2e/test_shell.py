"""``sorna shell`` driven through a real pseudo-terminal, as a person at a keyboard would."""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import select
import shutil
import struct
import subprocess
import sys
import termios
import time

import pytest

from sorna_sdk import APIConfig, Kernel, Session

# Makes the pty our child's controlling terminal, so it gets SIGWINCH on resize.
CTTY_SHIM = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


class Screen:
    """Reads what the child writes to its terminal."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.seen = b""

    def expect(self, needle: bytes, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"never saw {needle!r}; screen so far: {self.seen[-600:]!r}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    chunk = b""
                assert chunk, f"terminal closed before {needle!r}: {self.seen[-600:]!r}"
                self.seen += chunk

    def type(self, text: bytes) -> None:
        os.write(self.fd, text)


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def on_terminal(
    config: APIConfig, *args: str, size: tuple[int, int] = (24, 80)
) -> tuple[subprocess.Popen[bytes], int, list[int]]:
    """``sorna ARGS`` with a fresh pseudo-terminal (``size`` rows, columns) as its
    controlling terminal."""
    master, slave = os.openpty()
    set_size(slave, *size)
    cooked = termios.tcgetattr(slave)
    env = {
        **os.environ,
        "SORNA_ENDPOINT": config.endpoint,
        "SORNA_ACCESS_KEY": config.access_key,
        "SORNA_SECRET_KEY": config.secret_key,
        "TERM": "xterm",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", CTTY_SHIM, sys.executable, "-m", "sorna_sdk.cli", *args],
        stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    return proc, master, cooked


def test_sorna_run_on_a_terminal_asks_hides_passwords_and_shows_progress(
    sorna_config: APIConfig,
) -> None:
    code = (
        'import getpass\nname = input("name? ")\npw = getpass.getpass("pw? ")\nprint(name, len(pw))'
    )
    proc, master, _ = on_terminal(sorna_config, "run", "python3", "-c", code)
    screen = Screen(master)
    try:
        screen.expect(b"name? ")
        assert b"starting python3 kernel" in screen.seen  # progress, because stderr is a tty
        screen.type(b"Bob\r")
        screen.expect(b"pw? ")
        screen.type(b"hunter2\r")
        screen.expect(b"Bob 7")
        assert b"hunter2" not in screen.seen  # typed without echo
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_sorna_shell_is_usable_and_follows_resizes(sorna_config: APIConfig) -> None:
    proc, master, cooked = on_terminal(sorna_config, "shell", "bash")
    screen = Screen(master)
    try:
        screen.expect(b"press Ctrl-] to leave")
        screen.type(b'echo "@@$((40 + 2))@@"\r')
        screen.expect(b"@@42@@")
        screen.type(b"stty size\r")
        screen.expect(b"24 80")
        set_size(master, 33, 101)  # the kernel sends SIGWINCH to `sorna shell`
        time.sleep(0.3)
        screen.type(b"stty size\r")
        screen.expect(b"33 101")
        assert termios.tcgetattr(master)[3] & termios.ICANON == 0  # raw while attached
        screen.type(b"\x1d")  # Ctrl-]: leave
        assert proc.wait(timeout=15) == 0
        assert termios.tcgetattr(master)[3] == cooked[3]  # the terminal is restored
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_a_terminal_without_a_size_gets_80x24(sorna_config: APIConfig) -> None:
    # script(1) with piped input, serial consoles and some CI runners report 0x0.
    proc, master, _ = on_terminal(sorna_config, "shell", "bash", size=(0, 0))
    screen = Screen(master)
    try:
        screen.expect(b"press Ctrl-] to leave")
        screen.type(b"stty size\r")
        screen.expect(b"24 80")
        screen.type(b"exit\r")
        assert proc.wait(timeout=15) == 0
        assert b"Traceback" not in screen.seen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_ctrl_c_in_sorna_run_interrupts_the_remote_program(sorna_config: APIConfig) -> None:
    """Ctrl-C stops the program on the server too: the next run on that kernel is clean."""
    token = "ctrl-c-token-1"
    code = 'import time\nprint("first", flush=True)\ntime.sleep(100)\nprint("late")'
    proc, master, _ = on_terminal(sorna_config, "run", "-t", token, "python3", "-c", code)
    screen = Screen(master)
    try:
        screen.expect(b"first")
        time.sleep(0.3)
        screen.type(b"\x03")  # the terminal sends SIGINT to `sorna run`
        screen.expect(b"interrupting the program")
        screen.expect(b"KeyboardInterrupt")  # the remote program's own traceback
        assert proc.wait(timeout=15) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    proc, master, _ = on_terminal(
        sorna_config, "run", "-t", token, "python3", "-c", 'print("second")'
    )
    screen = Screen(master)
    try:
        screen.expect(b"second")
        assert proc.wait(timeout=15) == 0
        time.sleep(0.2)
        with contextlib.suppress(OSError):
            screen.seen += os.read(master, 65536)
        assert b"late" not in screen.seen and b"first" not in screen.seen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    with Session(sorna_config) as session:
        Kernel.get_or_create("python3", token, session=session).destroy()


def test_a_second_ctrl_c_leaves(sorna_config: APIConfig) -> None:
    code = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(100)"
    proc, master, _ = on_terminal(sorna_config, "run", "python3", "-c", code)
    screen = Screen(master)
    try:
        screen.expect(b"starting python3 kernel")
        time.sleep(1.0)
        screen.type(b"\x03")
        screen.expect(b"interrupting the program")
        screen.type(b"\x03")
        assert proc.wait(timeout=15) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def shell_session(config: APIConfig, *args: str) -> tuple[subprocess.Popen[bytes], int, Screen]:
    proc, master, _ = on_terminal(config, "shell", *args)
    return proc, master, Screen(master)


def finish(proc: subprocess.Popen[bytes], master: int) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    os.close(master)


def test_exit_and_ctrl_d_leave_sorna_shell(sorna_config: APIConfig) -> None:
    proc, master, screen = shell_session(sorna_config, "bash")
    try:
        screen.expect(b"press Ctrl-] to leave")
        screen.type(b"echo @@ready@@; exit 3\r")
        screen.expect(b"@@ready@@")
        assert proc.wait(timeout=15) == 3  # the shell's exit status, as ssh gives it
    finally:
        finish(proc, master)
    proc, master, screen = shell_session(sorna_config, "bash")
    try:
        screen.expect(b"press Ctrl-] to leave")
        screen.type(b"echo @@$((6 * 7))@@\r")
        screen.expect(b"@@42@@")
        # As a person would: after the prompt is back. (A Ctrl-D that reaches bash while its
        # terminal is cooked, between commands, is taken by the line discipline.)
        time.sleep(0.5)
        screen.type(b"\x04")  # Ctrl-D
        assert proc.wait(timeout=15) == 0
    finally:
        finish(proc, master)


def test_sorna_shell_python3_opens_a_python_repl(sorna_config: APIConfig) -> None:
    proc, master, screen = shell_session(sorna_config, "python3")
    try:
        screen.expect(b">>> ")
        assert b"sorna-repl" not in screen.seen  # the launch line is hidden
        screen.type(b"import sys; print('@@', sys.version_info[0] * 14, '@@')\r")
        screen.expect(b"@@ 42 @@")
        screen.type(b"exit()\r")
        assert proc.wait(timeout=15) == 0
    finally:
        finish(proc, master)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_sorna_shell_nodejs_opens_node(sorna_config: APIConfig) -> None:
    proc, master, screen = shell_session(sorna_config, "nodejs")
    try:
        screen.expect(b"> ")
        screen.type(b"console.log('@@' + (6 * 7) + '@@')\r")
        screen.expect(b"@@42@@")
        # As a person would: after the prompt is back. (A Ctrl-D that reaches bash while its
        # terminal is cooked, between commands, is taken by the line discipline.)
        time.sleep(0.5)
        screen.type(b"\x04")  # Ctrl-D
        assert proc.wait(timeout=15) == 0
    finally:
        finish(proc, master)


@pytest.mark.skipif(importlib.util.find_spec("lupa") is None, reason="lupa is not installed")
def test_sorna_shell_lua5_opens_a_lua_repl(sorna_config: APIConfig) -> None:
    proc, master, screen = shell_session(sorna_config, "lua5")
    try:
        screen.expect(b"Lua 5.4")
        screen.expect(b"> ")
        screen.type(b"x = 6 * 7\r")
        screen.type(b"'@@' .. x .. '@@'\r")  # an expression's value is printed
        screen.expect(b"@@42@@")
        screen.type(b"for i = 1, 2 do\r")
        screen.expect(b">> ")  # an unfinished chunk continues
        screen.type(b"print('n' .. i) end\r")
        screen.expect(b"n2")
        screen.type(b"os.exit(5)\r")
        assert proc.wait(timeout=15) == 5
    finally:
        finish(proc, master)
