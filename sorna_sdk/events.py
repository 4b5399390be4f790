"""Session lifecycle events from the server's Server-Sent Events stream (Backend.AI
``/events/session``): :class:`EventStream` (async) and :class:`SyncEventStream`.

Each (re)connection is a fresh signed request, so the ``Date`` is never stale (the
official client reuses the first one and fails after 15 minutes). Events are filtered on
the client side too, because servers up to 26.9 ignore ``sessionId``. The stream ends
after the session's ``session_terminated`` or ``session_cancelled`` event (nothing follows
them), or when the server sends ``server_close``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from types import TracebackType
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent, SSEError
from pydantic import ValidationError

from ._dialects import Dialect, EventsTarget, StreamPath
from ._json import is_object
from ._protocol import Response
from .exceptions import StreamError
from .models import SessionEvent
from .session import AsyncSession, Session, _SessionBase

__all__ = ["EventStream", "SyncEventStream"]

#: The event that ends the stream.
SERVER_CLOSE = "server_close"
#: Events after which a session has no more to say.
FINAL_EVENTS = frozenset({"session_terminated", "session_cancelled"})
#: Consecutive failed (re)connections before giving up.
MAX_RECONNECTS = 5
_DEFAULT_RETRY = 2.0


def _request_args(session: _SessionBase, route: StreamPath) -> dict[str, Any]:
    return {
        "method": "GET",
        "url": session.config.endpoint + route.path,
        "params": list(route.params),
        "headers": {
            "User-Agent": session.config.user_agent,
            "Accept": "text/event-stream",
            "Content-Type": "application/octet-stream",
        },
        "auth": session._auth,
        # Events may be minutes apart: only the connection has a deadline.
        "timeout": httpx.Timeout(None, connect=session.config.connect_timeout),
    }


def _refused(dialect: Dialect, response: httpx.Response, content: bytes) -> Exception:
    return dialect.error(
        Response(
            status=response.status_code,
            headers=response.headers,
            content=content,
            method="GET",
            url=str(response.request.url),
        )
    )


def _event(sse: ServerSentEvent, target: EventsTarget) -> SessionEvent | None:
    """The typed event, or ``None`` when it is about another session."""
    try:
        data: object = json.loads(sse.data) if sse.data else {}
    except ValueError:
        raise StreamError(f"unexpected event data: {sse.data[:80]!r}") from None
    if not is_object(data):
        raise StreamError(f"unexpected event data: {sse.data[:80]!r}")
    try:
        event = SessionEvent.model_validate({**data, "event": sse.event})
    except ValidationError as exc:
        raise StreamError(f"unexpected event data: {sse.data[:80]!r}") from exc
    ours = {target.kernel_id, target.name} - {None}
    if event.session_id in ours or event.session_name in ours:
        return event
    return None


def _retry_delay(sse_retry: int | None, failures: int) -> float:
    base = sse_retry / 1000.0 if sse_retry else _DEFAULT_RETRY
    return float(min(base * 2.0 ** max(failures - 1, 0), 30.0))


class _EventStreamBase:
    def __init__(self, target: EventsTarget, *, reconnect: bool) -> None:
        self.target: EventsTarget = target
        """The session whose events are listened to (its id and name)."""
        self.reconnect: bool = reconnect
        """Whether a dropped stream is opened again (with ``Last-Event-ID``)."""
        self._closed = False
        self._retry: int | None = None

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<{type(self).__name__} kernel={self.target.kernel_id!r}{state}>"

    def _give_up(self, exc: Exception, failures: int) -> bool:
        return not self.reconnect or failures > MAX_RECONNECTS or self._closed


class EventStream(_EventStreamBase):
    """Lifecycle events of one session (async).

    >>> async with kern.events() as events:  # doctest: +SKIP
    ...     async for event in events:
    ...         print(event.event, event.reason)
    """

    def __init__(self, session: AsyncSession, target: EventsTarget, *, reconnect: bool = True):
        super().__init__(target, reconnect=reconnect)
        self._session = session
        self._iterator: AsyncGenerator[SessionEvent, None] | None = None

    def __aiter__(self) -> AsyncIterator[SessionEvent]:
        if self._iterator is None:
            self._iterator = self._events()
        return self._iterator

    async def close(self) -> None:
        """Stop listening."""
        self._closed = True
        if self._iterator is not None:
            await self._iterator.aclose()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _events(self) -> AsyncGenerator[SessionEvent, None]:
        dialect = await self._session.dialect()
        route = dialect.events_path(self.target)
        failures = 0
        while not self._closed:
            try:
                async with self._session._http.stream(
                    **_request_args(self._session, route)
                ) as response:
                    if response.status_code != 200:
                        raise _refused(dialect, response, await response.aread())
                    async for sse in EventSource(response).aiter_sse():
                        failures = 0
                        self._retry = sse.retry or self._retry
                        if sse.event == SERVER_CLOSE:
                            return
                        event = _event(sse, self.target)
                        if event is not None:
                            yield event
                            if event.event in FINAL_EVENTS:
                                return
            except SSEError as exc:
                raise StreamError(f"not an event stream: {exc}") from exc
            except httpx.TransportError as exc:
                failures += 1
                if self._give_up(exc, failures):
                    raise StreamError(f"the event stream failed: {exc}") from exc
                await asyncio.sleep(_retry_delay(self._retry, failures))
            else:
                # The server ended the stream without server_close: reconnect.
                failures += 1
                if self._give_up(StreamError("ended"), failures):
                    return
                await asyncio.sleep(_retry_delay(self._retry, failures))


class SyncEventStream(_EventStreamBase):
    """The synchronous twin of :class:`EventStream`."""

    def __init__(self, session: Session, target: EventsTarget, *, reconnect: bool = True):
        super().__init__(target, reconnect=reconnect)
        self._session = session
        self._iterator: Generator[SessionEvent, None, None] | None = None

    def __iter__(self) -> Iterator[SessionEvent]:
        if self._iterator is None:
            self._iterator = self._events()
        return self._iterator

    def close(self) -> None:
        """Stop listening."""
        self._closed = True
        if self._iterator is not None:
            self._iterator.close()

    def __enter__(self) -> SyncEventStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _events(self) -> Generator[SessionEvent, None, None]:
        dialect = self._session.dialect()
        route = dialect.events_path(self.target)
        failures = 0
        while not self._closed:
            try:
                with self._session._http.stream(**_request_args(self._session, route)) as response:
                    if response.status_code != 200:
                        raise _refused(dialect, response, response.read())
                    for sse in EventSource(response).iter_sse():
                        failures = 0
                        self._retry = sse.retry or self._retry
                        if sse.event == SERVER_CLOSE:
                            return
                        event = _event(sse, self.target)
                        if event is not None:
                            yield event
                            if event.event in FINAL_EVENTS:
                                return
            except SSEError as exc:
                raise StreamError(f"not an event stream: {exc}") from exc
            except httpx.TransportError as exc:
                failures += 1
                if self._give_up(exc, failures):
                    raise StreamError(f"the event stream failed: {exc}") from exc
                time.sleep(_retry_delay(self._retry, failures))
            else:
                failures += 1
                if self._give_up(StreamError("ended"), failures):
                    return
                time.sleep(_retry_delay(self._retry, failures))
