"""Signed WebSocket handshakes (PTY and execute streams), on websockets' asyncio and sync clients.

The handshake is signed like any bodyless GET of the session's dialect; a refused one
raises the error the dialect maps from the answer (``KernelNotFoundError``, ...).
"""

from __future__ import annotations

import asyncio

import httpx
from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.headers import build_host
from websockets.sync.client import ClientConnection as SyncConnection
from websockets.sync.client import connect as sync_connect

from ._constants import EMPTY_BODY_CONTENT_TYPE
from ._dialects import Dialect, StreamPath
from ._protocol import Response
from .exceptions import APIConnectionError, SornaError, StreamError
from .session import AsyncSession, Session, _SessionBase

__all__ = ["MAX_FRAME", "close_code", "open_async", "open_sync"]

#: Largest message accepted from the server.
MAX_FRAME = 16 * 1024 * 1024


def _handshake(session: _SessionBase, route: StreamPath) -> tuple[str, dict[str, str]]:
    """The ``ws://`` URL and signed headers for a stream route."""
    url = httpx.URL(session.config.endpoint + route.path, params=list(route.params) or None)
    secure = url.scheme == "https"
    port = url.port or (443 if secure else 80)
    host = build_host(url.host, port, secure)
    path = url.raw_path.decode("ascii")
    assert session._auth is not None, "the dialect is resolved before a stream opens"
    headers = session._auth.signed_headers("GET", path, host, EMPTY_BODY_CONTENT_TYPE, b"")
    headers["Content-Type"] = EMPTY_BODY_CONTENT_TYPE
    ws_url = str(url.copy_with(scheme="wss" if secure else "ws"))
    return ws_url, headers


def _handshake_error(exc: Exception, url: str, dialect: Dialect, what: str) -> SornaError:
    if isinstance(exc, InvalidStatus):
        response = exc.response
        return dialect.error(
            Response(
                status=response.status_code,
                headers=dict(response.headers),
                content=bytes(response.body or b""),
                method="GET",
                url=url,
            )
        )
    if isinstance(exc, InvalidHandshake):
        return StreamError(f"{what} handshake with {url} failed: {exc}")
    return APIConnectionError(f"GET {url} failed: {exc}", method="GET", url=url)


async def open_async(
    session: AsyncSession, route: StreamPath, *, open_timeout: float | None, what: str
) -> AsyncConnection:
    """Open a signed WebSocket (the session's dialect is negotiated first)."""
    dialect = await session.dialect()
    url, headers = _handshake(session, route)
    try:
        return await async_connect(
            url,
            additional_headers=headers,
            user_agent_header=session.config.user_agent,
            open_timeout=open_timeout,
            max_size=MAX_FRAME,
            compression=None,
        )
    except (InvalidHandshake, OSError, asyncio.TimeoutError) as exc:
        raise _handshake_error(exc, url, dialect, what) from exc


def open_sync(
    session: Session, route: StreamPath, *, open_timeout: float | None, what: str
) -> SyncConnection:
    """Open a signed WebSocket with the threading client."""
    dialect = session.dialect()
    url, headers = _handshake(session, route)
    try:
        # Entered at once: websockets 17.1+ warns about connections not used as context
        # managers, and the stream's own close() ends it.
        return sync_connect(
            url,
            additional_headers=headers,
            user_agent_header=session.config.user_agent,
            open_timeout=open_timeout,
            max_size=MAX_FRAME,
            compression=None,
        ).__enter__()
    except (InvalidHandshake, OSError, TimeoutError) as exc:
        raise _handshake_error(exc, url, dialect, what) from exc


def close_code(exc: ConnectionClosed) -> tuple[int, str]:
    """The close code and reason of a closed connection (1006 when none was received)."""
    frame = exc.rcvd or exc.sent
    if frame is None:
        return 1006, "connection lost"
    return frame.code, frame.reason
