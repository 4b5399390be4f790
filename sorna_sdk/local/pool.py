"""Starting configured drivers, from a warm pool of pre-spawned Python drivers when possible."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from pathlib import Path
from typing import Final

from sorna_sdk.local.errors import KernelCreationFailed
from sorna_sdk.local.languages import available_languages, driver_argv, driver_env
from sorna_sdk.local.process import DriverProcess

__all__ = ["DriverLauncher"]

log = logging.getLogger(__name__)

#: Interpreter start can be slow on a loaded machine; this only bounds a broken start.
READY_TIMEOUT: Final = 20.0
_REFILL_DELAY: Final = 0.02


class DriverLauncher:
    """Hands out ready drivers; python3, lua5 and bash share the pooled Python driver."""

    def __init__(self, root: Path, pool_size: int) -> None:
        self._root = root
        self._size = max(pool_size, 0)
        self._pool: deque[DriverProcess] = deque()
        self._refill: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        self._schedule_refill()

    async def launch(self, lang: str, workdir: Path, max_mem_kib: int) -> DriverProcess:
        """A driver for ``lang`` running in ``workdir`` with its limits applied."""
        if available_languages()[lang].driver == "python":
            proc = self._take() or self._spawn(lang, workdir, max_mem_kib)
            self._schedule_refill()
        else:
            proc = self._spawn(lang, workdir, max_mem_kib)
        proc.send("configure", {"lang": lang, "cwd": str(workdir), "max_mem_kib": max_mem_kib})
        try:
            await asyncio.wait_for(self._ready(proc), READY_TIMEOUT)
        except BaseException as exc:
            await proc.close(grace=0.1)
            if isinstance(exc, (asyncio.TimeoutError, KernelCreationFailed)):
                detail = str(exc) if isinstance(exc, KernelCreationFailed) else "timed out"
                raise KernelCreationFailed(f"{lang} kernel failed to start: {detail}") from None
            raise
        return proc

    async def close(self) -> None:
        self._closed = True
        if self._refill is not None:
            self._refill.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refill
        while self._pool:
            await self._pool.popleft().close(grace=0.5)

    def _spawn(self, lang: str, cwd: Path, max_mem_kib: int) -> DriverProcess:
        try:
            return DriverProcess.spawn(
                driver_argv(lang, max_mem_kib),
                cwd=cwd,
                env=driver_env(),
                input_pipe=available_languages()[lang].driver == "node",
            )
        except OSError as exc:
            raise KernelCreationFailed(f"{lang} kernel failed to start: {exc.strerror}") from exc

    def _take(self) -> DriverProcess | None:
        while self._pool:
            proc = self._pool.popleft()
            if proc.alive:
                return proc
        return None

    def _schedule_refill(self) -> None:
        if self._size and not self._closed and (self._refill is None or self._refill.done()):
            self._refill = asyncio.get_running_loop().create_task(self._fill())

    async def _fill(self) -> None:
        while not self._closed and len(self._pool) < self._size:
            # Spawning blocks the loop for a fork/exec: let the taker finish its handshake first.
            await asyncio.sleep(_REFILL_DELAY)
            try:
                self._pool.append(self._spawn("python3", self._root, 0))
            except KernelCreationFailed:
                log.warning("could not pre-spawn a pooled driver", exc_info=True)
                return

    @staticmethod
    async def _ready(proc: DriverProcess) -> None:
        while True:
            if proc.has_control():
                items, control = proc.take()
                if control is not None and control.kind == "ready":
                    return
                text = "".join(i.data for i in items if isinstance(i.data, str)).strip()
                code = control.data if control is not None and control.kind == "died" else None
                tail = text.splitlines()[-1] if text else f"exit code {code}"
                raise KernelCreationFailed(tail[-300:])
            proc.changed.clear()
            await proc.changed.wait()
