"""The HTTP server's connection limits.

Connections (:class:`ConnectionGuard`): aiohttp closes idle keep-alive connections
(``keepalive_timeout``) but has no deadline for reading a request's head or body, nor a cap
on connections. The guard wraps each protocol that aiohttp's ``web.Server`` factory makes
(composition: every ``asyncio.Protocol`` callback is passed on unchanged) and learns from a
middleware when a request's head has been parsed and dispatched. No private aiohttp
attribute is touched:

* head deadline: a new connection, or the first byte of a further request on a kept-alive
  one, starts a ``header_timeout`` clock; the request reaching the application stops it.
  On expiry the connection gets a 408 (if it had sent anything) and is closed;
* body deadline: a request whose body is still incomplete when it reaches the application
  must be complete ``body_timeout`` seconds later, else the connection is closed;
* cap: connections beyond ``max_connections`` get a 503 and are closed at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, cast

from aiohttp import StreamReader, web

from ..._problems import SORNA_BASE
from .ratelimit import Throttle

__all__ = ["SERVER_NAME", "ConnectionGuard", "ConnectionLimits"]

log: logging.Logger = logging.getLogger(__name__)

#: The ``Server`` header of every answer (the 2017 server's).
SERVER_NAME: Final = "BackendAI-API/v2.20170315"
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Seconds a closed connection may take to flush its last bytes before it is aborted.
_ABORT_GRACE: Final = 2.0


@dataclass(frozen=True)
class ConnectionLimits:
    """Deadlines (seconds) and the connection cap of the HTTP server; see the module doc."""

    #: An idle kept-alive connection is closed after this long (passed to aiohttp).
    keepalive_timeout: float = 75.0
    #: A request's head (request line and headers) must arrive within this long.
    header_timeout: float = 20.0
    #: A request's body must be complete this long after its head was dispatched.
    body_timeout: float = 60.0
    #: Connections beyond this many are answered 503 and closed.
    max_connections: int = 1000

    def __post_init__(self) -> None:
        for name in ("keepalive_timeout", "header_timeout", "body_timeout"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {self.max_connections}")


def _raw_problem(status: int, reason: str, problem: str, title: str) -> bytes:
    """A complete ``Connection: close`` problem response, for when aiohttp has none to send."""
    body = json.dumps({"type": SORNA_BASE + problem, "title": title}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/problem+json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Server: {SERVER_NAME}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


_HEAD_TIMEOUT_RESPONSE: Final = _raw_problem(
    408,
    "Request Timeout",
    "generic-bad-request",
    "Bad request. (Request head not received in time.)",
)
_OVERLOADED_RESPONSE: Final = _raw_problem(
    503, "Service Unavailable", "service-unavailable", "Too many connections; try again later."
)


class ConnectionGuard:
    """Connection cap and head/body read deadlines around aiohttp's protocol factory.

    >>> guard = ConnectionGuard(ConnectionLimits())  # doctest: +SKIP
    >>> app = create_app(kernels, keys, guard=guard)
    >>> runner = web.AppRunner(app, keepalive_timeout=guard.limits.keepalive_timeout)
    >>> await runner.setup()
    >>> await loop.create_server(guard.protocol_factory(runner.server), host, port)
    """

    def __init__(self, limits: ConnectionLimits | None = None) -> None:
        self.limits: ConnectionLimits = limits or ConnectionLimits()
        self._live: dict[asyncio.BaseTransport, _Connection] = {}
        #: Connections refused for being over the cap, and dropped for a missed deadline.
        self.refused: int = 0
        self.timed_out = 0
        self._refusal_log = Throttle(10.0)

    @property
    def connections(self) -> int:
        """Open connections (admitted, not yet lost)."""
        return len(self._live)

    def protocol_factory(self, make: Callable[[], asyncio.BaseProtocol]) -> Callable[[], Any]:
        """A factory for ``loop.create_server``: ``make`` (a ``web.Server``) wrapped."""
        return lambda: _Connection(self, make)

    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        transport = request.transport
        conn = self._live.get(transport) if transport is not None else None
        if conn is None:
            return await handler(request)
        conn.request_started(request.content)
        try:
            return await handler(request)
        finally:
            conn.request_finished()

    def _admit(self, conn: _Connection, transport: asyncio.BaseTransport) -> bool:
        if len(self._live) >= self.limits.max_connections:
            self.refused += 1
            held = self._refusal_log.allow()
            if held is not None:
                more = f" ({held} more since the last report)" if held else ""
                log.warning(
                    "refusing connections: %d are open (max_connections)%s",
                    len(self._live),
                    more,
                )
            return False
        self._live[transport] = conn
        return True

    def _forget(self, transport: asyncio.BaseTransport | None) -> None:
        if transport is not None:
            self._live.pop(transport, None)


class _Connection(asyncio.Protocol):
    """One connection: aiohttp's protocol inside, the deadlines and the cap around it."""

    def __init__(self, guard: ConnectionGuard, make: Callable[[], asyncio.BaseProtocol]) -> None:
        self._guard = guard
        self._make = make
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._seen: asyncio.Transport | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._in_request = False
        self._content: StreamReader | None = None  # the body of the latest dispatched request
        self._head_started = False  # bytes of a head not yet dispatched have arrived
        self._head_pending = False  # such bytes arrived while a request was being handled
        self._closing = False

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._seen = _Head204Fix(self._transport)  # what aiohttp (and request.transport) sees
        if not self._guard._admit(self, self._seen):
            self._drop(_OVERLOADED_RESPONSE, "over max_connections")
            return
        inner = self._make()
        assert isinstance(inner, asyncio.Protocol)
        self._inner = inner
        inner.connection_made(self._seen)
        self._arm_head()  # the first request's head is due too, not only later ones

    def data_received(self, data: bytes) -> None:
        inner = self._inner
        if inner is None:
            return
        content = self._content
        # Bytes after the latest body (or before any request) belong to the next head. A chunk
        # that ends one body and starts the next head is seen at the following chunk.
        next_head = content is None or content.is_eof()
        inner.data_received(data)
        if not next_head or not data or self._closing:
            return
        if self._in_request:
            self._head_pending = True
        else:
            self._head_started = True
            if self._head_timer is None:
                self._arm_head()

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        self._guard._forget(self._seen)
        inner, self._inner = self._inner, None
        self._content = None
        if inner is not None:
            inner.connection_lost(exc)

    # -- request lifecycle (from the middleware) ----------------------------------------

    def request_started(self, content: StreamReader) -> None:
        self._cancel_timers()
        self._in_request = True
        self._head_started = self._head_pending = False
        self._content = content
        if not content.is_eof():
            loop = asyncio.get_running_loop()
            timeout = self._guard.limits.body_timeout
            self._body_timer = loop.call_later(timeout, self._body_expired, content)

    def request_finished(self) -> None:
        self._in_request = False
        if self._head_pending and not self._closing:
            self._head_pending = False
            self._head_started = True
            self._arm_head()

    # -- deadlines ----------------------------------------------------------------------

    def _arm_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        loop = asyncio.get_running_loop()
        self._head_timer = loop.call_later(self._guard.limits.header_timeout, self._head_expired)

    def _head_expired(self) -> None:
        self._head_timer = None
        if self._in_request or self._closing:
            return
        self._guard.timed_out += 1
        started = self._head_started
        self._drop(_HEAD_TIMEOUT_RESPONSE if started else None, "request head not received in time")

    def _body_expired(self, content: StreamReader) -> None:
        self._body_timer = None
        if content is self._content and not content.is_eof():
            self._guard.timed_out += 1
            self._drop(None, "request body not received in time")

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def _drop(self, response: bytes | None, why: str) -> None:
        transport = self._transport
        if self._closing or transport is None or transport.is_closing():
            return
        self._closing = True
        self._cancel_timers()
        log.debug("closing a connection from %s: %s", transport.get_extra_info("peername"), why)
        # Only when nothing of an earlier response still waits to be sent: else the bytes
        # would land in the middle of it.
        if response is not None and transport.get_write_buffer_size() == 0:
            transport.write(response)
        transport.close()
        loop = asyncio.get_running_loop()
        self._abort_timer = loop.call_later(_ABORT_GRACE, transport.abort)  # a client not reading


_HEAD_END: Final = b"\r\n\r\n"


class _Head204Fix(asyncio.Transport):
    """The connection's transport, with ``Content-Length: 0`` put back into 204 heads.

    sorna-client 0.9.8 reads the Content-Length header of every answer, and the 2017 server
    sent ``Content-Length: 0`` on its 204s; aiohttp (rightly, per RFC 9110 §8.6) removes it
    while preparing a 204. This wrapper restores it in the bytes written, using only the
    public transport interface: aiohttp writes a response head in one ``write()`` call.
    Everything else passes through unchanged.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__(transport.get_extra_info("extra", None))
        self._inner = transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._inner.write(_with_length(bytes(data)))

    def writelines(self, list_of_data: Any) -> None:
        self._inner.writelines([_with_length(bytes(data)) for data in list_of_data])

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def close(self) -> None:
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def write_eof(self) -> None:
        self._inner.write_eof()


def _with_length(data: bytes) -> bytes:
    if not data.startswith((b"HTTP/1.1 204 ", b"HTTP/1.0 204 ")):
        return data
    end = data.find(_HEAD_END)
    if end < 0 or b"\r\ncontent-length:" in data[:end].lower():
        return data
    return data[:end] + b"\r\nContent-Length: 0" + data[end:]
