"""The execute WebSocket of both dialects: Backend.AI's ``/stream/{session|kernel}/{id}/execute``
and, as an extension of this gateway, Sorna's ``/v2/stream/kernel/{id}/execute``.

The client's first text frame starts a run, ``{"code", "mode": "query"|"batch", "options"}``,
or resumes one, ``{"mode": "continue", "runId", "offset"}`` (the console items it already has).
The server answers with a frame per piece of output, as soon as it is there (``eager``
collection), and continues the run itself; after ``waiting-input`` the next text frame is the
input line; it closes after the last frame. Each frame carries ``runId`` and ``offset`` (the
index of its first console item in the run), so a client whose connection drops can resume
without losing or repeating output. A run whose client left goes on for ``resume_grace``
seconds; if nobody collects it meanwhile (a resumed stream or an HTTP continue), it is
interrupted and its end collected. Errors are a frame ``{"status": "error", "msg"}``, then close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any, Final

from aiohttp import WSMsgType, web

from ..._json import is_object
from .._runtime.errors import GatewayProblem
from .._runtime.results import RunResult
from .problems import HttpProblem
from .runtime_api import KernelHandle

__all__ = ["RESUME_GRACE", "ExecuteStreams", "Render"]

#: Largest client frame of the execute stream (code or one input line).
MAX_EXECUTE_FRAME: Final = 8 * 1024 * 1024
#: How long the first frame may take to arrive.
START_TIMEOUT: Final = 30.0
#: Seconds a run whose stream was left waits for someone to resume it.
RESUME_GRACE: Final = 15.0
#: Collections an abandoned run gets to end after its interrupt (each one flush window).
ABANDON_ROUNDS: Final = 20
_LAST: Final = frozenset({"finished", "exec-timeout", "interrupted"})

#: A dialect's frame body for a result (``runId``, ``offset`` and ``error`` are added here).
Render = Callable[[RunResult], dict[str, Any]]

_Start = tuple[str, str, dict[str, Any] | None, int | None]


class ExecuteStreams:
    """The execute streams of one application, and the runs left by their clients."""

    def __init__(self, resume_grace: float = RESUME_GRACE) -> None:
        self.resume_grace = resume_grace
        self._waiting: set[asyncio.Task[None]] = set()

    async def on_shutdown(self, app: web.Application) -> None:
        for task in list(self._waiting):
            task.cancel()
        await asyncio.gather(*self._waiting, return_exceptions=True)

    async def serve(
        self, request: web.Request, kernel: KernelHandle, render: Render
    ) -> web.StreamResponse:
        """Upgrade and run (or resume) one program over the stream."""
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_EXECUTE_FRAME)
        if not ws.can_prepare(request).ok:
            raise HttpProblem("bad-request", "WebSocket upgrade expected.")
        await ws.prepare(request)
        start = await _start(ws, kernel)
        if start is None:
            return ws
        # One reader for the rest of the stream: it hands input lines over and notices a
        # client that leaves while the run goes on (a close frame is read only by reading).
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        reader = asyncio.get_running_loop().create_task(_read_lines(ws, lines))
        finished = False
        try:
            mode, code, options, offset = start
            result = await kernel.execute(mode, code, options, eager=True, offset=offset)
            while not reader.done():  # done: the client left
                await ws.send_str(json.dumps(frame(render, result)))
                if result.status in _LAST:
                    finished = True
                    break
                if result.status == "waiting-input":
                    line = await lines.get()
                    if line is None:
                        break
                    result = await kernel.execute("query", line, None, eager=True)
                else:  # continued, clean-finished, build-finished: the server continues
                    result = await kernel.execute("query", "", None, eager=True)
        except GatewayProblem as exc:
            finished = True
            reader.cancel()  # close() below reads the client's close frame itself
            await _error(ws, f"BackendError: {exc.title}")
        except ConnectionError:
            pass  # the client left mid-run; what it missed stays answerable from its offset
        finally:
            reader.cancel()
            if not finished:
                self._wait_for_resume(kernel)
        await ws.close()
        return ws

    def _wait_for_resume(self, kernel: KernelHandle) -> None:
        task = asyncio.get_running_loop().create_task(
            _abandon_unless_resumed(kernel, kernel.run_id, time.monotonic(), self.resume_grace)
        )
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)


def frame(render: Render, result: RunResult) -> dict[str, Any]:
    """One stream frame: the dialect's body plus ``runId``, ``offset`` and ``error``."""
    body = render(result)
    body.update(runId=result.run_id or None, offset=result.offset)
    if result.error is not None:
        body["error"] = dict(result.error)
    return body


async def _abandon_unless_resumed(
    kernel: KernelHandle, run_id: str, left_at: float, grace: float
) -> None:
    await asyncio.sleep(grace)
    if kernel.run_id != run_id or kernel.collected_at > left_at or kernel.state == "idle":
        return  # resumed, or over and collected, or another run
    with contextlib.suppress(GatewayProblem):
        await kernel.interrupt()
        for _ in range(ABANDON_ROUNDS):
            if (await kernel.execute("query", "", None)).status in _LAST:
                break


async def _start(ws: web.WebSocketResponse, kernel: KernelHandle) -> _Start | None:
    try:
        message = await ws.receive(timeout=START_TIMEOUT)
    except asyncio.TimeoutError:
        await _error(ws, "Invalid API parameters: no start frame within 30 s")
        return None
    if message.type is not WSMsgType.TEXT:
        if message.type is WSMsgType.BINARY:
            await _error(ws, "Invalid API parameters: the start frame must be JSON text")
        return None
    try:
        data = json.loads(message.data)
    except ValueError:
        data = None
    if not is_object(data):
        await _error(ws, "Invalid API parameters: the start frame must be a JSON object")
        return None
    mode = data.get("mode", "query")
    if mode == "continue":
        run_id, offset = data.get("runId") or data.get("run_id"), data.get("offset", 0)
        if not isinstance(run_id, str) or run_id != kernel.run_id:
            await _error(ws, f"Invalid API parameters: {run_id!r} is not the session's run")
            return None
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            await _error(ws, "Invalid API parameters: offset must be an integer, 0 or more")
            return None
        return "query", "", None, offset
    code, options = data.get("code", ""), data.get("options")
    if mode not in ("query", "batch"):
        await _error(ws, f"Invalid API parameters: mode must be query or batch, not {mode!r}")
        return None
    if not isinstance(code, str) or (options is not None and not is_object(options)):
        await _error(ws, "Invalid API parameters: code must be a string, options an object")
        return None
    return mode, code, options, None


async def _read_lines(ws: web.WebSocketResponse, lines: asyncio.Queue[str | None]) -> None:
    """Queue the client's text frames; ``None`` and return once it closes."""
    try:
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                lines.put_nowait(str(message.data))
            elif message.type is WSMsgType.BINARY:
                lines.put_nowait(bytes(message.data).decode("utf-8", "replace"))
    finally:
        lines.put_nowait(None)


async def _error(ws: web.WebSocketResponse, message: str) -> None:
    if not ws.closed:
        with contextlib.suppress(ConnectionError):
            await ws.send_str(json.dumps({"status": "error", "msg": message}))
        await ws.close()
