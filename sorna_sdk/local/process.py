"""One driver subprocess: spawning, framed control I/O, raw output pipes, backpressure, death.

This is the only module that touches file descriptors and signals. Everything the driver says
is kept, in arrival order, as a list of items; the kernel takes them in batches.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sorna_sdk.local.protocol import (
    CONTROL_KINDS,
    OUTPUT_KINDS,
    SYNC_KIND,
    FrameDecoder,
    FrameError,
    encode_frame,
)

__all__ = ["BUFFER_CAP", "DriverProcess", "Item"]

#: Buffered console text (characters) above which reading stops until the client collects.
BUFFER_CAP: Final = 1024 * 1024
_READ_SIZE: Final = 64 * 1024
_POLL_INTERVAL: Final = 0.1


@dataclass
class Item:
    """One thing the driver said: console output (``control`` False) or a control frame."""

    kind: str
    data: Any
    control: bool = False


class DriverProcess:
    """A running driver with its own session and process group."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        ctl: socket.socket,
        pipes: dict[str, int],
        input_fd: int | None,
    ) -> None:
        self.popen = popen
        self.pid = popen.pid
        self._ctl = ctl
        self._pipes = dict(pipes)  # kind -> read fd
        self._decoders = {
            kind: codecs.getincrementaldecoder("utf-8")("replace") for kind in self._pipes
        }
        self._input_fd = input_fd
        self._frames = FrameDecoder()
        self._items: list[Item] = []
        # Raw-pipe output waits here until a sync point (a sync or control frame, or a take),
        # so that it lands in order with the framed output around it.
        self._raw: list[Item] = []
        self._pending = 0
        self._paused = False
        self._exited = False
        self.returncode: int | None = None
        self.changed = asyncio.Event()
        self.exited = asyncio.Event()
        self.on_exit: Callable[[DriverProcess], None] | None = None
        self._loop = asyncio.get_running_loop()
        self._pidfd: int | None = None
        self._poller: asyncio.Task[None] | None = None
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
    ) -> DriverProcess:
        """Start ``argv`` with the control socket fd in ``SORNA_CTL_FD`` (must run in the loop)."""
        parent, child = socket.socketpair()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r = in_w = -1
        pass_fds = [child.fileno()]
        env = dict(env)
        env["SORNA_CTL_FD"] = str(child.fileno())
        env["SORNA_GATEWAY_PID"] = str(os.getpid())
        if input_pipe:
            in_r, in_w = os.pipe()
            pass_fds.append(in_r)
            env["SORNA_INPUT_FD"] = str(in_r)
        try:
            # Spawned from the loop thread: PR_SET_PDEATHSIG follows the spawning thread's life.
            popen = subprocess.Popen(
                list(argv),
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
            for fd in (out_r, err_r, in_w):
                if fd >= 0:
                    os.close(fd)
            parent.close()
            raise
        finally:
            child.close()
            for fd in (out_w, err_w, in_r):
                if fd >= 0:
                    os.close(fd)
        parent.setblocking(False)
        for fd in (out_r, err_r):
            os.set_blocking(fd, False)
        return cls(popen, parent, {"stdout": out_r, "stderr": err_r}, in_w if input_pipe else None)

    # ---- sending --------------------------------------------------------------------------

    def send(self, kind: str, data: Any = None) -> None:
        """Send a control frame; input goes to the input pipe when the driver has one."""
        if self._exited:
            return
        frame = encode_frame(kind, data)
        target = self._input_fd if kind == "input" and self._input_fd is not None else None
        try:
            if target is not None:
                os.write(target, frame)
            else:
                # Frames to the driver are small and the driver always reads them promptly.
                self._ctl.setblocking(True)
                try:
                    self._ctl.sendall(frame)
                finally:
                    self._ctl.setblocking(False)
        except OSError:
            pass  # a dead driver is reported through the exit watcher

    # ---- collecting -----------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return not self._exited

    def has_control(self) -> bool:
        return any(item.control for item in self._items)

    def over_cap(self) -> bool:
        return self._pending >= BUFFER_CAP

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
        if self._paused and not self.over_cap() and not self._exited:
            self._paused = False
            self._watch_readers(True)
        return out, control

    def _push(self, item: Item, raw: bool = False) -> None:
        (self._raw if raw else self._items).append(item)
        if not item.control:
            self._pending += _size(item)
        self.changed.set()
        if self.over_cap() and not self._paused and not self._exited:
            self._paused = True
            self._watch_readers(False)

    # ---- readers --------------------------------------------------------------------------

    def _watch_readers(self, on: bool) -> None:
        fds: list[tuple[int, Callable[..., None], tuple[Any, ...]]] = [
            (self._ctl.fileno(), self._on_ctl, ())
        ]
        fds += [(fd, self._on_pipe, (kind,)) for kind, fd in self._pipes.items()]
        for fd, callback, args in fds:
            if fd < 0:
                continue
            if on:
                self._loop.add_reader(fd, callback, *args)
            else:
                self._loop.remove_reader(fd)

    def _on_pipe(self, kind: str, limit: int = 16) -> None:
        fd = self._pipes.get(kind, -1)
        for _ in range(limit):
            if fd < 0:
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
            self._on_pipe(kind, limit=64)

    def _release_raw(self) -> None:
        self._items += self._raw
        self._raw.clear()

    def _sync(self) -> None:
        # Everything the driver's children wrote before this point is already in the pipes.
        self._drain_pipes()
        self._release_raw()

    def _on_ctl(self) -> None:
        for _ in range(16):
            try:
                chunk = self._ctl.recv(_READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._loop.remove_reader(self._ctl.fileno())
                return
            try:
                frames = self._frames.feed(chunk)
            except FrameError:
                self.kill()
                return
            self._apply(frames, controls=True)

    def _apply(self, frames: Iterable[tuple[str, Any]], *, controls: bool) -> None:
        """Queue output frames in order; ``controls=False`` ignores control frames."""
        for kind, data in frames:
            if kind in OUTPUT_KINDS:
                self._push(Item(kind, data))
            elif kind == SYNC_KIND:
                self._sync()
            elif controls and kind in CONTROL_KINDS:
                self._sync()
                self._push(Item(kind, data, control=True))

    # ---- exit -----------------------------------------------------------------------------

    def _watch_exit(self) -> None:
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is not None:
            try:
                self._pidfd = pidfd_open(self.pid)
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
        self._exited = True
        self.returncode = self.popen.returncode
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if not self._paused:
            self._watch_readers(False)
        self._paused = False
        # Collect what the driver wrote before dying, then sweep its grandchildren.
        with contextlib.suppress(OSError):
            self._on_ctl_final()
        self._sync()
        self._kill_group()
        self._close_fds()
        self._push(Item("died", self.returncode, control=True))
        self.exited.set()
        if self.on_exit is not None:
            self.on_exit(self)

    def _on_ctl_final(self) -> None:
        self._ctl.setblocking(False)
        while True:
            try:
                chunk = self._ctl.recv(_READ_SIZE)
            except (BlockingIOError, OSError):
                return
            if not chunk:
                return
            try:
                frames = self._frames.feed(chunk)
            except FrameError:
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
        self._ctl.close()

    def _kill_group(self) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)

    # ---- ending ---------------------------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL the driver's whole process group (the exit watcher then reports it)."""
        if not self._exited:
            self._kill_group()
            with contextlib.suppress(OSError):
                self.popen.kill()

    def interrupt(self) -> None:
        """Deliver SIGINT to the driver (raises KeyboardInterrupt only while it executes)."""
        if not self._exited:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGINT)

    async def close(self, grace: float = 1.0) -> None:
        """End the driver: EOF on its socket first (it then kills its group), SIGKILL later."""
        if not self._exited:
            with contextlib.suppress(OSError):
                self._ctl.shutdown(socket.SHUT_WR)
            try:
                await asyncio.wait_for(self.exited.wait(), grace)
            except asyncio.TimeoutError:
                self.kill()
                await asyncio.wait_for(self.exited.wait(), 5.0)
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller


def _size(item: Item) -> int:
    data = item.data
    if isinstance(data, str):
        return len(data)
    if isinstance(data, list):
        return sum(len(x) for x in data if isinstance(x, str))
    return 0
