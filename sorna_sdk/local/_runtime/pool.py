"""Starting configured drivers, from a warm pool of pre-spawned drivers when possible.

Which languages share a pool is data: every available language whose record says ``pooled``
(python3, lua5 and bash: the Python driver) draws from the pool of its driver file; the
driver learns its language from ``configure``.

Every driver starts contained (``sandbox.py``) with its limits: RLIMIT_DATA (the kernel's
memory limit), RLIMIT_NPROC and RLIMIT_CORE 0. A pooled driver starts before its kernel's
limit is known: it gets RLIMIT_DATA through ``prlimit`` when it is taken, before it is
configured (so before any kernel code runs). Under bwrap there is no pool: a sandbox is built
around one kernel's folder, so each driver starts for its kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import resource
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from sorna_sdk.local._runtime.errors import KernelCreationFailed
from sorna_sdk.local._runtime.languages import Language, available_languages, driver_env
from sorna_sdk.local._runtime.limits import RuntimeSettings
from sorna_sdk.local._runtime.process import DriverProcess
from sorna_sdk.local._runtime.protocol import MAX_FRAME, configure_data
from sorna_sdk.local._runtime.sandbox import Sandbox

__all__ = ["DriverLauncher"]

log: logging.Logger = logging.getLogger(__name__)

#: Interpreter start can be slow on a loaded machine; this only bounds a broken start.
READY_TIMEOUT: Final = 20.0
_REFILL_DELAY: Final = 0.02
#: How long a pooled driver's supervisor may take to fork it (it did long ago, normally).
_FORK_WAIT: Final = 2.0


class DriverLauncher:
    """Hands out ready drivers; pooled languages (python3, lua5, bash) share warm drivers.

    ``DriverLauncher(settings)``; the older ``DriverLauncher(root, pool_size)`` still works
    (default settings otherwise).
    """

    def __init__(self, settings: RuntimeSettings | Path, pool_size: int | None = None) -> None:
        if not isinstance(settings, RuntimeSettings):
            settings = RuntimeSettings(root=Path(settings), pool_size=pool_size or 0)
        elif pool_size is not None:
            settings = dataclasses.replace(settings, pool_size=pool_size)
        self.settings = settings
        #: How kernels are contained; the kernel's terminal uses the same.
        self.sandbox: Sandbox = Sandbox.from_settings(settings)
        self._root = settings.root
        # A pooled driver cannot be moved into its kernel's sandbox later: no pool under bwrap.
        self._size = max(settings.pool_size, 0) if self.sandbox.mode == "none" else 0
        self._max_frame = settings.max_media_bytes if settings.max_media_bytes > 0 else MAX_FRAME
        # driver file -> warm drivers of it, for every driver of an available pooled language
        self._pools: dict[str, deque[DriverProcess]] = {}
        self._pooled: dict[str, Language] = {}  # driver file -> the language that spawns it
        for lang in available_languages().values():
            if lang.pooled and self._size:
                self._pooled.setdefault(lang.driver, lang)
                self._pools.setdefault(lang.driver, deque())
        self._refill: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        self._schedule_refill()

    async def launch(
        self,
        lang: str,
        workdir: Path,
        max_mem_kib: int,
        environ: Mapping[str, str] | None = None,
    ) -> DriverProcess:
        """A driver for ``lang`` running in ``workdir`` with its limits and ``environ``."""
        record = available_languages()[lang]
        proc: DriverProcess | None = None
        if record.driver in self._pools:
            proc = await self._take(record.driver, max_mem_kib)
            self._schedule_refill()
        if proc is None:
            proc = self.spawn(lang, workdir, max_mem_kib)
        proc.send("configure", configure_data(lang, str(workdir), max_mem_kib, environ))
        try:
            await asyncio.wait_for(self._ready(proc), READY_TIMEOUT)
        except BaseException as exc:
            await proc.close(grace=0.1)
            if isinstance(exc, (asyncio.TimeoutError, KernelCreationFailed)):
                detail = str(exc) if isinstance(exc, KernelCreationFailed) else "timed out"
                raise KernelCreationFailed(f"{lang} kernel failed to start: {detail}") from None
            raise
        return proc

    def spawn(self, lang: str, cwd: Path, max_mem_kib: int) -> DriverProcess:
        """Start the driver of ``lang`` as ``launch`` does, but not configured yet.

        Must run in the loop; raises :class:`KernelCreationFailed` when it cannot start.
        """
        record = available_languages()[lang]
        try:
            return DriverProcess.spawn(
                record.argv(max_mem_kib),
                cwd=cwd,
                env=driver_env(),
                input_pipe=record.input_pipe,
                sandbox=self.sandbox,
                max_mem_kib=max_mem_kib,
                max_frame=self._max_frame,
            )
        except OSError as exc:
            raise KernelCreationFailed(f"{lang} kernel failed to start: {exc.strerror}") from exc

    async def close(self) -> None:
        self._closed = True
        if self._refill is not None:
            self._refill.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refill
        for pool in self._pools.values():
            while pool:
                await pool.popleft().close(grace=0.5)

    async def _take(self, driver: str, max_mem_kib: int) -> DriverProcess | None:
        pool = self._pools[driver]
        while pool:
            proc = pool.popleft()
            if proc.alive and await _limit(proc, max_mem_kib):
                return proc
            await proc.close(grace=0.1)
        return None

    def _schedule_refill(self) -> None:
        if self._pools and not self._closed and (self._refill is None or self._refill.done()):
            self._refill = asyncio.get_running_loop().create_task(self._fill())

    async def _fill(self) -> None:
        for driver, pool in self._pools.items():
            while not self._closed and len(pool) < self._size:
                # Spawning blocks the loop for a fork/exec: let the taker finish its handshake.
                await asyncio.sleep(_REFILL_DELAY)
                try:
                    pool.append(self.spawn(self._pooled[driver].name, self._root, 0))
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


async def _limit(proc: DriverProcess, max_mem_kib: int) -> bool:
    """Give a pooled driver its kernel's memory limit (False: it cannot be used)."""
    if max_mem_kib <= 0:
        return True
    loop = asyncio.get_running_loop()
    until = loop.time() + _FORK_WAIT
    pid = proc.driver_pid()
    while pid is None and proc.alive and loop.time() < until:
        await asyncio.sleep(0.005)
        pid = proc.driver_pid()
    if pid is None or not proc.alive:
        return False
    prlimit = getattr(resource, "prlimit", None)  # Linux only: elsewhere, start a fresh one
    if prlimit is None:
        return False
    limit = max_mem_kib * 1024
    try:
        prlimit(pid, resource.RLIMIT_DATA, (limit, limit))
    except (OSError, ValueError):
        log.warning("could not limit a pooled driver's memory", exc_info=True)
        return False
    return True
