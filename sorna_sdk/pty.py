"""The kernel's terminal over WebSocket (spec §6): :class:`StreamPty` (async) and
:class:`SyncStreamPty`, on websockets' asyncio and threading clients.

Frames are the typed models of :mod:`sorna_sdk.models.pty`; the handshake is signed
like any GET. A refused handshake raises the mapped :class:`~sorna_sdk.APIStatusError`
(e.g. ``KernelNotFoundError``); a stream the server closes raises :class:`PtyError`.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection as SyncConnection

from ._dialects import Dialect
from ._ws import close_code, open_async, open_sync
from .exceptions import InvalidArgumentError, PtyError
from .models.pty import PingFrame, ResizeFrame, RestartFrame, decode_client_frame
from .session import AsyncSession, Session

__all__ = ["NORMAL_CLOSE_CODES", "StreamPty", "SyncStreamPty"]

#: Close codes that end iteration quietly instead of raising :class:`PtyError`.
NORMAL_CLOSE_CODES = frozenset({1000})


def _closed_error(exc: ConnectionClosed) -> PtyError:
    code, reason = close_code(exc)
    detail = f": {reason}" if reason else ""
    return PtyError(f"the PTY stream was closed (code {code}{detail})", code=code, reason=reason)


def _payload(dialect: Dialect, message: str | bytes) -> bytes:
    try:
        return dialect.decode_pty_output(message)
    except (ValidationError, ValueError) as exc:
        raise PtyError(f"unexpected frame from the server: {str(message)[:80]!r}") from exc


def _checked_frame(frame: str) -> str:
    try:
        return decode_client_frame(frame).encode()
    except ValidationError as exc:
        raise InvalidArgumentError(f"not a PTY client frame: {frame[:80]!r}") from exc


def _resize_frame(rows: int, cols: int) -> str:
    for name, value in (("rows", rows), ("cols", cols)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise InvalidArgumentError(f"{name} must be an integer from 1 to 65535, got {value!r}")
    return ResizeFrame(rows=rows, cols=cols).encode()


def _stdin(dialect: Dialect, data: bytes | str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return dialect.encode_pty_input(raw)


class _PtyBase:
    def __init__(self, kernel_id: str) -> None:
        self.kernel_id: str = kernel_id
        """The kernel whose terminal this is."""
        self.close_code: int | None = None
        """The WebSocket close code once the stream is closed, else ``None``."""

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

    close_code: int | None
    """The WebSocket close code once the terminal closed (``None`` while open)."""

    def __init__(self, connection: AsyncConnection, kernel_id: str, dialect: Dialect) -> None:
        super().__init__(kernel_id)
        self._ws = connection
        self._dialect = dialect

    @classmethod
    async def connect(
        cls, session: AsyncSession, kernel_id: str, *, open_timeout: float | None = 10.0
    ) -> StreamPty:
        """Open the stream of ``kernel_id`` (used by :meth:`AsyncKernel.stream_pty`)."""
        dialect = await session.dialect()
        route = dialect.pty_path(kernel_id)
        connection = await open_async(session, route, open_timeout=open_timeout, what="PTY")
        return cls(connection, kernel_id, dialect)

    async def send(self, data: bytes | str) -> None:
        """Send keystrokes or input bytes (``str`` is encoded as UTF-8)."""
        await self._send(_stdin(self._dialect, data))

    write = send
    """The same as :meth:`send` (the name of sorna-client 0.9.8)."""

    async def send_str(self, frame: str) -> None:
        """Send one raw JSON frame, as sorna-client 0.9.8 did; it is validated first."""
        await self._send(_checked_frame(frame))

    async def resize(self, rows: int, cols: int) -> None:
        """Set the terminal size (1 to 65535 each; else :class:`InvalidArgumentError`)."""
        await self._send(_resize_frame(rows, cols))

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
        return _payload(self._dialect, message)

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

    close_code: int | None
    """The WebSocket close code once the terminal closed (``None`` while open)."""

    def __init__(self, connection: SyncConnection, kernel_id: str, dialect: Dialect) -> None:
        super().__init__(kernel_id)
        self._ws = connection
        self._dialect = dialect

    @classmethod
    def connect(
        cls, session: Session, kernel_id: str, *, open_timeout: float | None = 10.0
    ) -> SyncStreamPty:
        """Open the stream of ``kernel_id`` (used by :meth:`Kernel.stream_pty`)."""
        dialect = session.dialect()
        route = dialect.pty_path(kernel_id)
        connection = open_sync(session, route, open_timeout=open_timeout, what="PTY")
        return cls(connection, kernel_id, dialect)

    def send(self, data: bytes | str) -> None:
        """Send keystrokes or input bytes (``str`` is encoded as UTF-8)."""
        self._send(_stdin(self._dialect, data))

    write = send
    """The same as :meth:`send` (the name of sorna-client 0.9.8)."""

    def send_str(self, frame: str) -> None:
        """Send one raw JSON frame, as sorna-client 0.9.8 did; it is validated first."""
        self._send(_checked_frame(frame))

    def resize(self, rows: int, cols: int) -> None:
        """Set the terminal size (1 to 65535 each; else :class:`InvalidArgumentError`)."""
        self._send(_resize_frame(rows, cols))

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
        return _payload(self._dialect, message)

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
