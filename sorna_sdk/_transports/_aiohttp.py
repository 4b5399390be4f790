"""An httpx transport on aiohttp's client: httpx's API, aiohttp's connection pool.

httpx still builds, signs and reads every request (auth flow, cookies, redirects, content
decoding, timeouts per request); this transport only moves the bytes. What it adds over
passing the request through:

* Failures map to httpx exceptions by what went wrong, so the session's retry rule can
  tell "never sent" (no connection could be made: ``ConnectError``/``ConnectTimeout``) from
  "may have been sent" (dropped, reset or timed out afterwards: ``RemoteProtocolError``,
  ``ReadError``, ``ReadTimeout``). Each is raised ``from`` aiohttp's exception.
* aiohttp's own retry of idempotent requests on a stale keep-alive connection is off: the
  session's policy is the only one that repeats a request.
* The wire carries httpx's headers only (no aiohttp defaults such as a guessed
  ``Content-Type``), the URL exactly as httpx encoded it (it is what was signed), and no
  cookie jar or decompression of aiohttp's (httpx does both).
* The aiohttp ``ClientSession`` is made on first use inside the running event loop, made
  again if the transport is used from another loop, and released quietly if the owner
  never closes it (as httpx's pool is), instead of logging "Unclosed client session".
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import weakref
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
from multidict import CIMultiDict
from yarl import URL

from .._retry import Failure

__all__ = ["AiohttpTransport", "cause_verdict"]

#: httpx's default pool size; aiohttp has no separate keep-alive count.
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)

_SKIP_AUTO_HEADERS = frozenset({"Accept", "Accept-Encoding", "Content-Type", "User-Agent"})
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


def cause_verdict(exc: BaseException) -> Failure | None:
    """Whether an aiohttp failure happened before the request could be written.

    ``None`` for exceptions that are not aiohttp's.
    """
    if isinstance(exc, _NOT_SENT):
        return Failure.NOT_SENT
    if isinstance(exc, aiohttp.ClientError):
        return Failure.MAYBE_SENT
    return None


def _mapped(exc: Exception, request: httpx.Request) -> httpx.TransportError | None:
    """The httpx exception for an aiohttp failure (``None``: not a transport failure)."""
    message = str(exc) or type(exc).__name__
    kind: type[httpx.TransportError]
    # Order matters: the connect-phase classes subclass the broader ones below them.
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError):
        kind = httpx.ConnectError
    elif isinstance(exc, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)):
        kind = httpx.ReadTimeout
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        kind = httpx.RemoteProtocolError
        message = f"server disconnected without sending a complete response ({message})"
    elif isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ClientResponseError)):
        kind = httpx.RemoteProtocolError
    elif isinstance(exc, aiohttp.NonHttpUrlClientError):
        kind = httpx.UnsupportedProtocol
    elif isinstance(exc, (aiohttp.ClientConnectionError, OSError)):
        kind = httpx.ReadError
    elif isinstance(exc, aiohttp.ClientError):
        kind = httpx.TransportError
    else:
        return None
    return kind(message, request=request)


class _ResponseStream(httpx.AsyncByteStream):
    """The body of an aiohttp response, as httpx reads it (chunks as they arrive)."""

    __slots__ = ("_request", "_response")

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except Exception as exc:
            mapped = _mapped(exc, self._request)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        # Back to the pool when read to the end, otherwise the connection is closed.
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` on an ``aiohttp.ClientSession`` (HTTP/1.1).

    ``limits.max_connections`` caps the pool and ``limits.keepalive_expiry`` ends idle
    connections; ``verify`` is httpx's (``True``: certifi, or ``SSL_CERT_FILE`` when
    ``trust_env``). Proxies stay httpx's business: a client built with this transport still
    routes proxied URLs through httpx's own proxy transports.
    """

    def __init__(
        self,
        *,
        limits: httpx.Limits = DEFAULT_LIMITS,
        verify: ssl.SSLContext | bool = True,
        trust_env: bool = True,
    ) -> None:
        self._limits = limits
        self._verify = verify
        self._trust_env = trust_env
        self._ssl: ssl.SSLContext | None = verify if isinstance(verify, ssl.SSLContext) else None
        self._client: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        client = self._client
        if client is not None and self._loop is loop and not client.closed:
            return client
        if client is not None:
            _release(client)  # made in another event loop: it cannot serve this one
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            keepalive_timeout=self._limits.keepalive_expiry or 0,
        )
        client = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        # aiohttp repeats a GET/PUT/DELETE once on a reused connection that failed; the
        # session's retry policy decides instead (aiohttp's own test client turns it off too).
        if hasattr(client, "_retry_connection"):
            client._retry_connection = False
        self._client, self._loop = client, loop
        # Never closed (a default session, or one dropped without close()): let the
        # connections go as httpx's pool would, without aiohttp's "Unclosed client
        # session" warning and error log. A finalizer rather than __del__: it holds the
        # aiohttp session, so that session cannot be collected first in a cycle.
        weakref.finalize(self, _release, client)
        return client

    def _ssl_context(self) -> ssl.SSLContext | bool:
        if self._verify is False:
            return False
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(verify=True, trust_env=self._trust_env)
        return self._ssl

    def _timeout(self, timeouts: dict[str, float | None]) -> aiohttp.ClientTimeout:
        key = (timeouts.get("connect"), timeouts.get("read"), timeouts.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            connect, read, pool = key
            # aiohttp: ``connect`` covers waiting for a pooled connection and connecting,
            # ``sock_connect`` a new connection alone, ``sock_read`` the wait for each read.
            waited = None if pool is None or connect is None else pool + connect
            timeout = aiohttp.ClientTimeout(
                total=None, connect=waited, sock_connect=connect, sock_read=read
            )
            self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        client = self._session()
        encoding = request.headers.encoding  # names keep the case httpx was given
        headers = CIMultiDict(
            (name.decode(encoding), value.decode(encoding)) for name, value in request.headers.raw
        )
        data: Any
        try:
            data = request.content or None
        except httpx.RequestNotRead:
            # A streamed body (multipart uploads): aiohttp frames it itself, chunked
            # unless httpx knew its length.
            data = request.stream
            headers.popall("Transfer-Encoding", None)
        url = request.url
        extras: dict[str, Any] = {}
        if url.scheme == "https":
            extras["ssl"] = self._ssl_context()
            sni = request.extensions.get("sni_hostname")
            if sni:
                extras["server_hostname"] = sni
        try:
            response = await client.request(
                request.method,
                URL(str(url), encoded=True),
                headers=headers,
                data=data,
                allow_redirects=False,
                timeout=self._timeout(request.extensions.get("timeout", {})),
                **extras,
            )
        except Exception as exc:
            mapped = _mapped(exc, request)
            if mapped is None:
                raise
            raise mapped from exc
        version = response.version
        extensions: dict[str, Any] = {
            "http_version": f"HTTP/{version.major}.{version.minor}".encode()
            if version is not None
            else b"HTTP/1.1",
        }
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("ascii", "replace")
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(response, request),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is None or client.closed:
            return
        if self._loop is asyncio.get_running_loop():
            await client.close()
        else:
            _release(client)


def _release(client: aiohttp.ClientSession) -> None:
    """Close a session's connections without awaiting (its loop may be gone)."""
    connector = client.connector
    if client.closed or connector is None:
        return
    close = getattr(connector, "_close", None)  # the synchronous half of close()
    if close is not None:
        with contextlib.suppress(Exception):  # best effort, perhaps while being collected
            close()
