"""Execution over the execute WebSocket (Backend.AI ``/stream/session/{id}/execute``):
:class:`ExecuteStream` (async) and :class:`SyncExecuteStream`.

The client sends one start frame (code, mode, options); the server answers with a
result frame per flush (``continued``, ``waiting-input``, ... ``finished``) and runs the
continuation itself. A ``waiting-input`` frame is answered with :meth:`send_input`.
Iterate for the frames as typed :class:`~sorna_sdk.ExecutionResult` objects, or call
:meth:`result` for one merged result.
"""

from __future__ import annotations

from types import TracebackType

from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection as SyncConnection

from ._frames import parse_frame, start_frame
from ._run import InputSource, RunState
from ._ws import close_code, open_async, open_sync
from .exceptions import StreamError
from .models import ExecuteRequest, ExecutionResult
from .session import AsyncSession, Session

__all__ = ["ExecuteStream", "SyncExecuteStream", "parse_frame", "start_frame"]


def _cut(exc: ConnectionClosed) -> StreamError:
    code, reason = close_code(exc)
    detail = f": {reason}" if reason else ""
    return StreamError(f"the execute stream closed before the run finished (code {code}{detail})")


class _StreamBase:
    """State shared by both execute streams."""

    def __init__(self, kernel_id: str) -> None:
        self.kernel_id: str = kernel_id
        """The kernel the run executes in."""
        self.last: ExecutionResult | None = None
        """The last frame received (``None`` before the first)."""

    def __repr__(self) -> str:
        state = self.last.status if self.last is not None else "started"
        return f"<{type(self).__name__} kernel={self.kernel_id!r} {state}>"

    @property
    def done(self) -> bool:
        """Whether the run has finished (a terminal frame arrived)."""
        return self.last is not None and self.last.done


class ExecuteStream(_StreamBase):
    """A run streamed over WebSocket (async). ``async for result in stream`` yields each frame.

    >>> async with await kern.stream_execute("print(input('n? '))") as stream:  # doctest: +SKIP
    ...     print((await stream.result(input=["42"])).stdout)
    """

    last: ExecutionResult | None
    """The last frame received (``None`` before the first)."""

    def __init__(self, connection: AsyncConnection, kernel_id: str) -> None:
        super().__init__(kernel_id)
        self._ws = connection

    @classmethod
    async def connect(
        cls,
        session: AsyncSession,
        kernel_id: str,
        request: ExecuteRequest,
        *,
        open_timeout: float | None = 10.0,
    ) -> ExecuteStream:
        """Open the stream and send the start frame (used by ``AsyncKernel.stream_execute``)."""
        dialect = await session.dialect()
        route = dialect.execute_stream_path(kernel_id)
        connection = await open_async(session, route, open_timeout=open_timeout, what="execute")
        stream = cls(connection, kernel_id)
        await stream._send(start_frame(dialect, request))
        return stream

    async def send_input(self, text: str) -> None:
        """Answer a ``waiting-input`` frame with one line (without its newline)."""
        await self._send(text)

    async def result(self, *, input: InputSource | None = None) -> ExecutionResult:
        """Read the remaining frames, answering prompts from ``input``; one merged result."""
        state = RunState(input)
        async for frame in self:
            state.feed(frame)
            if frame.status == "waiting-input":
                await self.send_input(state.next_code())
        if not state.started:
            raise StreamError("the execute stream ended without a result")
        return state.result()

    async def close(self) -> None:
        """Close the stream (a server interrupts a run whose stream is closed)."""
        await self._ws.close()

    def __aiter__(self) -> ExecuteStream:
        return self

    async def __anext__(self) -> ExecutionResult:
        if self.done:
            raise StopAsyncIteration
        try:
            message = await self._ws.recv()
        except ConnectionClosed as exc:
            raise _cut(exc) from exc
        self.last = parse_frame(message)
        return self.last

    async def __aenter__(self) -> ExecuteStream:
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
            raise _cut(exc) from exc


class SyncExecuteStream(_StreamBase):
    """The synchronous twin of :class:`ExecuteStream`."""

    last: ExecutionResult | None
    """The last frame received (``None`` before the first)."""

    def __init__(self, connection: SyncConnection, kernel_id: str) -> None:
        super().__init__(kernel_id)
        self._ws = connection

    @classmethod
    def connect(
        cls,
        session: Session,
        kernel_id: str,
        request: ExecuteRequest,
        *,
        open_timeout: float | None = 10.0,
    ) -> SyncExecuteStream:
        """Open the stream and send the start frame (used by ``Kernel.stream_execute``)."""
        dialect = session.dialect()
        route = dialect.execute_stream_path(kernel_id)
        connection = open_sync(session, route, open_timeout=open_timeout, what="execute")
        stream = cls(connection, kernel_id)
        stream._send(start_frame(dialect, request))
        return stream

    def send_input(self, text: str) -> None:
        """Answer a ``waiting-input`` frame with one line (without its newline)."""
        self._send(text)

    def result(self, *, input: InputSource | None = None) -> ExecutionResult:
        """Read the remaining frames, answering prompts from ``input``; one merged result."""
        state = RunState(input)
        for frame in self:
            state.feed(frame)
            if frame.status == "waiting-input":
                self.send_input(state.next_code())
        if not state.started:
            raise StreamError("the execute stream ended without a result")
        return state.result()

    def close(self) -> None:
        """Close the stream (a server interrupts a run whose stream is closed)."""
        self._ws.close()

    def __iter__(self) -> SyncExecuteStream:
        return self

    def __next__(self) -> ExecutionResult:
        if self.done:
            raise StopIteration
        try:
            message = self._ws.recv()
        except ConnectionClosed as exc:
            raise _cut(exc) from exc
        self.last = parse_frame(message)
        return self.last

    def __enter__(self) -> SyncExecuteStream:
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
            raise _cut(exc) from exc
