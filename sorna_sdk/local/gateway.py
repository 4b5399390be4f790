"""Start and stop the local gateway in-process: on the running loop, or in a thread of its own.

At start the gateway also, process-wide: raises the soft ``RLIMIT_NOFILE`` to the hard limit
(``raise_nofile_limit``), and installs an event-loop exception handler that lets asyncio's
"socket.accept() out of system resource" line (EMFILE: out of file descriptors) through once
per ``accept_error_log_interval`` seconds; close() puts the previous handler back.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import errno
import ipaddress
import logging
import os
import stat
import tempfile
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

from ._http.app import ServerLimits, create_app
from ._http.connections import ConnectionGuard, ConnectionLimits
from ._http.listener import HttpListener
from ._http.ratelimit import Throttle
from ._keys import Keypair, default_keypair_path, generate_keypair, load_or_create_keypair
from ._runtime import sandbox as _sandbox
from ._runtime.files import remove_tree
from ._runtime.registry import KernelRegistry, RuntimeSettings

if TYPE_CHECKING:
    from ..config import APIConfig

__all__ = ["GatewaySettings", "LocalGateway", "RunningGateway"]

log: logging.Logger = logging.getLogger(__name__)

#: Logged once per start when ``sandbox="auto"`` finds no usable sandbox.
NO_SANDBOX_WARNING: Final = (
    "sorna: no sandbox (bubblewrap not found): kernels run as your user and can read your files"
)
#: Where the soft RLIMIT_NOFILE goes when the hard limit is unlimited.
_NOFILE_CEILING: Final = 1 << 20
_ACCEPT_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_SandboxMode = Literal["auto", "bwrap", "none"]


@dataclass(frozen=True)
class GatewaySettings:
    """How to run a local gateway. Every field has a development-friendly default.

    Keys: ``access_key`` + ``secret_key`` if given; else the keypair kept in
    ``keypair_file`` (created on first use); else a fresh in-memory keypair.
    """

    host: str = "127.0.0.1"
    """The address to bind; loopback by default (another address exposes the kernels)."""
    port: int = 0
    """The TCP port; 0 picks a free one (read it from :attr:`LocalGateway.port`)."""
    access_key: str | None = None
    """The access key clients sign with; ``None``: from ``keypair_file`` or generated."""
    secret_key: str | None = field(default=None, repr=False)
    """The secret key of ``access_key`` (kept out of ``repr()``)."""
    keypair_file: Path | None = None
    """A JSON keypair file to use, created (mode 0600) on first use."""
    rate_limit: int = 1_000_000
    """Queries one keypair may make per 15 minutes (then 429)."""
    concurrency_limit: int = 64
    """Living kernels one keypair may have (then 412)."""
    max_request_bytes: int = 8 * 1024 * 1024
    """Largest request body accepted, in bytes (413 beyond)."""
    root: Path | None = None
    """Kernels' working directories live here; ``None``: a temporary directory removed on close."""
    flush_window: float = 2.0
    """Seconds before a long run returns ``continued``."""
    idle_timeout: float = 600.0
    """Seconds a kernel may stay idle before it is destroyed."""
    exec_timeout: float = 1800.0
    """Seconds a run may take when its create names no limit (Backend.AI creates never do)."""
    resume_grace: float = 15.0
    """Seconds a run whose execute stream dropped waits to be resumed, then is interrupted."""
    pool_size: int = 1
    """Warm interpreters kept ready (0: off); not used under bubblewrap."""
    max_upload_files: int = 20
    """Most files one upload may carry."""
    max_upload_bytes: int = 1024 * 1024
    """Largest uploaded file, in bytes."""
    shutdown_timeout: float = 5.0
    """Seconds that close() grants requests in flight."""
    access_log: bool = False
    """Log one line per request (logger ``aiohttp.access``)."""
    keepalive_timeout: float = 75.0
    """Seconds an idle kept-alive connection stays open."""
    header_timeout: float = 20.0
    """Seconds a client has to send a request's head (request line and headers), counted from its
    first byte, or from the connection's start for the first request."""
    body_timeout: float = 60.0
    """Seconds a client has to send a request's body, counted from the end of its head."""
    max_connections: int = 1000
    """Open connections beyond this many are answered 503 and closed at once."""
    raise_nofile_limit: bool = True
    """Raise the process's soft RLIMIT_NOFILE to its hard limit at start."""
    accept_error_log_interval: float = 10.0
    """asyncio's accept-error line (e.g. EMFILE) is logged at most once per this many seconds."""
    sandbox: _SandboxMode = "auto"
    """How kernels are isolated: "auto" (bubblewrap when it works, else none, with a warning),
    "bwrap" (fail to start without it) or "none"."""
    kernel_network: bool = False
    """Sandboxed kernels get the host's network (default: none at all)."""
    hidden_paths: tuple[Path, ...] = ()
    """More paths sandboxed kernels must not see; the keypair files' folder always is hidden."""

    def __post_init__(self) -> None:
        if (self.access_key is None) != (self.secret_key is None):
            raise ValueError("give both access_key and secret_key, or neither")
        if self.rate_limit < 1 or self.concurrency_limit < 0:
            raise ValueError("rate_limit must be at least 1 and concurrency_limit at least 0")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        if self.sandbox not in ("auto", "bwrap", "none"):
            raise ValueError(f"sandbox must be auto, bwrap or none, got {self.sandbox!r}")
        if self.accept_error_log_interval < 0:
            raise ValueError("accept_error_log_interval must be 0 or more")
        if self.resume_grace < 0:
            raise ValueError("resume_grace must be 0 or more")
        if not 0 < self.exec_timeout <= 6 * 3600:
            raise ValueError(f"exec_timeout must be in (0, 21600] seconds, got {self.exec_timeout}")
        _connection_limits(self)  # validates the deadlines and the cap

    def replace(self, **changes: Any) -> GatewaySettings:
        """A copy with some fields changed."""
        return replace(self, **changes)


class LocalGateway:
    """The Sorna API served on this machine, kernels as local processes.

    A development and testing server: code runs as the local user, in a bubblewrap sandbox
    when one is available (``sandbox``).

    >>> async with LocalGateway() as gw:  # doctest: +SKIP
    ...     config = gw.config()
    """

    def __init__(self, settings: GatewaySettings | None = None, **changes: Any) -> None:
        base = settings or GatewaySettings()
        self.settings: GatewaySettings = base.replace(**changes) if changes else base
        """The settings in use (``settings`` with ``changes`` applied)."""
        self._keypair = _keypair(self.settings)
        self._listener: HttpListener | None = None
        self._guard: ConnectionGuard | None = None
        self._accept_log: _AcceptErrorLog | None = None
        self._registry: KernelRegistry | None = None
        self._temp_root: Path | None = None
        self._port = 0
        self._sandbox: Literal["bwrap", "none"] | None = None

    def __repr__(self) -> str:
        state = self.endpoint if self._listener else "not started"
        return f"<LocalGateway {state} as {self.access_key}>"

    @property
    def access_key(self) -> str:
        """The access key clients sign with."""
        return self._keypair.access_key

    @property
    def secret_key(self) -> str:
        """The secret key of :attr:`access_key`."""
        return self._keypair.secret_key

    @property
    def host(self) -> str:
        """The bound address."""
        return self.settings.host

    @property
    def port(self) -> int:
        """The bound port (the chosen one when the settings said 0); 0 before start()."""
        return self._port

    @property
    def endpoint(self) -> str:
        """The base URL clients use (``http://127.0.0.1:PORT``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def sandbox(self) -> Literal["bwrap", "none"] | None:
        """The isolation kernels get ("bwrap" or "none"), resolved at start; None before."""
        return self._sandbox

    @property
    def connections(self) -> int:
        """Open HTTP connections; 0 before start()."""
        return self._guard.connections if self._guard is not None else 0

    @property
    def registry(self) -> KernelRegistry:
        """The kernels of the running gateway (``RuntimeError`` before start)."""
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
        if self._listener is not None:
            raise RuntimeError("the gateway is already started")
        settings = self.settings
        loop = asyncio.get_running_loop()
        try:
            sandbox = _resolve_sandbox(settings.sandbox)
            if settings.sandbox == "auto" and sandbox == "none":
                log.warning(NO_SANDBOX_WARNING)
            self._sandbox = sandbox
            if settings.raise_nofile_limit:
                _raise_nofile_limit(settings.max_connections)
            self._accept_log = _AcceptErrorLog.install(loop, settings.accept_error_log_interval)
            root = settings.root
            if root is None:
                # mkdtemp: mode 0700, a fresh name no one else can have prepared.
                root = self._temp_root = Path(tempfile.mkdtemp(prefix="sorna-local-"))
            else:
                _prepare_root(root)
            runtime = _runtime_settings(settings, root, sandbox, _hidden_paths(settings))
            self._registry = KernelRegistry(runtime)
            await self._registry.start()
            self._guard = guard = ConnectionGuard(_connection_limits(settings))
            app = create_app(
                self._registry,
                {self.access_key: self.secret_key},
                _server_limits(settings),
                guard=guard,
            )
            self._listener = HttpListener(app, guard)
            self._port = await self._listener.start(
                settings.host,
                settings.port,
                shutdown_timeout=settings.shutdown_timeout,
                keepalive_timeout=settings.keepalive_timeout,
                access_log=settings.access_log,
                backlog=min(max(settings.max_connections, 128), 4096),
            )
        except BaseException:
            await self.close()
            raise
        if not await _is_loopback(settings.host):
            log.warning(
                "serving plain HTTP on %s: requests are signed, not encrypted; anyone on the "
                "network path can read code, output and uploads, and replay a request for "
                "15 minutes. Bind 127.0.0.1, or put a TLS proxy in front.",
                self.endpoint,
            )
        log.info("local gateway listening on %s", self.endpoint)

    async def close(self) -> None:
        """Stop listening, end every kernel process and remove the temporary root."""
        listener, self._listener = self._listener, None
        registry, self._registry = self._registry, None
        accept_log, self._accept_log = self._accept_log, None
        try:
            if listener is not None:
                await listener.close()
        finally:
            try:
                if registry is not None:
                    await registry.close()
            finally:
                self._guard = None
                self._sandbox = None
                if accept_log is not None:
                    accept_log.uninstall()
                if self._temp_root is not None:
                    await remove_tree(self._temp_root)
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
        self.gateway: LocalGateway = gateway
        """The gateway this thread runs."""
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
        """See :attr:`LocalGateway.endpoint`."""
        return self.gateway.endpoint

    @property
    def host(self) -> str:
        """See :attr:`LocalGateway.host`."""
        return self.gateway.host

    @property
    def port(self) -> int:
        """See :attr:`LocalGateway.port`."""
        return self.gateway.port

    @property
    def access_key(self) -> str:
        """See :attr:`LocalGateway.access_key`."""
        return self.gateway.access_key

    @property
    def secret_key(self) -> str:
        """See :attr:`LocalGateway.secret_key`."""
        return self.gateway.secret_key

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop of the gateway's thread."""
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


def _runtime_settings(
    settings: GatewaySettings,
    root: Path,
    sandbox: Literal["bwrap", "none"],
    hidden: tuple[Path, ...],
) -> RuntimeSettings:
    return RuntimeSettings(
        root=root,
        flush_window=settings.flush_window,
        idle_timeout=settings.idle_timeout,
        default_exec_timeout=settings.exec_timeout,
        pool_size=settings.pool_size,
        max_upload_files=settings.max_upload_files,
        max_upload_bytes=settings.max_upload_bytes,
        sandbox=sandbox,
        kernel_network=settings.kernel_network,
        hidden_paths=hidden,
    )


def _connection_limits(settings: GatewaySettings) -> ConnectionLimits:
    return ConnectionLimits(
        keepalive_timeout=settings.keepalive_timeout,
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_connections=settings.max_connections,
    )


def _server_limits(settings: GatewaySettings) -> ServerLimits:
    return ServerLimits(
        rate_limit=settings.rate_limit,
        concurrency_limit=settings.concurrency_limit,
        max_request_bytes=settings.max_request_bytes,
        max_upload_files=settings.max_upload_files,
        max_upload_bytes=settings.max_upload_bytes,
        resume_grace=settings.resume_grace,
    )


def _resolve_sandbox(mode: _SandboxMode) -> Literal["bwrap", "none"]:
    """``auto`` -> bwrap when bubblewrap works here, else none; ``bwrap`` raises without it."""
    return _sandbox.resolve(mode)


def _hidden_paths(settings: GatewaySettings) -> tuple[Path, ...]:
    """The keypair files' folders (the default one and ``keypair_file``'s) and the extra paths."""
    paths: list[Path] = []
    with contextlib.suppress(RuntimeError, OSError):  # no home directory
        paths.append(default_keypair_path().parent)
    if settings.keypair_file is not None:
        paths.append(settings.keypair_file.parent)
    paths.extend(settings.hidden_paths)
    unique: dict[Path, None] = {}
    for path in paths:
        with contextlib.suppress(OSError):
            if path.exists():
                unique[path.resolve()] = None
    return tuple(unique)


def _prepare_root(root: Path) -> None:
    """Create ``root`` with mode 0700; refuse one others could write, warn of one they can read.

    Kernels' folders, their files and uploads live there: a folder others can write lets them
    plant files and links in a kernel's way; one they can read shows them the files.
    """
    try:
        root.mkdir(mode=0o700, parents=True)
        return
    except FileExistsError:
        pass
    info = root.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, "the gateway's root is not a folder", str(root))
    mode = stat.S_IMODE(info.st_mode)
    if hasattr(os, "getuid") and info.st_uid not in (os.getuid(), 0):
        raise PermissionError(
            errno.EPERM,
            "the gateway's root belongs to another user; pick a folder of yours",
            str(root),
        )
    if mode & 0o022:
        raise PermissionError(
            errno.EPERM,
            f"the gateway's root is writable by group or others (mode {mode:04o}); "
            f"run chmod 700 on it or pick another folder",
            str(root),
        )
    if mode & 0o055:
        log.warning(
            "the gateway's root %s is readable by group or others (mode %04o): they can read "
            "kernels' files; chmod 700 it to stop that",
            root,
            mode,
        )


def _raise_nofile_limit(wanted: int) -> None:
    """Soft RLIMIT_NOFILE up to the hard limit: each connection is a file descriptor."""
    try:
        import resource
    except ImportError:  # not POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _NOFILE_CEILING if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        for candidate in (target, min(target, 10240)):  # macOS refuses more than OPEN_MAX
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (candidate, hard))
            except (ValueError, OSError):
                continue
            log.debug("RLIMIT_NOFILE raised from %d to %d", soft, candidate)
            soft = candidate
            break
    if soft != resource.RLIM_INFINITY and soft < wanted + 64:
        log.warning(
            "only %d file descriptors (RLIMIT_NOFILE) for up to %d connections: "
            "raise the limit (ulimit -n) or lower max_connections",
            soft,
            wanted,
        )


class _AcceptErrorLog:
    """A loop exception handler: asyncio's accept-error line once per interval, the rest as is.

    When the process runs out of file descriptors, asyncio logs "socket.accept() out of
    system resource" with a traceback each second for as long as it lasts.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self._loop = loop
        self._previous = loop.get_exception_handler()
        self._throttle = Throttle(interval)

    @classmethod
    def install(cls, loop: asyncio.AbstractEventLoop, interval: float) -> _AcceptErrorLog:
        handler = cls(loop, interval)
        loop.set_exception_handler(handler)
        return handler

    def uninstall(self) -> None:
        # Only if still on top: a handler set after ours keeps calling ours as its previous.
        if self._loop.get_exception_handler() is self and not self._loop.is_closed():
            self._loop.set_exception_handler(self._previous)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _ACCEPT_ERRNOS and "socket" in context:
            held = self._throttle.allow()
            if held is None:
                return
            if held:
                context = {
                    **context,
                    "message": f"{context.get('message')} ({held} more not logged)",
                }
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)


async def _is_loopback(host: str) -> bool:
    """Whether ``host`` names loopback addresses only ("" and 0.0.0.0 mean every interface)."""
    name = host.strip("[]")
    if not name:
        return False
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(name, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    try:
        return bool(addresses) and all(
            ipaddress.ip_address(str(a).split("%", 1)[0]).is_loopback for a in addresses
        )
    except ValueError:
        return False
