"""Sessions: one configuration, one wire dialect and one long-lived httpx client, sync and async.

The two fronts only move bytes; building requests (the dialect), signing, parsing, error
mapping and retry decisions live in pure modules shared by both. With
``APIConfig(version="auto")`` the dialect is negotiated on first use: one anonymous
``GET /``, then ``min(server, newest supported)``.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from typing_extensions import TypeIs

from ._constants import EMPTY_BODY_CONTENT_TYPE
from ._dialects import AUTO, NEGOTIATING, Dialect, dialect_for
from ._protocol import Call, Response
from ._retry import Failure, RetryPolicy
from ._transports import classify, default_async_transport
from .auth import HMACAuth
from .config import APIConfig
from .exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    InvalidArgumentError,
    UnsupportedAPIVersionError,
)
from .models import AuthorizeResponse, HelloResponse

__all__ = [
    "AsyncSession",
    "Build",
    "Session",
    "get_default_async_session",
    "get_default_session",
    "set_default_session",
]

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop

T = TypeVar("T")

#: Builds one call for the dialect the session speaks (``lambda api: api.info(kernel_id)``).
Build = Callable[[Dialect], Call[T]]


class _SessionBase:
    """What both fronts share: configuration, dialect, signer, retry policy."""

    def __init__(self, config: APIConfig | None, clock: Callable[[], datetime] | None) -> None:
        self.config: APIConfig = config if config is not None else APIConfig.from_env()
        """The configuration the session was built with (endpoint, keys, version...)."""
        self._clock = clock
        self._dialect: Dialect | None = None
        self._auth: HMACAuth | None = None
        self.server: HelloResponse | None = None
        """The server's version answer, once negotiation (``version="auto"``) has run."""
        if self.config.version != AUTO:
            self._use(dialect_for(self.config.version))
        self._retry = RetryPolicy(
            max_retries=self.config.max_retries, max_wait=self.config.max_retry_wait
        )
        self._closed = False

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        version = self.api_version or "version not negotiated yet"
        return (
            f"<{type(self).__name__} {self.config.endpoint} ({version}) "
            f"as {self.config.access_key}{state}>"
        )

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def routes(self) -> Dialect:
        """The dialect in use (a fixed version, or one already negotiated)."""
        if self._dialect is None:
            raise InvalidArgumentError(
                "the API version is not negotiated yet; call negotiate() first"
            )
        return self._dialect

    @property
    def api_version(self) -> str | None:
        """The API version in use; ``None`` until ``"auto"`` has been negotiated."""
        return self._dialect.version if self._dialect is not None else None

    def _use(self, dialect: Dialect) -> Dialect:
        self._auth = HMACAuth(
            self.config.access_key,
            self.config.secret_key,
            version=dialect.version,
            hash_name=self.config.hash_name,
            policy=dialect.signing,
            clock=self._clock,
        )
        self._dialect = dialect
        return dialect

    def _adopt(self, hello: HelloResponse) -> Dialect:
        """Pick the version from the server's ``GET /`` answer."""
        try:
            version = NEGOTIATING.negotiate(hello.version)
        except ValueError as exc:
            raise UnsupportedAPIVersionError(
                f"version negotiation with {self.config.endpoint} failed: {exc}; "
                "this SDK speaks Backend.AI v4.20181215 to v9.20250722 "
                "(set version='v2.20170315' for a Sorna server or the embedded gateway)",
                server_version=hello.version,
            ) from None
        self.server = hello
        return self._use(NEGOTIATING(version))

    def _negotiation_failed(self, exc: Exception) -> Exception:
        where = self.config.endpoint
        if isinstance(exc, APIConnectionError):
            kind = APITimeoutError if isinstance(exc, APITimeoutError) else APIConnectionError
            return kind(
                f"version negotiation with {where} failed: {exc}", method="GET", url=exc.url
            )
        if isinstance(exc, APIStatusError):
            detail = f"GET / answered {exc.status} {exc.title}"
        else:
            detail = "GET / did not say which API version the server speaks"
        return UnsupportedAPIVersionError(
            f"version negotiation with {where} failed: {detail}; is it a Backend.AI manager? "
            "(set version='v2.20170315' for a Sorna server or the embedded gateway)"
        )

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.config.timeout, connect=self.config.connect_timeout)

    def _request_args(self, call: Call[Any]) -> dict[str, Any]:
        headers = {"User-Agent": self.config.user_agent, **call.headers}
        if call.files is None and call.signed:
            # The reference client labels bodyless requests too, and signs that label.
            headers["Content-Type"] = call.content_type or EMPTY_BODY_CONTENT_TYPE
        args: dict[str, Any] = {
            "method": call.method,
            "url": self.config.endpoint + call.path,
            "headers": headers,
            "auth": self._auth if call.signed else None,
        }
        if call.params:
            args["params"] = list(call.params)
        if call.files is not None:
            args["files"] = list(call.files)
        else:
            args["content"] = call.content or b""
        if call.extra_timeout and self.config.timeout is not None:
            args["timeout"] = httpx.Timeout(
                self.config.timeout + call.extra_timeout, connect=self.config.connect_timeout
            )
        return args

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidArgumentError(f"{type(self).__name__} is closed")

    def _after_status(self, exc: APIStatusError, call: Call[Any], attempt: int) -> float | None:
        return self._retry.after_status(
            exc.status, exc.retry_after, idempotent=call.idempotent, attempt=attempt
        )


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def _is_call(request: Build[T] | Call[T]) -> TypeIs[Call[T]]:
    return isinstance(request, Call)


def _as_response(response: httpx.Response) -> Response:
    return Response(
        status=response.status_code,
        headers=response.headers,
        content=response.content,
        method=response.request.method,
        url=str(response.request.url),
    )


def _classify(exc: httpx.TransportError) -> Failure:
    """Connect failures were never sent; judged by the transport's underlying cause."""
    return classify(exc)


def _connection_error(exc: httpx.TransportError, call: Call[Any], url: str) -> APIConnectionError:
    kind = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    reason = str(exc) or type(exc).__name__
    return kind(f"{call.method} {url} failed: {reason}", method=call.method, url=url)


class Session(_SessionBase):
    """A synchronous connection to a Sorna or Backend.AI server.

    Owns one ``httpx.Client`` (connections are reused) unless you pass your
    own ``http_client``; ``transport`` plugs in any httpx transport (for
    example ``httpx.MockTransport`` in unit tests). Use as a context manager or
    call :meth:`close`.
    """

    def __init__(
        self,
        config: APIConfig | None = None,
        *,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if http_client is not None and transport is not None:
            raise InvalidArgumentError("pass either http_client or transport, not both")
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise TypeError(f"http_client must be an httpx.Client, got {type(http_client)!r}")
        super().__init__(config, clock)
        self._owns_client = http_client is None
        self._http = http_client or httpx.Client(transport=transport, timeout=self._timeout())
        self._negotiating = threading.Lock()

    def dialect(self) -> Dialect:
        """The wire dialect in use, negotiating it first when the version is ``"auto"``."""
        self._check_open()
        if self._dialect is None:
            with self._negotiating:
                if self._dialect is None:
                    try:
                        hello = self.exchange(NEGOTIATING.probe())
                    except (APIConnectionError, APIStatusError, APIResponseValidationError) as e:
                        raise self._negotiation_failed(e) from e
                    return self._adopt(hello)
        return self._dialect

    def negotiate(self) -> str:
        """Settle the API version now (one ``GET /`` when ``"auto"``) and return it."""
        return self.dialect().version

    def send(self, request: Build[T] | Call[T]) -> T:
        """Send a call (or build one for this session's dialect) with retries; return its result."""
        call = request if _is_call(request) else request(self.dialect())
        return self.exchange(call)

    def exchange(self, call: Call[T]) -> T:
        """Send one prepared call, retrying where the policy allows; return its parsed result."""
        self._check_open()
        args = self._request_args(call)
        attempt = 0
        while True:
            try:
                response = self._http.request(**args)
            except httpx.TransportError as exc:
                delay = self._retry.after_failure(
                    _classify(exc), idempotent=call.idempotent, attempt=attempt
                )
                if delay is None:
                    raise _connection_error(exc, call, args["url"]) from exc
            else:
                try:
                    return call.handle(_as_response(response), attempt=attempt)
                except APIStatusError as exc:
                    delay = self._after_status(exc, call, attempt)
                    if delay is None:
                        raise
            time.sleep(delay)
            attempt += 1

    def hello(self) -> HelloResponse:
        """The server's API version (``GET /v2`` on Sorna, anonymous ``GET /`` on Backend.AI)."""
        return self.send(lambda api: api.hello())

    def authorize(self, echo: Any = None) -> AuthorizeResponse:
        """Check the credentials; the server echoes ``echo`` back."""
        return self.send(lambda api: api.authorize(echo))

    def close(self) -> None:
        """Close the connection pool (only if this session created it)."""
        if not self._closed:
            self._closed = True
            if self._owns_client:
                self._http.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncSession(_SessionBase):
    """The asynchronous twin of :class:`Session`, on ``httpx.AsyncClient``.

    With aiohttp installed (``pip install 'sorna-sdk[aiohttp]'``, part of ``[local]``) the
    client it creates runs on an aiohttp-backed transport, several times faster under
    concurrency than httpx's own pool; the API is httpx's either way. A ``transport`` or
    ``http_client`` you pass is used as given (``transport=httpx.AsyncHTTPTransport()``
    keeps httpx's pool).
    """

    def __init__(
        self,
        config: APIConfig | None = None,
        *,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if http_client is not None and transport is not None:
            raise InvalidArgumentError("pass either http_client or transport, not both")
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise TypeError(f"http_client must be an httpx.AsyncClient, got {type(http_client)!r}")
        super().__init__(config, clock)
        self._owns_client = http_client is None
        if http_client is None and transport is None:
            transport = default_async_transport()
        self._http = http_client or httpx.AsyncClient(transport=transport, timeout=self._timeout())
        import asyncio  # loaded by async use only: a sync program never pays for it

        self._negotiating = asyncio.Lock()

    async def dialect(self) -> Dialect:
        """The wire dialect in use, negotiating it first when the version is ``"auto"``."""
        self._check_open()
        if self._dialect is None:
            async with self._negotiating:
                if self._dialect is None:
                    try:
                        hello = await self.exchange(NEGOTIATING.probe())
                    except (APIConnectionError, APIStatusError, APIResponseValidationError) as e:
                        raise self._negotiation_failed(e) from e
                    return self._adopt(hello)
        return self._dialect

    async def negotiate(self) -> str:
        """Settle the API version now (one ``GET /`` when ``"auto"``) and return it."""
        return (await self.dialect()).version

    async def send(self, request: Build[T] | Call[T]) -> T:
        """Send a call (or build one for this session's dialect) with retries; return its result."""
        call = request if _is_call(request) else request(await self.dialect())
        return await self.exchange(call)

    async def exchange(self, call: Call[T]) -> T:
        """Send one prepared call, retrying where the policy allows; return its parsed result."""
        self._check_open()
        args = self._request_args(call)
        attempt = 0
        while True:
            try:
                response = await self._http.request(**args)
            except httpx.TransportError as exc:
                delay = self._retry.after_failure(
                    _classify(exc), idempotent=call.idempotent, attempt=attempt
                )
                if delay is None:
                    raise _connection_error(exc, call, args["url"]) from exc
            else:
                try:
                    return call.handle(_as_response(response), attempt=attempt)
                except APIStatusError as exc:
                    delay = self._after_status(exc, call, attempt)
                    if delay is None:
                        raise
            await _sleep(delay)
            attempt += 1

    async def hello(self) -> HelloResponse:
        """The server's API version (``GET /v2`` on Sorna, anonymous ``GET /`` on Backend.AI)."""
        return await self.send(lambda api: api.hello())

    async def authorize(self, echo: Any = None) -> AuthorizeResponse:
        """Check the credentials; the server echoes ``echo`` back."""
        return await self.send(lambda api: api.authorize(echo))

    async def close(self) -> None:
        """Close the connection pool (only if this session created it)."""
        if not self._closed:
            self._closed = True
            if self._owns_client:
                await self._http.aclose()

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


_default_session: Session | None = None
_default_async_sessions: weakref.WeakKeyDictionary[AbstractEventLoop, AsyncSession] = (
    weakref.WeakKeyDictionary()
)


def get_default_session() -> Session:
    """The session used when none is passed: built from the environment on first use."""
    global _default_session
    if _default_session is None or _default_session.closed:
        _default_session = Session()
    return _default_session


def get_default_async_session() -> AsyncSession:
    """The async session used when none is passed, one per running event loop."""
    import asyncio

    loop = asyncio.get_running_loop()
    session = _default_async_sessions.get(loop)
    if session is None or session.closed:
        session = AsyncSession()
        _default_async_sessions[loop] = session
    return session


def set_default_session(session: Session | AsyncSession | None) -> None:
    """Replace (or with ``None``, forget) the default session.

    An :class:`AsyncSession` becomes the default of the running event loop.
    """
    global _default_session
    if isinstance(session, AsyncSession):
        import asyncio

        _default_async_sessions[asyncio.get_running_loop()] = session
    elif session is None:
        _default_session = None
        _default_async_sessions.clear()
    else:
        _default_session = session
