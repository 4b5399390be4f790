"""Sessions: one configuration and one long-lived httpx client, sync and async.

The two fronts only move bytes; building requests, signing, parsing, error
mapping and retry decisions live in pure modules shared by both.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ._constants import EMPTY_BODY_CONTENT_TYPE
from ._protocol import Call, Response, V2Routes, routes_for
from ._retry import Failure, RetryPolicy
from .auth import HMACAuth
from .config import APIConfig
from .exceptions import APIConnectionError, APIStatusError, APITimeoutError, InvalidArgumentError
from .models import AuthorizeResponse, HelloResponse

__all__ = [
    "AsyncSession",
    "Session",
    "get_default_async_session",
    "get_default_session",
    "set_default_session",
]

T = TypeVar("T")


class _SessionBase:
    """What both fronts share: configuration, routes, signer, retry policy."""

    def __init__(self, config: APIConfig | None, clock: Callable[[], datetime] | None) -> None:
        self.config = config if config is not None else APIConfig.from_env()
        self.routes: V2Routes = routes_for(self.config.version)
        self._auth = HMACAuth(
            self.config.access_key,
            self.config.secret_key,
            version=self.config.version,
            hash_name=self.config.hash_name,
            clock=clock,
        )
        self._retry = RetryPolicy(
            max_retries=self.config.max_retries, max_wait=self.config.max_retry_wait
        )
        self._closed = False

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<{type(self).__name__} {self.config.endpoint} as {self.config.access_key}{state}>"

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.config.timeout, connect=self.config.connect_timeout)

    def _request_args(self, call: Call[Any]) -> dict[str, Any]:
        headers = {"User-Agent": self.config.user_agent, **call.headers}
        if call.files is None:
            # The reference client labels bodyless requests too, and signs that label.
            headers["Content-Type"] = call.content_type or EMPTY_BODY_CONTENT_TYPE
        args: dict[str, Any] = {
            "method": call.method,
            "url": self.config.endpoint + call.path,
            "headers": headers,
            "auth": self._auth,
        }
        if call.files is not None:
            args["files"] = list(call.files)
        else:
            args["content"] = call.content or b""
        return args

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidArgumentError(f"{type(self).__name__} is closed")


def _as_response(response: httpx.Response) -> Response:
    return Response(
        status=response.status_code,
        headers=response.headers,
        content=response.content,
        method=response.request.method,
        url=str(response.request.url),
    )


def _classify(exc: httpx.TransportError) -> Failure:
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return Failure.NOT_SENT
    return Failure.MAYBE_SENT


def _connection_error(exc: httpx.TransportError, call: Call[Any], url: str) -> APIConnectionError:
    kind = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    reason = str(exc) or type(exc).__name__
    return kind(f"{call.method} {url} failed: {reason}", method=call.method, url=url)


class Session(_SessionBase):
    """A synchronous connection to a Sorna server.

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

    def send(self, call: Call[T]) -> T:
        """Send one call, retrying where the policy allows; return its parsed result."""
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
                    delay = self._retry.after_status(
                        exc.status, exc.headers, idempotent=call.idempotent, attempt=attempt
                    )
                    if delay is None:
                        raise
            time.sleep(delay)
            attempt += 1

    def hello(self) -> HelloResponse:
        """``GET /v2``: the server's API version (no signature needed)."""
        return self.send(self.routes.hello())

    def authorize(self, echo: Any = None) -> AuthorizeResponse:
        """Check the credentials; the server echoes ``echo`` back."""
        return self.send(self.routes.authorize(echo))

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
    """The asynchronous twin of :class:`Session`, on ``httpx.AsyncClient``."""

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
        self._http = http_client or httpx.AsyncClient(transport=transport, timeout=self._timeout())

    async def send(self, call: Call[T]) -> T:
        """Send one call, retrying where the policy allows; return its parsed result."""
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
                    delay = self._retry.after_status(
                        exc.status, exc.headers, idempotent=call.idempotent, attempt=attempt
                    )
                    if delay is None:
                        raise
            await asyncio.sleep(delay)
            attempt += 1

    async def hello(self) -> HelloResponse:
        """``GET /v2``: the server's API version (no signature needed)."""
        return await self.send(self.routes.hello())

    async def authorize(self, echo: Any = None) -> AuthorizeResponse:
        """Check the credentials; the server echoes ``echo`` back."""
        return await self.send(self.routes.authorize(echo))

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
_default_async_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncSession] = (
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
        _default_async_sessions[asyncio.get_running_loop()] = session
    elif session is None:
        _default_session = None
        _default_async_sessions.clear()
    else:
        _default_session = session
