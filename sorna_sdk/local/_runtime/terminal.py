"""A kernel's terminal: ``bash -i`` under a real pseudo-terminal, shared by its subscribers.

Behaviour worth knowing:

* The shell starts lazily (first :meth:`Terminal.subscribe`) and outlives its subscribers, so a
  reconnect finds the same shell. Its output is read only while someone is subscribed: with no
  subscriber the pty's own buffer fills and the shell blocks, like a paused terminal.
* A shell that exits by itself (``exit``, ``^D``, or a REPL that ``exec`` replaced it with) ends
  every subscriber's stream, after its last output, with close code 1000 and the reason
  ``the shell exited (status N)`` (:data:`CLOSE_SHELL_EXITED`; ``N`` is 128 + the signal for a
  shell killed by one): a client leaves as it would leave ssh. The next subscriber starts a
  fresh shell. (The 2017 Terminal respawned the shell under its subscribers instead; a client
  that wants that reconnects, or sends ``restart``, which replaces the shell in place.)
* Backpressure: each subscriber buffers output up to ``high_water`` bytes. When every subscriber
  is at or above it, the pty is no longer read until one drains below ``low_water``. A
  subscriber past ``max_buffer`` (others kept reading) or stuck above ``high_water`` for
  ``stall_timeout`` seconds is dropped with close code 1013.
* Input beyond ``input_high`` pending bytes makes :meth:`Terminal.write` wait for the shell.
  Input sent while no shell runs (between a shell's exit and its replacement) is dropped.
  A write made for a subscriber (``write(data, sub)``) fails with :class:`TerminalClosed` once
  that subscriber is gone, e.g. dropped for not reading. When the last subscriber leaves,
  pending input is discarded and every waiting write fails: nobody's keystrokes are kept for
  whoever connects next.
* :meth:`Terminal.restart` and :meth:`Terminal.close` end the shell's whole process tree:
  SIGHUP to its session first, then SIGKILL to everything it started, also to jobs that ignore
  SIGHUP or left the session (``setsid``, ``nohup``, ``disown``, double forks). The shell runs
  below the kernel's supervisor or inside its bubblewrap sandbox (``sandbox.py``), with the
  kernel's memory and process limits; its exit ends its tree as well.
* The shell's environment has ``SORNA_PYTHON``: the gateway's Python, the one that runs the
  python3 and lua5 (lupa) kernels, for clients that start those languages' REPLs in it.
* Readline's bracketed paste is turned off (a private ``INPUTRC`` that includes the usual
  ones), so echoed input carries no ``ESC [?2004h`` noise.

Only this module touches pty file descriptors. POSIX only (``AVAILABLE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import struct
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sorna_sdk.local._runtime.languages import driver_env
from sorna_sdk.local._runtime.sandbox import KILL_GRACE, Containment, Sandbox

if sys.platform != "win32":  # importable everywhere; usable on POSIX only
    import fcntl
    import termios

__all__ = [
    "AVAILABLE",
    "CLOSE_DESTROYED",
    "CLOSE_DROPPED",
    "CLOSE_FAILED",
    "CLOSE_SHELL_EXITED",
    "CLOSE_SHUTDOWN",
    "Subscription",
    "Terminal",
    "TerminalClosed",
]

#: Whether this platform has pseudo-terminals.
AVAILABLE: Final = sys.platform != "win32"
#: Close codes handed to subscribers (WebSocket close codes, used as such by the server).
CLOSE_SHUTDOWN: Final = 1001
CLOSE_FAILED: Final = 1011
CLOSE_DROPPED: Final = 1013
CLOSE_DESTROYED: Final = 4404
#: The shell exited by itself: a normal close, its reason ``the shell exited (status N)``.
CLOSE_SHELL_EXITED: Final = 1000

_READ_SIZE: Final = 65536
_MAX_CHUNK: Final = 256 * 1024
_HANGUP_GRACE: Final = 0.5
# bash 5.1+ wraps echoed input in bracketed-paste escapes, which garbles what clients match on.
_INPUTRC: Final = "$include /etc/inputrc\n$include ~/.inputrc\nset enable-bracketed-paste off\n"


class TerminalClosed(Exception):
    """The terminal was closed (its kernel is gone)."""


class Subscription:
    """One reader of a terminal's output: ``await get()`` until it returns ``None``."""

    def __init__(self, terminal: Terminal) -> None:
        self._terminal = terminal
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._ready = asyncio.Event()
        self.above_since: float | None = None
        #: Set when the stream ends: a WebSocket close code and its reason.
        self.close_code: int | None = None
        self.close_reason: str = ""

    @property
    def buffered(self) -> int:
        """Output bytes waiting for this subscriber."""
        return self._size

    async def get(self) -> bytes | None:
        """The next output bytes (queued chunks joined, up to 256 KiB); ``None`` once ended."""
        while not self._chunks:
            if self.close_code is not None:
                return None
            self._ready.clear()
            await self._ready.wait()
        parts = [self._chunks.popleft()]
        total = len(parts[0])
        while self._chunks and total + len(self._chunks[0]) <= _MAX_CHUNK:
            parts.append(self._chunks.popleft())
            total += len(parts[-1])
        self._size -= total
        self._terminal._drained(self)
        return b"".join(parts)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Stop receiving and end the stream with ``code`` (the terminal keeps running)."""
        self._terminal.unsubscribe(self, code, reason)

    def _push(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        self._ready.set()

    def _end(self, code: int, reason: str, *, discard: bool) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        if discard:
            self._chunks.clear()
            self._size = 0
        self._ready.set()


@dataclass(eq=False)
class _Shell:
    """One generation of the terminal: a bash process and its pty master."""

    proc: asyncio.subprocess.Process
    master: int
    tree: Containment
    reading: bool = False


class Terminal:
    """``bash -i`` in ``workdir`` under a pty, with fan-out, backpressure, resize and restart.

    ``sandbox`` and ``max_mem_kib`` contain and limit the shell like the kernel's driver
    (default: no sandbox, no memory limit; a supervisor still ends the whole tree).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        high_water: int = 1024 * 1024,
        low_water: int = 256 * 1024,
        max_buffer: int = 8 * 1024 * 1024,
        stall_timeout: float | None = 60.0,
        input_high: int = 256 * 1024,
        sandbox: Sandbox | None = None,
        max_mem_kib: int = 0,
    ) -> None:
        if not 0 < low_water <= high_water <= max_buffer:
            raise ValueError("need 0 < low_water <= high_water <= max_buffer")
        self.workdir = workdir
        self.high_water = high_water
        self.low_water = low_water
        self.max_buffer = max_buffer
        self.stall_timeout = stall_timeout
        self.input_high = input_high
        self.sandbox: Sandbox = sandbox or Sandbox()
        self.max_mem_kib = max_mem_kib
        self._extra_env = dict(env or {})
        self._subs: dict[Subscription, None] = {}  # ordered set
        self._shell: _Shell | None = None
        self._lock = asyncio.Lock()
        self._size = (24, 80)
        self._input = bytearray()
        # Writes waiting for room in the input buffer: future -> the subscriber writing, if any.
        # A future resolves True once there is room, False when the write is discarded.
        self._input_waiters: dict[asyncio.Future[bool], Subscription | None] = {}
        self._stall: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._tmpdir: str | None = None
        self._closed = False

    # ---- public API -----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pid(self) -> int | None:
        """The current shell's pid (also its session and process group id), if running."""
        return self._shell.tree.kernel_pid() if self._shell is not None else None

    def host_pid(self, pid: int) -> int | None:
        """This gateway's pid for the shell's process ``pid`` (as the shell sees it, ``$!``)."""
        return self._shell.tree.host_pid(pid) if self._shell is not None else None

    @property
    def reading(self) -> bool:
        """Whether the pty is being read (``False`` while paused by backpressure)."""
        return self._shell is not None and self._shell.reading

    @property
    def buffered_bytes(self) -> int:
        """Bytes held in memory: pending input plus every subscriber's unread output."""
        return len(self._input) + sum(sub.buffered for sub in self._subs)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    async def subscribe(self) -> Subscription:
        """A new reader of the output; starts the shell if none runs (raises TerminalClosed)."""
        async with self._lock:
            self._require()
            if self._shell is None:
                await self._spawn()
            sub = Subscription(self)
            self._subs[sub] = None
            self._update_reading()
            return sub

    def unsubscribe(self, sub: Subscription, code: int = 1000, reason: str = "") -> None:
        """Forget ``sub`` and end its stream with ``code`` (idempotent); the shell keeps running."""
        if sub in self._subs:
            del self._subs[sub]
            sub._end(code, reason, discard=True)
            self._discard_writes(sub)
            self._update_reading()

    async def write(self, data: bytes, sub: Subscription | None = None) -> None:
        """Send ``data`` to the shell's input; waits while ``input_high`` bytes are pending.

        With ``sub``, the input is that subscriber's: it raises :class:`TerminalClosed` if
        ``sub`` has ended, or ends while the write waits (the waiting data is then discarded).
        """
        self._require()
        if sub is not None and sub not in self._subs:
            raise TerminalClosed("the subscription has ended")
        shell = self._shell
        if shell is None or not data:
            return
        if not self._input:
            try:
                written = os.write(shell.master, data)
            except BlockingIOError:
                written = 0
            except OSError:
                return  # the shell is going away; its replacement gets fresh input
            data = data[written:]
            if not data:
                return
            asyncio.get_running_loop().add_writer(shell.master, self._on_writable, shell)
        self._input += data
        if len(self._input) >= self.input_high:
            waiter = asyncio.get_running_loop().create_future()
            self._input_waiters[waiter] = sub
            try:
                room = await waiter
            finally:
                self._input_waiters.pop(waiter, None)
            if not room:
                raise TerminalClosed("the input was discarded: its subscriber has ended")

    def resize(self, rows: int, cols: int) -> None:
        """Set the window size (the shell's foreground job gets SIGWINCH)."""
        self._size = (rows, cols)
        if self._shell is not None:
            with contextlib.suppress(OSError):
                _set_size(self._shell.master, rows, cols)

    async def restart(self) -> None:
        """End the shell's session and, if anyone is subscribed, start a fresh shell."""
        async with self._lock:
            if self._closed:
                return
            await self._retire()
            if self._subs:
                await self._spawn_or_fail()

    async def close(self, code: int = CLOSE_DESTROYED, reason: str = "kernel destroyed") -> None:
        """End the shell's session, close the pty and end every subscriber with ``code``."""
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            await self._retire()
        self._end_all(code, reason)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tmpdir is not None:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self._tmpdir, "inputrc"))
                os.rmdir(self._tmpdir)
            self._tmpdir = None

    # ---- spawning and ending --------------------------------------------------------------

    def _require(self) -> None:
        if self._closed:
            raise TerminalClosed("the terminal is closed")

    async def _spawn(self) -> None:
        if not AVAILABLE:
            raise OSError(errno.ENOSYS, "terminals need a POSIX system")
        master, slave = os.openpty()
        life_r = life_w = -1
        try:
            _set_size(master, *self._size)
            os.set_blocking(master, False)
            env = self._env()
            assert self._tmpdir is not None
            if self.sandbox.supervised:
                life_r, life_w = os.pipe()
            argv = self.sandbox.command(
                ["bash", "-i"],
                workdir=self.workdir,
                max_mem_kib=self.max_mem_kib,
                lifeline=life_r if life_r >= 0 else None,
                setsid=True,
                ctty=True,
                pid_env=None,
                visible=[Path(self._tmpdir)],
            )
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=self.workdir,
                env=env,
                start_new_session=True,
                pass_fds=(life_r,) if life_r >= 0 else (),
            )
        except BaseException:
            os.close(master)
            if life_w >= 0:
                os.close(life_w)
            raise
        finally:
            os.close(slave)  # else EIO never comes when the shell's side closes
            if life_r >= 0:
                os.close(life_r)
        tree = Containment(self.sandbox, proc.pid, life_w if life_w >= 0 else None)
        self._shell = shell = _Shell(proc, master, tree)
        self._spawn_task(self._watch(shell))
        self._update_reading()

    async def _spawn_or_fail(self) -> None:
        try:
            await self._spawn()
        except OSError as exc:
            self._end_all(CLOSE_FAILED, f"the terminal could not start ({exc.strerror})")

    def _env(self) -> dict[str, str]:
        env = driver_env()
        for name in ("PYTHONUNBUFFERED", "PYTHONIOENCODING"):
            env.pop(name, None)
        env["TERM"] = "xterm-256color"
        env["SORNA_PYTHON"] = sys.executable
        env["INPUTRC"] = self._inputrc()
        env.update(self._extra_env)
        return env

    def _inputrc(self) -> str:
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="sorna-pty-")
            with open(os.path.join(self._tmpdir, "inputrc"), "w", encoding="utf-8") as handle:
                handle.write(_INPUTRC)
        return os.path.join(self._tmpdir, "inputrc")

    async def _retire(self) -> None:
        """End the current shell's whole session and close its pty (caller holds the lock)."""
        shell, self._shell = self._shell, None
        if shell is None:
            return
        self._stop_io(shell)
        self._clear_input()
        sid = shell.tree.kernel_pid()
        if sid is not None and shell.proc.returncode is None:
            # SIGHUP first: bash passes it on to its jobs, which live in process groups of
            # their own; when bash exits, its supervisor (or sandbox) ends what is left.
            _signal_session(sid, signal.SIGHUP)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(shell.proc.wait()), _HANGUP_GRACE)
        if sid is not None and self.sandbox.mode == "none" and not self.sandbox.supervised:
            _signal_session(sid, signal.SIGKILL)  # no supervisor: the session is what we know
        if shell.proc.returncode is None:
            shell.tree.kill()
            try:
                await asyncio.wait_for(asyncio.shield(shell.proc.wait()), KILL_GRACE)
            except asyncio.TimeoutError:
                shell.tree.force()
                await shell.proc.wait()
        shell.tree.release()
        os.close(shell.master)

    async def _watch(self, shell: _Shell) -> None:
        status = await shell.proc.wait()
        async with self._lock:
            if shell is not self._shell:
                return  # restarted or closed meanwhile
            if shell.reading:
                self._read_all(shell)  # the last words, e.g. "exit"
            await self._retire()
            if status < 0:  # killed by a signal, reported as a shell reports it
                status = 128 - status
            # Every stream ends after what it has still to read; the next subscriber
            # starts a fresh shell.
            self._end_all(CLOSE_SHELL_EXITED, f"the shell exited (status {status})")

    def _spawn_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- output ---------------------------------------------------------------------------

    def _on_readable(self, shell: _Shell) -> None:
        try:
            data = os.read(shell.master, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            data = b""  # Linux: EIO once the shell's side is closed
        if not data:
            self._set_reading(shell, False)
            return
        self._fan_out(data)

    def _read_all(self, shell: _Shell) -> None:
        for _ in range(64):  # bounded: the pty holds a few KiB, and others may still write
            try:
                data = os.read(shell.master, _READ_SIZE)
            except OSError:
                return
            if not data:
                return
            self._fan_out(data)

    def _fan_out(self, data: bytes) -> None:
        for sub in list(self._subs):
            sub._push(data)
            if sub.buffered > self.max_buffer:
                self._drop(sub, "terminal output not read in time")
        self._update_reading()

    def _drained(self, sub: Subscription) -> None:
        if sub.buffered < self.low_water:
            sub.above_since = None
            self._update_reading()

    def _update_reading(self) -> None:
        shell = self._shell
        if shell is None:
            return
        now = time.monotonic()
        blocked = True
        for sub in self._subs:
            if sub.buffered >= self.high_water:
                sub.above_since = sub.above_since or now
            elif sub.above_since is None or sub.buffered < self.low_water:
                sub.above_since = None
                blocked = False  # hysteresis: a paused reader resumes below low_water
        self._set_reading(shell, not blocked)
        self._arm_stall(blocked and bool(self._subs))

    def _set_reading(self, shell: _Shell, on: bool) -> None:
        if on == shell.reading:
            return
        loop = asyncio.get_running_loop()
        if on:
            loop.add_reader(shell.master, self._on_readable, shell)
        else:
            loop.remove_reader(shell.master)
        shell.reading = on

    def _arm_stall(self, on: bool) -> None:
        if not on or self.stall_timeout is None:
            if self._stall is not None:
                self._stall.cancel()
                self._stall = None
        elif self._stall is None:
            loop = asyncio.get_running_loop()
            self._stall = loop.call_later(self.stall_timeout, self._on_stall)

    def _on_stall(self) -> None:
        self._stall = None
        assert self.stall_timeout is not None
        deadline = time.monotonic() - self.stall_timeout
        for sub in list(self._subs):
            if sub.above_since is not None and sub.above_since <= deadline:
                self._drop(sub, "terminal output not read in time")
        self._update_reading()

    def _drop(self, sub: Subscription, reason: str) -> None:
        self.unsubscribe(sub, CLOSE_DROPPED, reason)

    def _end_all(self, code: int, reason: str) -> None:
        subs, self._subs = list(self._subs), {}
        for sub in subs:
            sub._end(code, reason, discard=False)
        self._discard_writes(None)
        if self._shell is not None:
            self._update_reading()

    # ---- input ----------------------------------------------------------------------------

    def _on_writable(self, shell: _Shell) -> None:
        try:
            written = os.write(shell.master, self._input)
        except BlockingIOError:
            return
        except OSError:
            self._stop_io(shell)
            self._clear_input()
            return
        del self._input[:written]
        if not self._input:
            asyncio.get_running_loop().remove_writer(shell.master)
        if len(self._input) < self.input_high:
            self._wake_writers(lambda _sub: True)

    def _clear_input(self) -> None:
        self._input.clear()
        self._wake_writers(lambda _sub: True)

    def _discard_writes(self, sub: Subscription | None) -> None:
        """``sub`` has ended: fail its waiting writes; with nobody left, drop all input."""
        if not self._subs:
            self._input.clear()
            if self._shell is not None:
                with contextlib.suppress(OSError, ValueError):
                    asyncio.get_running_loop().remove_writer(self._shell.master)
            self._wake_writers(lambda _sub: False)
        elif sub is not None:
            self._wake_writers(lambda writer: False if writer is sub else None)

    def _wake_writers(self, outcome: Callable[[Subscription | None], bool | None]) -> None:
        """Resolve each waiting write with ``outcome(its subscriber)``; ``None`` keeps it."""
        for waiter, writer in list(self._input_waiters.items()):
            result = outcome(writer)
            if result is not None and not waiter.done():
                waiter.set_result(result)

    def _stop_io(self, shell: _Shell) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_writer(shell.master)
        self._set_reading(shell, False)
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _signal_session(sid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to every process of session ``sid`` (Linux), or at least its group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(sid, sig)
    for pid in _session_members(sid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _session_members(sid: int) -> list[int]:
    members: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return members
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            if int(fields[3]) == sid:  # state ppid pgrp session
                members.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return members
