"""One driver subprocess: spawning, framed control I/O, raw output pipes, backpressure, death.

Everything the driver says is kept, in arrival order, as a list of items; the kernel takes
them in batches. Guarantees that keep one kernel from hurting the gateway:

* Writes never block the event loop: :meth:`DriverProcess.send` only queues a frame, and the
  loop writes it when the driver's socket (or node's input pipe) has room. A driver that does
  not take a queued frame within ``write_deadline`` seconds (10 s), or that lets more than
  ``max_pending_write`` bytes (8 MiB) pile up, is killed: it stopped reading (SIGSTOP, the GIL
  held by a C thread, a busy event loop). A single frame on an empty queue is always accepted,
  whatever its size. ``send`` never raises; the death and its reason arrive as usual.
* Frames from the driver are capped (``max_frame``: the gateway's ``max_media_bytes``): a
  larger length header kills the driver before its body is read. Console output and the
  bytes of a frame still arriving both count toward ``BUFFER_CAP``: reading pauses until the
  client collects, so a kernel's memory in the gateway stays bounded.
* The driver runs below a supervisor or inside bubblewrap (``sandbox.py``): :meth:`kill` and
  :meth:`close` end its whole process tree, and its death ends the tree too.

Why a driver was killed by the gateway is in :attr:`DriverProcess.death_reason` and in the
``reason`` of its ``died`` item (empty for an ordinary exit or an outside kill).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import functools
import os
import signal
import socket
import subprocess
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sorna_sdk._json import is_array, is_object
from sorna_sdk.local._runtime.protocol import (
    CONTROL_KINDS,
    MAX_FRAME,
    OUTPUT_KINDS,
    SYNC_KIND,
    FrameDecoder,
    FrameError,
    FrameTooLarge,
    encode_frame,
)
from sorna_sdk.local._runtime.sandbox import KILL_GRACE, Containment, Sandbox

__all__ = ["BUFFER_CAP", "MAX_PENDING_WRITE", "WRITE_DEADLINE", "DriverProcess", "Item"]

#: Buffered console text (characters) above which reading stops until the client collects.
BUFFER_CAP: Final = 1024 * 1024
#: Bytes that may wait for a driver to read them before it is killed.
MAX_PENDING_WRITE: Final = 8 * 1024 * 1024
#: Seconds a frame may wait for a driver to read it before the driver is killed.
WRITE_DEADLINE: Final = 10.0
_READ_SIZE: Final = 64 * 1024
_POLL_INTERVAL: Final = 0.1


@dataclass
class Item:
    """One thing the driver said: console output (``control`` False) or a control frame.

    A ``died`` item's ``data`` is the exit status; ``reason`` says why the gateway killed it.
    """

    kind: str
    data: Any
    control: bool = False
    reason: str = ""


class _Outbox:
    """Frames waiting for one writable fd, written by the loop as room appears."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fd: int, write: Callable[[memoryview], int]
    ) -> None:
        self._loop = loop
        self.fd = fd
        self._write = write
        self._frames: deque[tuple[memoryview, float]] = deque()
        self.size = 0
        self._watching = False

    @property
    def head_since(self) -> float | None:
        """When the oldest unwritten frame was queued."""
        return self._frames[0][1] if self._frames else None

    def push(self, frame: bytes, now: float) -> None:
        self._frames.append((memoryview(frame), now))
        self.size += len(frame)
        if len(self._frames) == 1:
            self._flush()
        if self._frames and not self._watching:
            self._loop.add_writer(self.fd, self._flush)
            self._watching = True

    def _flush(self) -> None:
        while self._frames:
            view, since = self._frames[0]
            try:
                written = self._write(view)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.clear()  # the driver is gone or closing: its exit is reported elsewhere
                return
            self.size -= written
            if written < len(view):
                self._frames[0] = (view[written:], since)
            else:
                self._frames.popleft()
        self._unwatch()

    def _unwatch(self) -> None:
        if self._watching:
            self._loop.remove_writer(self.fd)
            self._watching = False

    def clear(self) -> None:
        self._frames.clear()
        self.size = 0
        self._unwatch()


class DriverProcess:
    """A running driver, contained with its whole process tree."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        ctl: socket.socket,
        pipes: dict[str, int],
        input_fd: int | None,
        *,
        containment: Containment | None = None,
        max_frame: int = MAX_FRAME,
    ) -> None:
        self.popen = popen
        self._tree = containment or Containment(Sandbox(), popen.pid)
        self._ctl = ctl
        self._pipes = dict(pipes)  # kind -> read fd
        self._decoders = {
            kind: codecs.getincrementaldecoder("utf-8")("replace") for kind in self._pipes
        }
        self._loop = asyncio.get_running_loop()
        self._ctl_box = _Outbox(self._loop, ctl.fileno(), ctl.send)
        self._input_box: _Outbox | None = None
        if input_fd is not None:
            os.set_blocking(input_fd, False)
            self._input_box = _Outbox(self._loop, input_fd, functools.partial(os.write, input_fd))
        self._input_fd = input_fd
        self._frames = FrameDecoder(max_frame)
        self._ctl_open = True  # False after EOF or a bad frame: nothing more is read
        self._items: list[Item] = []
        # Raw-pipe output waits here until a sync point (a sync or control frame, or a take),
        # so that it lands in order with the framed output around it.
        self._raw: list[Item] = []
        self._pending = 0
        self._paused = False
        self._exited = False
        self._killing = False
        self.returncode: int | None = None
        #: Why the gateway killed the driver (``None``: it was not killed for a fault).
        self.death_reason: str | None = None
        #: Seconds a queued frame may wait for the driver to read it; bytes that may wait.
        self.write_deadline = WRITE_DEADLINE
        self.max_pending_write = MAX_PENDING_WRITE
        self.changed: asyncio.Event = asyncio.Event()
        self.exited: asyncio.Event = asyncio.Event()
        self.on_exit: Callable[[DriverProcess], None] | None = None
        self._pidfd: int | None = None
        self._poller: asyncio.Task[None] | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._force_timer: asyncio.TimerHandle | None = None
        self._watch_readers(True)
        self._watch_exit()

    # ---- spawning -------------------------------------------------------------------------

    @classmethod
    def spawn(
        cls,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str],
        input_pipe: bool = False,
        sandbox: Sandbox | None = None,
        max_mem_kib: int = 0,
        max_frame: int = MAX_FRAME,
    ) -> DriverProcess:
        """Start ``argv`` contained by ``sandbox`` (must run in the loop).

        The driver finds its control socket in ``SORNA_CTL_FD`` (and node's input pipe in
        ``SORNA_INPUT_FD``); ``SORNA_GATEWAY_PID`` is its parent's pid. Under bwrap ``cwd``
        becomes the kernel's only writable folder.
        """
        sandbox = sandbox or Sandbox()
        parent, child = socket.socketpair()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r = in_w = life_r = life_w = -1
        pass_fds = [child.fileno()]
        env = dict(env)
        env["SORNA_CTL_FD"] = str(child.fileno())
        env["SORNA_GATEWAY_PID"] = str(os.getpid())
        if input_pipe:
            in_r, in_w = os.pipe()
            pass_fds.append(in_r)
            env["SORNA_INPUT_FD"] = str(in_r)
        if sandbox.supervised:
            life_r, life_w = os.pipe()
            pass_fds.append(life_r)
        command = sandbox.command(
            argv, workdir=cwd, max_mem_kib=max_mem_kib, lifeline=life_r if life_r >= 0 else None
        )
        try:
            # Spawned from the loop thread: PR_SET_PDEATHSIG follows the spawning thread's life.
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                cwd=cwd,
                env=env,
                pass_fds=pass_fds,
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            for fd in (out_r, err_r, in_w, life_w):
                if fd >= 0:
                    os.close(fd)
            parent.close()
            raise
        finally:
            child.close()
            for fd in (out_w, err_w, in_r, life_r):
                if fd >= 0:
                    os.close(fd)
        parent.setblocking(False)
        for fd in (out_r, err_r):
            os.set_blocking(fd, False)
        tree = Containment(sandbox, popen.pid, life_w if life_w >= 0 else None)
        return cls(
            popen,
            parent,
            {"stdout": out_r, "stderr": err_r},
            in_w if input_pipe else None,
            containment=tree,
            max_frame=max_frame,
        )

    # ---- identity -------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The driver's own pid (the process running the language), once it has started.

        Before that, and if it cannot be found, the pid of the supervisor or of bwrap.
        """
        return self._tree.kernel_pid() or self.popen.pid

    @property
    def tree_pid(self) -> int:
        """The pid of the process that contains the driver's tree (supervisor or bwrap)."""
        return self.popen.pid

    def driver_pid(self) -> int | None:
        """The driver's own pid, ``None`` while it is not running yet."""
        return self._tree.kernel_pid()

    def host_pid(self, pid: int) -> int | None:
        """This gateway's pid for a process of the kernel known by the pid the kernel sees.

        Under bwrap the kernel has a PID namespace: ``os.getpid()`` in kernel code is not the
        gateway's pid of that process. ``None`` when no such process of this kernel runs.
        """
        return None if self._exited else self._tree.host_pid(pid)

    # ---- sending --------------------------------------------------------------------------

    def send(self, kind: str, data: Any = None) -> None:
        """Queue a control frame; input goes to the input pipe when the driver has one.

        Never blocks and never raises: a driver that stops reading is killed (see above).
        """
        if self._exited or self._killing:
            return
        frame = encode_frame(kind, data)
        box = self._input_box if kind == "input" and self._input_box is not None else None
        box = box or self._ctl_box
        if box.size and box.size + len(frame) > self.max_pending_write:
            self.kill(
                f"the kernel stopped reading its input ({_mib(box.size + len(frame))} waiting, "
                f"the limit is {_mib(self.max_pending_write)})"
            )
            return
        box.push(frame, self._loop.time())
        self._arm_write_timer()

    def _arm_write_timer(self) -> None:
        if self._write_timer is not None or self._exited:
            return
        heads = [b.head_since for b in self._boxes() if b.head_since is not None]
        if heads:
            when = min(heads) + self.write_deadline
            self._write_timer = self._loop.call_at(when, self._on_write_timer)

    def _on_write_timer(self) -> None:
        self._write_timer = None
        now = self._loop.time()
        for box in self._boxes():
            since = box.head_since
            if since is not None and now - since >= self.write_deadline - 0.001:
                self.kill(f"the kernel stopped reading its input for {self.write_deadline:g} s")
                return
        self._arm_write_timer()

    def _boxes(self) -> list[_Outbox]:
        return [self._ctl_box] + ([self._input_box] if self._input_box is not None else [])

    def _drop_writes(self) -> None:
        for box in self._boxes():
            box.clear()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    @property
    def pending_write(self) -> int:
        """Bytes queued for the driver and not written yet."""
        return sum(box.size for box in self._boxes())

    # ---- collecting -----------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return not self._exited

    def has_control(self) -> bool:
        return any(item.control for item in self._items)

    def has_output(self) -> bool:
        """Whether any output (framed or raw) waits to be taken."""
        return bool(self._items) or bool(self._raw)

    def over_cap(self) -> bool:
        """Enough is buffered that reading has stopped: the client should collect now."""
        return self._paused or self._pending >= BUFFER_CAP

    @property
    def buffered(self) -> int:
        """What the driver's output holds in memory: console items plus a partial frame."""
        return self._pending + self._frames.buffered

    def take(self) -> tuple[list[Item], Item | None]:
        """Pop the output up to the first control item, and that item (or None)."""
        self._release_raw()
        out: list[Item] = []
        control: Item | None = None
        for index, item in enumerate(self._items):
            if item.control:
                control = item
                del self._items[: index + 1]
                break
            out.append(item)
        else:
            self._items.clear()
        for item in out:
            self._pending -= _size(item)
        if not self._items and not self._raw:
            self.changed.clear()
        if self._paused and not self._should_pause() and not self._exited:
            self._paused = False
            self._watch_readers(True)
        return out, control

    def _should_pause(self) -> bool:
        # A frame still arriving counts too, but only while there is output to collect:
        # with nothing buffered, the frame (at most max_frame) must be read to its end.
        if self._pending >= BUFFER_CAP:
            return True
        return self._pending > 0 and self.buffered >= BUFFER_CAP

    def _check_pause(self) -> None:
        if not self._paused and not self._exited and self._should_pause():
            self._paused = True
            self._watch_readers(False)
            self.changed.set()  # over_cap() is now true: a waiting collector should take

    def _push(self, item: Item, raw: bool = False) -> None:
        (self._raw if raw else self._items).append(item)
        if not item.control:
            self._pending += _size(item)
        self.changed.set()
        self._check_pause()

    # ---- readers --------------------------------------------------------------------------

    def _watch_readers(self, on: bool) -> None:
        fds: list[tuple[int, Callable[..., None], tuple[Any, ...]]] = []
        if self._ctl_open:
            fds.append((self._ctl.fileno(), self._on_ctl, ()))
        fds += [(fd, self._on_pipe, (kind,)) for kind, fd in self._pipes.items()]
        for fd, callback, args in fds:
            if fd < 0:
                continue
            if on:
                self._loop.add_reader(fd, callback, *args)
            else:
                self._loop.remove_reader(fd)

    def _on_pipe(self, kind: str, limit: int = 16, *, drain: bool = False) -> None:
        fd = self._pipes.get(kind, -1)
        for _ in range(limit):
            if fd < 0 or (self._paused and not drain):
                return
            try:
                chunk = os.read(fd, _READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            text = self._decoders[kind].decode(chunk, final=not chunk)
            if text:
                self._push(Item(kind, text), raw=True)
            if not chunk:
                self._loop.remove_reader(fd)
                os.close(fd)
                self._pipes[kind] = -1
                return

    def _drain_pipes(self) -> None:
        for kind in list(self._pipes):
            self._on_pipe(kind, limit=64, drain=True)  # bounded: 4 MiB per sync point

    def _release_raw(self) -> None:
        self._items += self._raw
        self._raw.clear()

    def _sync(self) -> None:
        # Everything the driver's children wrote before this point is already in the pipes.
        self._drain_pipes()
        self._release_raw()

    def _on_ctl(self) -> None:
        for _ in range(16):
            if self._paused or not self._ctl_open:
                return
            try:
                chunk = self._ctl.recv(_READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._close_ctl_reader()
                return
            try:
                frames = self._frames.feed(chunk)
            except FrameError as exc:
                self._apply(exc.frames, controls=True)
                self._close_ctl_reader()
                self.kill(_frame_reason(exc))
                return
            self._apply(frames, controls=True)
            self._check_pause()

    def _close_ctl_reader(self) -> None:
        if self._ctl_open:
            self._ctl_open = False
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._ctl.fileno())

    def _apply(self, frames: Iterable[tuple[str, Any]], *, controls: bool) -> None:
        """Queue output frames in order; ``controls=False`` ignores control frames."""
        for kind, data in frames:
            if kind in OUTPUT_KINDS:
                self._push(Item(kind, data))
            elif kind == SYNC_KIND:
                self._sync()
            elif controls and kind in CONTROL_KINDS:
                if kind == "ready":
                    ns_pid = data.get("pid") if is_object(data) else None
                    self._tree.kernel_pid(ns_pid if isinstance(ns_pid, int) else None)
                self._sync()
                self._push(Item(kind, data, control=True))

    # ---- exit -----------------------------------------------------------------------------

    def _watch_exit(self) -> None:
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is not None:
            try:
                self._pidfd = pidfd_open(self.popen.pid)
            except OSError:
                self._pidfd = None
        if self._pidfd is not None:
            self._loop.add_reader(self._pidfd, self._check_exit)
        else:
            self._poller = self._loop.create_task(self._poll_exit())

    async def _poll_exit(self) -> None:
        while not self._exited:
            await asyncio.sleep(_POLL_INTERVAL)
            self._check_exit()

    def _check_exit(self) -> None:
        if self._exited or self.popen.poll() is None:
            return
        # From here on the tree's pid is reaped: it must never be signalled again.
        self._exited = True
        self.returncode = self._tree.returncode(self.popen.returncode)
        self._tree.release()
        for timer in (self._force_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._force_timer = self._write_timer = None
        self._drop_writes()
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if not self._paused:
            self._watch_readers(False)
        self._paused = False
        # Collect what the driver wrote before dying (its tree is gone already).
        with contextlib.suppress(OSError):
            self._on_ctl_final()
        self._sync()
        self._close_fds()
        self._push(Item("died", self.returncode, control=True, reason=self.death_reason or ""))
        self.exited.set()
        if self.on_exit is not None:
            self.on_exit(self)

    def _on_ctl_final(self) -> None:
        if not self._ctl_open:
            return
        self._ctl.setblocking(False)
        # Bounded like the live reader: a driver's last words, not an unbounded dump.
        while self.buffered < BUFFER_CAP + self._frames.max_frame:
            try:
                chunk = self._ctl.recv(_READ_SIZE)
            except (BlockingIOError, OSError):
                return
            if not chunk:
                return
            try:
                frames = self._frames.feed(chunk)
            except FrameError as exc:
                self._apply(exc.frames, controls=False)
                return
            self._apply(frames, controls=False)  # the driver is gone: only its output counts

    def _close_fds(self) -> None:
        for kind, fd in self._pipes.items():
            if fd >= 0:
                os.close(fd)
                self._pipes[kind] = -1
        if self._input_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._input_fd)
            self._input_fd = None
        self._ctl_open = False
        self._ctl.close()

    # ---- ending ---------------------------------------------------------------------------

    def kill(self, reason: str = "") -> None:
        """End the driver's whole process tree now (the exit watcher then reports it).

        ``reason`` (why the gateway gave up on the driver) becomes :attr:`death_reason`.
        """
        if self._exited:
            return
        if reason and self.death_reason is None:
            self.death_reason = reason
        self._killing = True
        self._drop_writes()
        self._tree.kill()
        if self._force_timer is None:
            self._force_timer = self._loop.call_later(KILL_GRACE, self._force)

    def _force(self) -> None:
        self._force_timer = None
        if not self._exited:
            self._tree.force()

    def interrupt(self) -> None:
        """Deliver SIGINT to the driver (raises KeyboardInterrupt only while it executes)."""
        pid = self._tree.kernel_pid()
        if not self._exited and pid is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGINT)

    async def close(self, grace: float = 1.0) -> None:
        """End the driver: EOF on its socket first (it then exits), its whole tree later."""
        if not self._exited:
            self._drop_writes()
            with contextlib.suppress(OSError):
                self._ctl.shutdown(socket.SHUT_WR)
            try:
                await asyncio.wait_for(self.exited.wait(), grace)
            except asyncio.TimeoutError:
                self.kill()
                await asyncio.wait_for(self.exited.wait(), KILL_GRACE + 5.0)
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller


def _frame_reason(exc: FrameError) -> str:
    if isinstance(exc, FrameTooLarge):
        return f"output frame too large ({exc.size} bytes, the limit is {exc.limit})"
    return f"the kernel sent an invalid frame ({exc})"


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def _size(item: Item) -> int:
    data = item.data
    if isinstance(data, str):
        return len(data)
    if is_array(data):
        return sum(len(x) for x in data if isinstance(x, str))
    return 0
