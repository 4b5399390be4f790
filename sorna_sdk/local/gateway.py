"""Start and stop the local gateway in-process: on the running loop, or in a thread of its own."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import shutil
import tempfile
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .keys import Keypair, generate_keypair, load_or_create_keypair
from .registry import KernelRegistry, RuntimeSettings
from .server import ServerLimits, create_app

if TYPE_CHECKING:
    from ..config import APIConfig

__all__ = ["GatewaySettings", "LocalGateway", "RunningGateway"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GatewaySettings:
    """How to run a local gateway. Every field has a development-friendly default.

    Keys: ``access_key`` + ``secret_key`` if given; else the keypair kept in
    ``keypair_file`` (created on first use); else a fresh in-memory keypair.
    """

    host: str = "127.0.0.1"
    port: int = 0
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    keypair_file: Path | None = None
    rate_limit: int = 1_000_000
    concurrency_limit: int = 64
    max_request_bytes: int = 8 * 1024 * 1024
    #: Kernels' working directories live here; ``None``: a temporary directory removed on close.
    root: Path | None = None
    flush_window: float = 2.0
    idle_timeout: float = 600.0
    pool_size: int = 1
    max_upload_files: int = 20
    max_upload_bytes: int = 1024 * 1024
    #: Seconds that close() grants requests in flight.
    shutdown_timeout: float = 5.0
    #: Log one line per request (logger ``aiohttp.access``).
    access_log: bool = False

    def __post_init__(self) -> None:
        if (self.access_key is None) != (self.secret_key is None):
            raise ValueError("give both access_key and secret_key, or neither")
        if self.rate_limit < 1 or self.concurrency_limit < 0:
            raise ValueError("rate_limit must be at least 1 and concurrency_limit at least 0")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")

    def replace(self, **changes: Any) -> GatewaySettings:
        """A copy with some fields changed."""
        return replace(self, **changes)


class LocalGateway:
    """The Sorna API served on this machine, kernels as local processes.

    A development and testing server: code runs as the local user, not in a sandbox.

    >>> async with LocalGateway() as gw:  # doctest: +SKIP
    ...     config = gw.config()
    """

    def __init__(self, settings: GatewaySettings | None = None, **changes: Any) -> None:
        base = settings or GatewaySettings()
        self.settings = base.replace(**changes) if changes else base
        self._keypair = _keypair(self.settings)
        self._runner: web.AppRunner | None = None
        self._registry: KernelRegistry | None = None
        self._temp_root: Path | None = None
        self._port = 0

    def __repr__(self) -> str:
        state = self.endpoint if self._runner else "not started"
        return f"<LocalGateway {state} as {self.access_key}>"

    @property
    def access_key(self) -> str:
        return self._keypair.access_key

    @property
    def secret_key(self) -> str:
        return self._keypair.secret_key

    @property
    def host(self) -> str:
        return self.settings.host

    @property
    def port(self) -> int:
        """The bound port (the chosen one when the settings said 0); 0 before start()."""
        return self._port

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def registry(self) -> KernelRegistry:
        if self._registry is None:
            raise RuntimeError("the gateway is not started")
        return self._registry

    def config(self, **changes: Any) -> APIConfig:
        """An :class:`~sorna_sdk.APIConfig` for this gateway; ``changes`` override fields."""
        from ..config import APIConfig

        fields: dict[str, Any] = {
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "endpoint": self.endpoint,
        }
        return APIConfig(**{**fields, **changes})

    async def start(self) -> None:
        """Start the kernel registry, then listen; on failure, undo what was started."""
        if self._runner is not None:
            raise RuntimeError("the gateway is already started")
        settings = self.settings
        root = settings.root
        if root is None:
            root = self._temp_root = Path(tempfile.mkdtemp(prefix="sorna-local-"))
        try:
            self._registry = KernelRegistry(_runtime_settings(settings, root))
            await self._registry.start()
            app = create_app(
                self._registry, {self.access_key: self.secret_key}, _server_limits(settings)
            )
            self._runner = web.AppRunner(
                app,
                handle_signals=False,
                shutdown_timeout=settings.shutdown_timeout,
                access_log=logging.getLogger("aiohttp.access") if settings.access_log else None,
            )
            await self._runner.setup()
            site = web.TCPSite(self._runner, settings.host, settings.port)
            await site.start()
            self._port = _bound_port(self._runner)
        except BaseException:
            await self.close()
            raise
        log.info("local gateway listening on %s", self.endpoint)

    async def close(self) -> None:
        """Stop listening, end every kernel process and remove the temporary root."""
        runner, self._runner = self._runner, None
        registry, self._registry = self._registry, None
        try:
            if runner is not None:
                await runner.cleanup()
        finally:
            try:
                if registry is not None:
                    await registry.close()
            finally:
                if self._temp_root is not None:
                    shutil.rmtree(self._temp_root, ignore_errors=True)
                    self._temp_root = None

    async def __aenter__(self) -> LocalGateway:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @classmethod
    def start_in_thread(
        cls, settings: GatewaySettings | None = None, *, timeout: float = 30.0, **changes: Any
    ) -> RunningGateway:
        """Start a gateway on an event loop in a daemon thread, for synchronous code."""
        return RunningGateway(cls(settings, **changes), timeout=timeout)


class RunningGateway:
    """A :class:`LocalGateway` running in a thread of its own; ``stop()`` ends it.

    >>> with LocalGateway.start_in_thread() as gw:  # doctest: +SKIP
    ...     config = gw.config()
    """

    def __init__(self, gateway: LocalGateway, *, timeout: float = 30.0) -> None:
        self.gateway = gateway
        self._loop = asyncio.new_event_loop()
        self._started: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, name=f"sorna-local-gateway-{id(self):x}", daemon=True
        )
        self._thread.start()
        try:
            self._started.result(timeout)
        except BaseException:
            if self._started.done():
                self._thread.join(timeout)  # start() failed: the thread has cleaned up
            else:
                self._finish(timeout)
            raise
        # A daemon thread dies silently at exit; make sure kernels end with it.
        atexit.register(self.stop)

    def __repr__(self) -> str:
        return f"<RunningGateway {self.gateway!r}>"

    @property
    def endpoint(self) -> str:
        return self.gateway.endpoint

    @property
    def host(self) -> str:
        return self.gateway.host

    @property
    def port(self) -> int:
        return self.gateway.port

    @property
    def access_key(self) -> str:
        return self.gateway.access_key

    @property
    def secret_key(self) -> str:
        return self.gateway.secret_key

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def config(self, **changes: Any) -> APIConfig:
        """An :class:`~sorna_sdk.APIConfig` for this gateway."""
        return self.gateway.config(**changes)

    def stop(self, timeout: float = 30.0) -> None:
        """Close the gateway (every kernel ends) and its thread; idempotent."""
        atexit.unregister(self.stop)
        self._finish(timeout)

    def _finish(self, timeout: float) -> None:
        if self._thread.is_alive() and not self._loop.is_closed():
            try:
                future = asyncio.run_coroutine_threadsafe(self.gateway.close(), self._loop)
                future.result(timeout)
            finally:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)

    def _run(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.gateway.start())
        except BaseException as exc:
            self._started.set_exception(exc)
            _close_loop(loop)
            return
        self._started.set_result(None)
        try:
            loop.run_forever()
        finally:
            _close_loop(loop)

    def __enter__(self) -> RunningGateway:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    asyncio.set_event_loop(None)
    loop.close()


def _keypair(settings: GatewaySettings) -> Keypair:
    if settings.access_key is not None and settings.secret_key is not None:
        return Keypair(settings.access_key, settings.secret_key)
    if settings.keypair_file is not None:
        return load_or_create_keypair(settings.keypair_file)[0]
    return generate_keypair()


def _runtime_settings(settings: GatewaySettings, root: Path) -> RuntimeSettings:
    return RuntimeSettings(
        root=root,
        flush_window=settings.flush_window,
        idle_timeout=settings.idle_timeout,
        pool_size=settings.pool_size,
        max_upload_files=settings.max_upload_files,
        max_upload_bytes=settings.max_upload_bytes,
    )


def _server_limits(settings: GatewaySettings) -> ServerLimits:
    return ServerLimits(
        rate_limit=settings.rate_limit,
        concurrency_limit=settings.concurrency_limit,
        max_request_bytes=settings.max_request_bytes,
        max_upload_files=settings.max_upload_files,
        max_upload_bytes=settings.max_upload_bytes,
    )


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the gateway is not bound to a TCP port")
