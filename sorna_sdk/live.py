"""Live runs: console items as they are printed, input requests, deadlines and resume.

``kern.stream(code)`` returns a :class:`LiveRun` (``AsyncKernel``: :class:`AsyncLiveRun`):
iterate it for :class:`OutputEvent` (one per console item), :class:`InputRequest` (answer with
``.reply(text)``) and one final :class:`ResultEvent` carrying the merged result.
``kern.run(code, on_output=...)`` consumes one.

Transport: the execute WebSocket where the server has one (Backend.AI from v4.20190115; on the
local gateway also for Sorna v2, an extension route: a server answering 404 is remembered and
long-polled), else HTTP long-polling with the gateway's ``eager`` and ``offset`` keys (a real
server ignores them). Both give the same events.

Resume: a dropped connection is reopened (at most :data:`MAX_RESUMES` times in a row) and
the run continued from the number of items already received, so nothing is lost or
repeated; a server that names no runs (a real Backend.AI execute stream) cannot be resumed
(:class:`~sorna_sdk.StreamResumeError`). The local gateway keeps a left run for 15 s.

Deadline (``timeout=``): wall-clock seconds for the whole run, every round included. When it
passes the run is interrupted on the server; the SDK waits a short settle time
(:func:`settle_time`) for the interrupted end and raises
:class:`~sorna_sdk.ExecutionTimeoutError` with the output so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeAlias, TypeVar

import httpx
from websockets.exceptions import ConnectionClosed

from ._dialects import BackendAI, Dialect, PendingRun, StreamPath
from ._frames import parse_frame, start_frame
from ._protocol import Call
from ._run import InputSource, RunState, input_lines
from .exceptions import (
    APIConnectionError,
    ExecutionError,
    ExecutionTimeoutError,
    InvalidArgumentError,
    KernelNotFoundError,
    NotFoundError,
    NotImplementedByServerError,
    SornaError,
    StreamError,
    StreamResumeError,
)
from .models import ConsoleItem, ExecuteRequest, ExecutionResult, QueryRequest
from .session import AsyncSession, Session, _as_response, _connection_error, _SessionBase

if TYPE_CHECKING:
    # The WebSocket clients load with the first run over a WebSocket (_ws), not with the SDK.
    from websockets.asyncio.client import ClientConnection as AsyncConnection
    from websockets.sync.client import ClientConnection as SyncConnection

    from .kernels import AsyncKernel, Kernel

__all__ = [
    "MAX_RESUMES",
    "AsyncLiveRun",
    "AsyncOutputCallback",
    "InputRequest",
    "LiveEvent",
    "LiveRun",
    "LiveTransport",
    "OutputCallback",
    "OutputEvent",
    "ResultEvent",
    "settle_time",
]

T = TypeVar("T")

#: ``on_output`` of ``Kernel.run``: called with each console item as it arrives.
OutputCallback: TypeAlias = Callable[[ConsoleItem], None]
#: ``on_output`` of ``AsyncKernel.run``: an async callback is awaited, a sync one called.
AsyncOutputCallback: TypeAlias = Callable[[ConsoleItem], Awaitable[None] | None]
#: How a live run talks to the server: ``"auto"`` tries the WebSocket first.
LiveTransport: TypeAlias = Literal["auto", "websocket", "http"]
#: Reconnections tried in a row after a dropped connection.
MAX_RESUMES = 3
#: Longest wait for a WebSocket handshake.
OPEN_TIMEOUT = 10.0
#: Sessions whose server has no execute WebSocket for live runs (answered 404).
_NO_STREAM: weakref.WeakKeyDictionary[_SessionBase, bool] = weakref.WeakKeyDictionary()


def settle_time(timeout: float) -> float:
    """How long after a deadline the SDK waits for the interrupted run's end (seconds)."""
    return min(0.2, 0.05 * timeout + 0.05)


# -- events ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputEvent:
    """One console item, as soon as it arrived; ``index`` is its position in the run."""

    item: ConsoleItem
    """The console item (``item.type``, ``item.data``, ``item.text``...)."""
    index: int
    """The item's position in the run's console, from 0."""
    kind: Literal["output"] = "output"
    """Always ``"output"``: tells the events of a live run apart."""


class InputRequest:
    """The program waits for a line: answer with :meth:`reply` before iterating further.

    ``prompt`` is the text printed just before (already delivered as output),
    ``is_password`` whether the entry should be hidden, ``result`` the waiting answer.
    """

    kind: Literal["input"] = "input"
    """Always ``"input"``: tells the events of a live run apart."""
    result: ExecutionResult
    """The ``waiting-input`` answer of the server."""
    prompt: str
    """The text printed just before the program asked (already delivered as output)."""
    is_password: bool
    """Whether the entry should be hidden (``getpass``)."""
    answer: str | None
    """The line given to :meth:`reply` (``None`` until then)."""

    def __init__(self, result: ExecutionResult) -> None:
        self.result = result
        last = result.console[-1] if result.console else None
        self.prompt = last.data if last is not None and last.type == "stdout" else ""
        self.is_password = result.is_password
        self.answer = None

    def __repr__(self) -> str:
        return f"<InputRequest prompt={self.prompt!r} is_password={self.is_password}>"

    def reply(self, text: str) -> None:
        """Answer with one line (a trailing newline is dropped)."""
        if not isinstance(text, str):
            raise InvalidArgumentError(f"reply() takes a string, got {type(text).__name__}")
        if self.answer is not None:
            raise InvalidArgumentError("this input request has been answered already")
        self.answer = text[:-1] if text.endswith("\n") else text


@dataclass(frozen=True)
class ResultEvent:
    """The run is over: ``result`` holds its whole console and final status."""

    result: ExecutionResult
    """The whole run: every console item, the final status, ``exit_code`` and ``error``."""
    kind: Literal["result"] = "result"
    """Always ``"result"``: tells the events of a live run apart."""


#: What iterating a live run yields.
LiveEvent: TypeAlias = OutputEvent | InputRequest | ResultEvent


# -- the sans-IO core ------------------------------------------------------------------


class _Core:
    """Frames in, events out: drops items already received (by ``offset``), counts items for
    resuming, merges the run's result."""

    def __init__(self, input: InputSource | None) -> None:
        self.merged = RunState(None)
        self.received = 0
        self.run_id: str | None = None
        self.last: ExecutionResult | None = None
        self.events: deque[LiveEvent] = deque()
        self.asking: InputRequest | None = None
        self.final: ExecutionResult | None = None
        self._answer: Callable[[ExecutionResult], str] | None = None
        self._lines: Iterator[str] | None = None
        if callable(input):
            self._answer = input
        elif input is not None:
            self._lines = input_lines(input)

    @property
    def done(self) -> bool:
        return self.final is not None

    def accept(self, frame: ExecutionResult) -> None:
        items = list(frame.console)
        if frame.offset is not None:
            if frame.offset > self.received:
                raise StreamError(
                    f"the server skipped output: items {self.received} to {frame.offset - 1} "
                    "of the run never arrived"
                )
            items = items[self.received - frame.offset :]
        if frame.run_id:
            self.run_id = frame.run_id
        frame = frame.model_copy(update={"console": items})
        self.merged.feed(frame)
        self.last = frame
        for item in items:
            self.events.append(OutputEvent(item, self.received))
            self.received += 1
        if frame.status == "waiting-input":
            self.asking = InputRequest(frame)
            self.events.append(self.asking)
        if frame.done:
            self.final = self.merged.result().model_copy(
                update={"offset": 0 if frame.offset is not None else None}
            )
            self.events.append(ResultEvent(self.final))

    def answer(self) -> str:
        """The line for the pending input request: its reply, else from ``input=``."""
        asking = self.asking
        assert asking is not None
        if asking.answer is not None:
            return asking.answer
        if self._answer is not None:
            return self._answer(asking.result)
        if self._lines is not None:
            line = next(self._lines, None)
            if line is not None:
                return line.rstrip("\n")
        raise ExecutionError(
            "the program is waiting for input: answer the InputRequest event with "
            ".reply(text), or pass input= (a callback or lines)"
        )

    def so_far(self) -> ExecutionResult:
        """The merged result of what arrived (``continued`` before any answer)."""
        if self.final is not None:
            return self.final
        if not self.merged.started:
            return ExecutionResult(status="continued", run_id=self.run_id)
        return self.merged.result()


class _Deadline:
    def __init__(self, timeout: float | None) -> None:
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
        ):
            raise InvalidArgumentError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        self.timeout = timeout
        self.at = time.monotonic() + timeout if timeout is not None else None
        self.settle = settle_time(timeout) if timeout is not None else 0.0
        #: The interrupt has been sent (or attempted).
        self.fired = False
        self.interrupt_error: SornaError | None = None

    def left(self) -> float | None:
        """Seconds until the deadline (``None``: no deadline)."""
        return None if self.at is None else self.at - time.monotonic()

    def hard_left(self) -> float | None:
        """Seconds until the deadline plus the settle time."""
        return None if self.at is None else self.at + self.settle - time.monotonic()

    def error(self, result: ExecutionResult) -> ExecutionTimeoutError:
        note = f" (the interrupt failed: {self.interrupt_error})" if self.interrupt_error else ""
        return ExecutionTimeoutError(
            f"the run did not finish within {self.timeout:g} s and was interrupted{note}",
            result=result,
            timeout=float(self.timeout or 0.0),
        )


class _Dropped(Exception):
    """The connection of a live run broke (internal)."""


class _TimedOut(Exception):
    """A round did not answer before the deadline (internal)."""


def _request_timeout(session: _SessionBase, left: float) -> httpx.Timeout:
    left = max(left, 0.001)
    read = session.config.timeout
    connect = session.config.connect_timeout
    return httpx.Timeout(
        min(read, left) if read is not None else left,
        connect=min(connect, left),
    )


def _send_sync(session: Session, call: Call[T], left: float | None) -> T:
    """Send one call; with a deadline, its timeouts are cut to the time ``left``."""
    if left is None:
        return session.exchange(call)
    args = session._request_args(call)
    args["timeout"] = _request_timeout(session, left)
    try:
        response = session._http.request(**args)
    except httpx.TimeoutException:
        raise _TimedOut from None
    except httpx.TransportError as exc:
        raise _connection_error(exc, call, args["url"]) from exc
    return call.handle(_as_response(response))


async def _send_async(session: AsyncSession, call: Call[T], left: float | None) -> T:
    """The asynchronous twin of :func:`_send_sync`."""
    if left is None:
        return await session.exchange(call)
    args = session._request_args(call)
    args["timeout"] = _request_timeout(session, left)
    try:
        response = await session._http.request(**args)
    except httpx.TimeoutException:
        raise _TimedOut from None
    except httpx.TransportError as exc:
        raise _connection_error(exc, call, args["url"]) from exc
    return call.handle(_as_response(response))


def _stream_missing(exc: SornaError) -> bool:
    """Whether a refused handshake means the server has no execute WebSocket."""
    if isinstance(exc, KernelNotFoundError):
        return False
    return isinstance(exc, (NotFoundError, NotImplementedByServerError, StreamError))


def _check_request(request: ExecuteRequest) -> None:
    if request.mode == "complete":
        raise InvalidArgumentError("complete mode does not stream; use complete()")


def _continuation(
    dialect: Dialect, core: _Core, line: str | None
) -> tuple[ExecuteRequest, PendingRun | None, int | None]:
    """The HTTP request after an answer: the input line, else a continue from ``received``."""
    last = core.last
    assert last is not None
    if isinstance(dialect, BackendAI) and core.run_id is None:
        raise ExecutionError("cannot continue the run: the server did not name it (no runId)")
    if line is not None:
        return QueryRequest(code=line), PendingRun("waiting-input", core.run_id), None
    status = "continued" if last.status == "waiting-input" else last.status
    return QueryRequest(code=""), PendingRun(status, core.run_id), core.received


class _LiveBase:
    """State and helpers shared by both live runs."""

    def __init__(
        self,
        request: ExecuteRequest,
        *,
        input: InputSource | None,
        timeout: float | None,
        transport: LiveTransport,
    ) -> None:
        _check_request(request)
        if transport not in ("auto", "websocket", "http"):
            raise InvalidArgumentError(
                f"transport must be 'auto', 'websocket' or 'http', got {transport!r}"
            )
        self._request = request
        self._core = _Core(input)
        self._deadline = _Deadline(timeout)
        self._wanted = transport
        #: ``"websocket"`` or ``"http"`` once the run started.
        self.transport: Literal["websocket", "http"] | None = None
        self._started = False
        self._answered_once = False
        self._line: str | None = None
        self._drops = 0
        self._closed = False

    def __repr__(self) -> str:
        state = "done" if self._core.done else ("running" if self._started else "not started")
        return f"<{type(self).__name__} {state} via {self.transport or self._wanted}>"

    @property
    def result(self) -> ExecutionResult | None:
        """The merged result once the run is over (``None`` before)."""
        return self._core.final

    @property
    def so_far(self) -> ExecutionResult:
        """The merged output received so far."""
        return self._core.so_far()

    @property
    def last(self) -> ExecutionResult | None:
        """The last answer received (its ``status``: ``continued``, ``build-finished``...)."""
        return self._core.last

    @property
    def run_id(self) -> str | None:
        """The run's id, once the server named it."""
        return self._core.run_id

    @property
    def received(self) -> int:
        """How many console items have arrived."""
        return self._core.received

    def _take_line(self) -> None:
        """Move a pending input request's answer to ``_line`` (a Ctrl-C drops the request)."""
        try:
            line = self._core.answer()
        except KeyboardInterrupt:
            self._core.asking = None
            raise
        self._core.asking = None
        self._line = line

    def _too_many_drops(self, cause: BaseException) -> None:
        self._drops += 1
        if self._drops > MAX_RESUMES:
            raise StreamResumeError(
                f"the connection dropped {self._drops} times in a row; gave up resuming the run",
                result=self._core.so_far(),
            ) from cause

    def _cannot_resume(self, cause: BaseException) -> StreamResumeError:
        return StreamResumeError(
            "the execute stream dropped and the server named no run (runId), so the run "
            "cannot be resumed (a real Backend.AI server sends none on its stream)",
            result=self._core.so_far(),
        )

    def _start_error(self, cause: BaseException) -> StreamResumeError:
        return StreamResumeError(
            f"the connection dropped before the run was acknowledged: {cause}",
            result=self._core.so_far(),
        )


# -- sync ------------------------------------------------------------------------------


class LiveRun(_LiveBase):
    """A run whose events arrive as they happen (sync). Iterate it; use as a context manager.

    Leaving it before the end (``close()``) interrupts the run.
    """

    transport: Literal["websocket", "http"] | None
    """How the run is carried once started (``None`` before the first event)."""

    def __init__(
        self,
        kernel: Kernel,
        request: ExecuteRequest,
        *,
        input: InputSource | None = None,
        timeout: float | None = None,
        transport: LiveTransport = "auto",
    ) -> None:
        super().__init__(request, input=input, timeout=timeout, transport=transport)
        self._kernel = kernel
        self._session: Session = kernel.session
        self._ws: SyncConnection | None = None
        self._timer: threading.Timer | None = None
        self._interrupt_lock = threading.Lock()

    def __iter__(self) -> LiveRun:
        return self

    def __next__(self) -> LiveEvent:
        while not self._core.events:
            if self._core.done or self._closed:
                raise StopIteration
            try:
                self._step()
            except KeyboardInterrupt:
                raise  # the run goes on: iterate again to follow it (``sorna run``'s Ctrl-C)
            except BaseException:
                self._shutdown()
                raise
        return self._core.events.popleft()

    def result_or_raise(self) -> ExecutionResult:
        """Iterate to the end (answering input from ``input=``) and return the result."""
        for _ in self:
            pass
        final = self._core.final
        if final is None:
            raise StreamError("the live run was closed before it finished")
        return final

    def close(self) -> None:
        """Stop following the run; an unfinished run is interrupted (its end is collected by
        the kernel handle before its next call)."""
        if self._closed:
            return
        if self._started and not self._core.done:
            self._interrupt()
            self._kernel._leave_unfinished(self._core.run_id)
        self._shutdown()

    def __enter__(self) -> LiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- rounds --

    def _step(self) -> None:
        if not self._started:
            self._start()
            if self.transport == "websocket":
                return
        elif self._core.asking is not None:
            self._take_line()
            if self.transport == "websocket":
                self._send_ws(self._line or "")
                self._line = None
        left = self._deadline.hard_left()
        if left is not None and left <= 0:
            self._expire()
        try:
            frame = self._recv_ws(left) if self.transport == "websocket" else self._recv_http(left)
        except _TimedOut:
            self._expire()
        except _Dropped as exc:
            self._resume(exc)
            return
        self._drops = 0
        self._answered_once = True
        self._core.accept(frame)
        if self._deadline.fired and self._core.done:
            self._expire()
        if self._core.done:
            self._shutdown()

    def _start(self) -> None:
        self._kernel._collect_unfinished()
        self._started = True
        left = self._deadline.left()
        if left is not None:
            self._timer = threading.Timer(max(left, 0.0), self._interrupt)
            self._timer.daemon = True
            self._timer.start()
        dialect = self._session.dialect()
        route = self._route(dialect)
        if route is not None:
            try:
                self._open(route, start_frame(dialect, self._request))
                self.transport = "websocket"
                return
            except SornaError as exc:
                if self._wanted == "websocket" or not _stream_missing(exc):
                    raise
                _NO_STREAM[self._session] = True
        self.transport = "http"

    def _route(self, dialect: Dialect) -> StreamPath | None:
        if self._wanted == "http" or (self._wanted == "auto" and self._session in _NO_STREAM):
            return None
        route = dialect.live_stream_path(self._kernel.kernel_id)
        if route is None and self._wanted == "websocket":
            raise dialect.unsupported("a live run over the execute WebSocket")
        return route

    def _open(self, route: StreamPath, first: str) -> None:
        left = self._deadline.hard_left()
        timeout = OPEN_TIMEOUT if left is None else max(min(OPEN_TIMEOUT, left), 0.001)
        from ._ws import open_sync

        self._ws = open_sync(self._session, route, open_timeout=timeout, what="execute")
        self._ws.close_timeout = 1.0
        self._send_ws(first)

    def _send_ws(self, text: str) -> None:
        assert self._ws is not None
        with contextlib.suppress(ConnectionClosed, OSError):  # the next recv notices
            self._ws.send(text)

    def _recv_ws(self, left: float | None) -> ExecutionResult:
        assert self._ws is not None
        try:
            message = self._ws.recv(timeout=left)
        except TimeoutError:
            raise _TimedOut from None
        except (ConnectionClosed, OSError) as exc:
            raise _Dropped(str(exc)) from exc
        return parse_frame(message)

    def _recv_http(self, left: float | None) -> ExecutionResult:
        dialect = self._session.dialect()
        request: ExecuteRequest
        pending: PendingRun | None
        offset: int | None
        if not self._answered_once:
            request, pending, offset = self._request, None, 0
        else:
            request, pending, offset = _continuation(dialect, self._core, self._line)
        call = dialect.execute(self._kernel.kernel_id, request, pending, eager=True, offset=offset)
        try:
            result = _send_sync(self._session, call, left)
        except APIConnectionError as exc:
            if not self._answered_once:
                raise
            raise _Dropped(str(exc)) from exc
        self._line = None
        return result

    def _resume(self, cause: _Dropped) -> None:
        self._too_many_drops(cause)
        time.sleep(0.05 * self._drops)
        left = self._deadline.hard_left()
        if left is not None and left <= 0:
            self._expire()
        if self.transport == "http":
            return  # the next round continues from ``received``
        if not self._answered_once and self._core.run_id is None:
            raise self._start_error(cause) from cause
        if self._core.run_id is None:
            raise self._cannot_resume(cause) from cause
        self._close_ws()
        dialect = self._session.dialect()
        route = dialect.live_stream_path(self._kernel.kernel_id)
        assert route is not None
        try:
            self._open(route, dialect.encode_execute_resume(self._core.run_id, self._core.received))
        except APIConnectionError as exc:
            self._resume(_Dropped(str(exc)))

    # -- deadline --

    def _interrupt(self) -> None:
        with self._interrupt_lock:
            if self._deadline.fired:
                return
            self._deadline.fired = True
        kernel_id = self._kernel.kernel_id
        try:
            self._session.send(lambda api: api.interrupt(kernel_id))
        except SornaError as exc:
            self._deadline.interrupt_error = exc
        except Exception as exc:  # a timer thread must not die loudly
            self._deadline.interrupt_error = SornaError(str(exc))

    def _expire(self) -> NoReturn:
        timer = self._timer
        if timer is not None:
            timer.cancel()
            if timer.is_alive():
                timer.join(2.0)
        self._interrupt()
        if not self._core.done:
            self._kernel._leave_unfinished(self._core.run_id)
        self._shutdown()
        raise self._deadline.error(self._core.so_far())

    def _shutdown(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        self._close_ws()

    def _close_ws(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(OSError, ConnectionClosed, RuntimeError):
                ws.close()


# -- async -----------------------------------------------------------------------------


class AsyncLiveRun(_LiveBase):
    """The asynchronous twin of :class:`LiveRun`: ``async for event in kern.stream(code)``."""

    transport: Literal["websocket", "http"] | None
    """How the run is carried once started (``None`` before the first event)."""

    def __init__(
        self,
        kernel: AsyncKernel,
        request: ExecuteRequest,
        *,
        input: InputSource | None = None,
        timeout: float | None = None,
        transport: LiveTransport = "auto",
    ) -> None:
        super().__init__(request, input=input, timeout=timeout, transport=transport)
        self._kernel = kernel
        self._session: AsyncSession = kernel.session
        self._ws: AsyncConnection | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._interrupting: asyncio.Task[None] | None = None

    def __aiter__(self) -> AsyncLiveRun:
        return self

    async def __anext__(self) -> LiveEvent:
        while not self._core.events:
            if self._core.done or self._closed:
                raise StopAsyncIteration
            try:
                await self._step()
            except BaseException:
                await self._shutdown()
                raise
        return self._core.events.popleft()

    async def result_or_raise(self) -> ExecutionResult:
        """Iterate to the end (answering input from ``input=``) and return the result."""
        async for _ in self:
            pass
        final = self._core.final
        if final is None:
            raise StreamError("the live run was closed before it finished")
        return final

    async def close(self) -> None:
        """Stop following the run; an unfinished run is interrupted (its end is collected by
        the kernel handle before its next call)."""
        if self._closed:
            return
        if self._started and not self._core.done:
            await self._interrupt()
            self._kernel._leave_unfinished(self._core.run_id)
        await self._shutdown()

    async def __aenter__(self) -> AsyncLiveRun:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- rounds --

    async def _step(self) -> None:
        if not self._started:
            await self._start()
            if self.transport == "websocket":
                return
        elif self._core.asking is not None:
            self._take_line()
            if self.transport == "websocket":
                await self._send_ws(self._line or "")
                self._line = None
        left = self._deadline.hard_left()
        if left is not None and left <= 0:
            await self._expire()
        try:
            if self.transport == "websocket":
                frame = await self._recv_ws(left)
            else:
                frame = await self._recv_http(left)
        except _TimedOut:
            await self._expire()
        except _Dropped as exc:
            await self._resume(exc)
            return
        self._drops = 0
        self._answered_once = True
        self._core.accept(frame)
        if self._deadline.fired and self._core.done:
            await self._expire()
        if self._core.done:
            await self._shutdown()

    async def _start(self) -> None:
        await self._kernel._collect_unfinished()
        self._started = True
        left = self._deadline.left()
        if left is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(left, 0.0), self._on_deadline)
        dialect = await self._session.dialect()
        route = self._route(dialect)
        if route is not None:
            try:
                await self._open(route, start_frame(dialect, self._request))
                self.transport = "websocket"
                return
            except SornaError as exc:
                if self._wanted == "websocket" or not _stream_missing(exc):
                    raise
                _NO_STREAM[self._session] = True
        self.transport = "http"

    def _route(self, dialect: Dialect) -> StreamPath | None:
        if self._wanted == "http" or (self._wanted == "auto" and self._session in _NO_STREAM):
            return None
        route = dialect.live_stream_path(self._kernel.kernel_id)
        if route is None and self._wanted == "websocket":
            raise dialect.unsupported("a live run over the execute WebSocket")
        return route

    async def _open(self, route: StreamPath, first: str) -> None:
        left = self._deadline.hard_left()
        timeout = OPEN_TIMEOUT if left is None else max(min(OPEN_TIMEOUT, left), 0.001)
        from ._ws import open_async

        self._ws = await open_async(self._session, route, open_timeout=timeout, what="execute")
        self._ws.close_timeout = 1.0
        await self._send_ws(first)

    async def _send_ws(self, text: str) -> None:
        assert self._ws is not None
        with contextlib.suppress(ConnectionClosed, OSError):  # the next recv notices
            await self._ws.send(text)

    async def _recv_ws(self, left: float | None) -> ExecutionResult:
        assert self._ws is not None
        try:
            message = await asyncio.wait_for(self._ws.recv(), left)
        except asyncio.TimeoutError:
            raise _TimedOut from None
        except (ConnectionClosed, OSError) as exc:
            raise _Dropped(str(exc)) from exc
        return parse_frame(message)

    async def _recv_http(self, left: float | None) -> ExecutionResult:
        dialect = await self._session.dialect()
        request: ExecuteRequest
        pending: PendingRun | None
        offset: int | None
        if not self._answered_once:
            request, pending, offset = self._request, None, 0
        else:
            request, pending, offset = _continuation(dialect, self._core, self._line)
        call = dialect.execute(self._kernel.kernel_id, request, pending, eager=True, offset=offset)
        try:
            result = await _send_async(self._session, call, left)
        except APIConnectionError as exc:
            if not self._answered_once:
                raise
            raise _Dropped(str(exc)) from exc
        self._line = None
        return result

    async def _resume(self, cause: _Dropped) -> None:
        while True:
            self._too_many_drops(cause)
            await asyncio.sleep(0.05 * self._drops)
            left = self._deadline.hard_left()
            if left is not None and left <= 0:
                await self._expire()
            if self.transport == "http":
                return
            if not self._answered_once and self._core.run_id is None:
                raise self._start_error(cause) from cause
            if self._core.run_id is None:
                raise self._cannot_resume(cause) from cause
            await self._close_ws()
            dialect = await self._session.dialect()
            route = dialect.live_stream_path(self._kernel.kernel_id)
            assert route is not None
            resume = dialect.encode_execute_resume(self._core.run_id, self._core.received)
            try:
                await self._open(route, resume)
                return
            except APIConnectionError as exc:
                cause = _Dropped(str(exc))

    # -- deadline --

    def _on_deadline(self) -> None:
        self._interrupting = asyncio.get_running_loop().create_task(self._interrupt())

    async def _interrupt(self) -> None:
        if self._deadline.fired:
            return
        self._deadline.fired = True
        kernel_id = self._kernel.kernel_id
        try:
            await self._session.send(lambda api: api.interrupt(kernel_id))
        except SornaError as exc:
            self._deadline.interrupt_error = exc

    async def _expire(self) -> NoReturn:
        if self._timer is not None:
            self._timer.cancel()
        if self._interrupting is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._interrupting), 2.0)
        await self._interrupt()
        if not self._core.done:
            self._kernel._leave_unfinished(self._core.run_id)
        await self._shutdown()
        raise self._deadline.error(self._core.so_far())

    async def _shutdown(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        await self._close_ws()

    async def _close_ws(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(OSError, ConnectionClosed, RuntimeError):
                await ws.close()


def execute_within(
    kernel: Kernel, request: ExecuteRequest, pending: PendingRun | None, timeout: float
) -> ExecutionResult:
    """One execute call under a deadline: interrupted on expiry (``ExecutionTimeoutError``)."""
    deadline = _Deadline(timeout)
    session = kernel.session
    lock = threading.Lock()

    def interrupt() -> None:
        with lock:
            if deadline.fired:
                return
            deadline.fired = True
        try:
            session.send(lambda api: api.interrupt(kernel.kernel_id))
        except Exception as exc:  # a timer thread must not die loudly
            deadline.interrupt_error = exc if isinstance(exc, SornaError) else SornaError(str(exc))

    call = session.dialect().execute(kernel.kernel_id, request, pending)
    timer = threading.Timer(timeout, interrupt)
    timer.daemon = True
    timer.start()
    result: ExecutionResult | None = None
    try:
        result = _send_sync(session, call, deadline.hard_left())
    except _TimedOut:
        pass
    finally:
        timer.cancel()
        if timer.is_alive():
            timer.join(2.0)
    if result is not None and not deadline.fired:
        return result
    interrupt()
    _after_expiry(kernel, result, pending)
    raise deadline.error(result or ExecutionResult(status="continued"))


async def execute_within_async(
    kernel: AsyncKernel, request: ExecuteRequest, pending: PendingRun | None, timeout: float
) -> ExecutionResult:
    """The asynchronous twin of :func:`execute_within`."""
    deadline = _Deadline(timeout)
    session = kernel.session

    async def interrupt() -> None:
        if deadline.fired:
            return
        deadline.fired = True
        try:
            await session.send(lambda api: api.interrupt(kernel.kernel_id))
        except SornaError as exc:
            deadline.interrupt_error = exc

    call = (await session.dialect()).execute(kernel.kernel_id, request, pending)
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    timer = loop.call_later(timeout, lambda: tasks.append(loop.create_task(interrupt())))
    result: ExecutionResult | None = None
    try:
        result = await _send_async(session, call, deadline.hard_left())
    except _TimedOut:
        pass
    finally:
        timer.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
    if result is not None and not deadline.fired:
        return result
    await interrupt()
    _after_expiry(kernel, result, pending)
    raise deadline.error(result or ExecutionResult(status="continued"))


def _after_expiry(
    kernel: Kernel | AsyncKernel, result: ExecutionResult | None, pending: PendingRun | None
) -> None:
    if result is not None and result.done:
        kernel._track(result)
        return
    run_id = result.run_id if result is not None else None
    kernel._leave_unfinished(run_id or (pending.run_id if pending else None))


async def call_output(callback: AsyncOutputCallback, item: ConsoleItem) -> None:
    """Call an ``on_output`` callback; await what it returns if it is awaitable."""
    outcome: Any = callback(item)
    if inspect.isawaitable(outcome):
        await outcome
