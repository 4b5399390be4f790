"""The kernel's terminal over WebSocket (spec §6): :class:`StreamPty` (async) and
:class:`SyncStreamPty`, on websockets' asyncio and threading clients.

Frames are the typed models of :mod:`sorna_sdk.models.pty`; the handshake is signed
like any GET. A refused handshake raises the mapped :class:`~sorna_sdk.APIStatusError`
(e.g. ``KernelNotFoundError``); a stream the server closes raises :class:`PtyError`.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import httpx
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.headers import build_host
from websockets.sync.client import ClientConnection as SyncConnection
from websockets.sync.client import connect as sync_connect

from ._constants import EMPTY_BODY_CONTENT_TYPE
from .exceptions import (
    APIConnectionError,
    InvalidArgumentError,
    PtyError,
    SornaError,
    error_from_response,
)
from .models.pty import (
    PingFrame,
    ResizeFrame,
    RestartFrame,
    StdinFrame,
    decode_client_frame,
    decode_server_frame,
)
from .session import AsyncSession, Session, _SessionBase

__all__ = ["NORMAL_CLOSE_CODES", "StreamPty", "SyncStreamPty"]

#: Close codes that end iteration quietly instead of raising :class:`PtyError`.
NORMAL_CLOSE_CODES = frozenset({1000})
_MAX_FRAME = 16 * 1024 * 1024


def _handshake(session: _SessionBase, kernel_id: str) -> tuple[str, dict[str, str]]:
    """The ``ws://`` URL and signed headers for a kernel's PTY stream."""
    config = session.config
    url = httpx.URL(config.endpoint + session.routes.pty_path(kernel_id))
    secure = url.scheme == "https"
    port = url.port or (443 if secure else 80)
    host = build_host(url.host, port, secure)
    path = url.raw_path.decode("ascii")
    headers = session._auth.signed_headers("GET", path, host, EMPTY_BODY_CONTENT_TYPE, b"")
    headers["Content-Type"] = EMPTY_BODY_CONTENT_TYPE
    ws_url = str(url.copy_with(scheme="wss" if secure else "ws"))
    return ws_url, headers


def _handshake_error(exc: Exception, url: str) -> SornaError:
    if isinstance(exc, InvalidStatus):
        response = exc.response
        return error_from_response(
            response.status_code,
            bytes(response.body or b""),
            dict(response.headers),
            method="GET",
            url=url,
        )
    if isinstance(exc, InvalidHandshake):
        return PtyError(f"WebSocket handshake with {url} failed: {exc}")
    return APIConnectionError(f"GET {url} failed: {exc}", method="GET", url=url)


def _closed_error(exc: ConnectionClosed) -> PtyError:
    frame = exc.rcvd or exc.sent
    code = frame.code if frame is not None else 1006
    reason = frame.reason if frame is not None else "connection lost"
    detail = f": {reason}" if reason else ""
    return PtyError(f"the PTY stream was closed (code {code}{detail})", code=code, reason=reason)


def _payload(message: str | bytes) -> bytes:
    try:
        return decode_server_frame(message).payload
    except (ValidationError, ValueError) as exc:
        raise PtyError(f"unexpected frame from the server: {str(message)[:80]!r}") from exc


def _checked_frame(frame: str) -> str:
    try:
        return decode_client_frame(frame).encode()
    except ValidationError as exc:
        raise InvalidArgumentError(f"not a PTY client frame: {frame[:80]!r}") from exc


def _stdin(data: bytes | str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return StdinFrame.from_bytes(raw).encode()


class _PtyBase:
    def __init__(self, kernel_id: str) -> None:
        self.kernel_id = kernel_id
        #: Close code once the stream is closed, else ``None``.
        self.close_code: int | None = None

    def __repr__(self) -> str:
        state = "open" if self.close_code is None else f"closed {self.close_code}"
        return f"<{type(self).__name__} kernel={self.kernel_id!r} {state}>"

    def _note_close(self, exc: ConnectionClosed) -> PtyError:
        error = _closed_error(exc)
        self.close_code = error.code
        return error


class StreamPty(_PtyBase):
    """An open terminal of a kernel (async). Iterate for output bytes.

    >>> async with await kern.stream_pty() as pty:  # doctest: +SKIP
    ...     await pty.send("echo hi\\n")
    ...     async for chunk in pty: ...
    """

    def __init__(self, connection: AsyncConnection, kernel_id: str) -> None:
        super().__init__(kernel_id)
        self._ws = connection

    @classmethod
    async def connect(
        cls, session: AsyncSession, kernel_id: str, *, open_timeout: float | None = 10.0
    ) -> StreamPty:
        """Open the stream of ``kernel_id`` (used by :meth:`AsyncKernel.stream_pty`)."""
        url, headers = _handshake(session, kernel_id)
        try:
            connection = await async_connect(
                url,
                additional_headers=headers,
                user_agent_header=session.config.user_agent,
                open_timeout=open_timeout,
                max_size=_MAX_FRAME,
                compression=None,
            )
        except (InvalidHandshake, OSError, asyncio.TimeoutError) as exc:
            raise _handshake_error(exc, url) from exc
        return cls(connection, kernel_id)

    async def send(self, data: bytes | str) -> None:
        """Send keystrokes or input bytes (``str`` is encoded as UTF-8)."""
        await self._send(_stdin(data))

    write = send

    async def send_str(self, frame: str) -> None:
        """Send one raw JSON frame, as sorna-client 0.9.8 did; it is validated first."""
        await self._send(_checked_frame(frame))

    async def resize(self, rows: int, cols: int) -> None:
        """Set the terminal size."""
        await self._send(ResizeFrame(rows=rows, cols=cols).encode())

    async def ping(self) -> None:
        """Keep the kernel from idling out."""
        await self._send(PingFrame().encode())

    async def restart(self) -> None:
        """Restart the kernel's terminal."""
        await self._send(RestartFrame().encode())

    async def read(self, timeout: float | None = None) -> bytes:
        """The next chunk of output; raises :class:`PtyError` once the stream is closed.

        With ``timeout``, raises ``TimeoutError`` when nothing arrives in time.
        """
        try:
            message = await asyncio.wait_for(self._ws.recv(), timeout)
        except ConnectionClosed as exc:
            raise self._note_close(exc) from exc
        except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
            raise TimeoutError(f"no terminal output within {timeout} s") from None
        return _payload(message)

    async def close(self) -> None:
        """Close the stream; the terminal keeps running for the next connection."""
        await self._ws.close()
        self.close_code = self.close_code or 1000

    def __aiter__(self) -> StreamPty:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.read()
        except PtyError:
            if self.close_code in NORMAL_CLOSE_CODES:
                raise StopAsyncIteration from None
            raise

    async def __aenter__(self) -> StreamPty:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _send(self, text: str) -> None:
        try:
            await self._ws.send(text)
        except ConnectionClosed as exc:
            raise self._note_close(exc) from exc


class SyncStreamPty(_PtyBase):
    """The synchronous twin of :class:`StreamPty`: iterate, or ``read(timeout=...)``."""

    def __init__(self, connection: SyncConnection, kernel_id: str) -> None:
        super().__init__(kernel_id)
        self._ws = connection

    @classmethod
    def connect(
        cls, session: Session, kernel_id: str, *, open_timeout: float | None = 10.0
    ) -> SyncStreamPty:
        """Open the stream of ``kernel_id`` (used by :meth:`Kernel.stream_pty`)."""
        url, headers = _handshake(session, kernel_id)
        try:
            # Entered at once: websockets 17.1+ warns about connections not used as context
            # managers, and the stream's own close() ends it.
            connection = sync_connect(
                url,
                additional_headers=headers,
                user_agent_header=session.config.user_agent,
                open_timeout=open_timeout,
                max_size=_MAX_FRAME,
                compression=None,
            ).__enter__()
        except (InvalidHandshake, OSError, TimeoutError) as exc:
            raise _handshake_error(exc, url) from exc
        return cls(connection, kernel_id)

    def send(self, data: bytes | str) -> None:
        """Send keystrokes or input bytes (``str`` is encoded as UTF-8)."""
        self._send(_stdin(data))

    write = send

    def send_str(self, frame: str) -> None:
        """Send one raw JSON frame, as sorna-client 0.9.8 did; it is validated first."""
        self._send(_checked_frame(frame))

    def resize(self, rows: int, cols: int) -> None:
        """Set the terminal size."""
        self._send(ResizeFrame(rows=rows, cols=cols).encode())

    def ping(self) -> None:
        """Keep the kernel from idling out."""
        self._send(PingFrame().encode())

    def restart(self) -> None:
        """Restart the kernel's terminal."""
        self._send(RestartFrame().encode())

    def read(self, timeout: float | None = None) -> bytes:
        """The next chunk of output; raises :class:`PtyError` once the stream is closed.

        With ``timeout``, raises ``TimeoutError`` when nothing arrives in time.
        """
        try:
            message = self._ws.recv(timeout)
        except ConnectionClosed as exc:
            raise self._note_close(exc) from exc
        return _payload(message)

    def close(self) -> None:
        """Close the stream; the terminal keeps running for the next connection."""
        self._ws.close()
        self.close_code = self.close_code or 1000

    def __iter__(self) -> SyncStreamPty:
        return self

    def __next__(self) -> bytes:
        try:
            return self.read()
        except PtyError:
            if self.close_code in NORMAL_CLOSE_CODES:
                raise StopIteration from None
            raise

    def __enter__(self) -> SyncStreamPty:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, text: str) -> None:
        try:
            self._ws.send(text)
        except ConnectionClosed as exc:
            raise self._note_close(exc) from exc
