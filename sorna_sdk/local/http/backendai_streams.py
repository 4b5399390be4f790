"""Backend.AI's streams: the execute WebSocket and session events over SSE.

Execute (``/stream/session/{id}/execute``): the client's first frame is ``{"code", "mode",
"options"}``; the server answers with a result frame per flush and continues the run itself,
reads a plain text frame after ``waiting-input``, and closes after the last frame. Errors
are frames ``{"status": "error", "msg": ...}``; a client that leaves interrupts its run.

Events (``/events/session``): ``event: session_started`` / ``data: {...}`` blocks as they
happen (no ``id:`` fields, as the real server), a comment line every 15 s of silence, and
``server_close`` when the gateway shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, Final

from aiohttp import WSMsgType, web

from ..runtime.errors import GatewayProblem
from ..runtime.events import EventHub, LifecycleEvent
from .backendai_render import event_data, stream_frame
from .problems import HttpProblem
from .runtime_api import KernelHandle

__all__ = ["serve_events", "serve_execute"]

log = logging.getLogger(__name__)

#: Largest client frame of the execute stream (code or one input line).
MAX_EXECUTE_FRAME: Final = 8 * 1024 * 1024
#: How long the first frame may take to arrive.
START_TIMEOUT: Final = 30.0
#: Seconds of silence after which an event stream sends a comment (and notices a gone peer).
KEEPALIVE: Final = 15.0
_LAST: Final = frozenset({"finished", "exec-timeout", "interrupted"})
#: Collections an abandoned run gets to end after its interrupt (each one flush window).
ABANDON_ROUNDS: Final = 20
#: Kernel events mirrored from session events (scope ``kernel``).
_KERNEL_EVENTS: Final = {
    "session_started": "kernel_started",
    "session_terminating": "kernel_terminating",
    "session_terminated": "kernel_terminated",
    "session_cancelled": "kernel_cancelled",
}


async def serve_execute(request: web.Request, kernel: KernelHandle) -> web.StreamResponse:
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_EXECUTE_FRAME)
    if not ws.can_prepare(request).ok:
        raise HttpProblem("bad-request", "WebSocket upgrade expected.")
    await ws.prepare(request)
    start = await _start(ws)
    if start is None:
        return ws
    # One reader for the rest of the stream: it hands input lines over and notices a client
    # that leaves while the run goes on (its close frame is read only by reading).
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    reader = asyncio.get_running_loop().create_task(_read_lines(ws, lines))
    finished = False
    try:
        code, mode, options = start
        result = await kernel.execute(mode, code, options)
        while not reader.done():  # done: the client left
            await ws.send_str(json.dumps(stream_frame(result)))
            if result.status in _LAST:
                finished = True
                break
            if result.status == "waiting-input":
                line = await lines.get()
                if line is None:
                    break
                result = await kernel.execute("query", line, None)
            else:  # continued, clean-finished, build-finished: the server continues
                result = await kernel.execute("query", "", None)
    except GatewayProblem as exc:
        finished = True
        reader.cancel()  # close() below reads the client's close frame itself
        await _error(ws, f"BackendError: {exc.title}")
    except ConnectionError:
        pass  # the client left mid-run: interrupted below; nobody reads an answer
    finally:
        reader.cancel()
        if not finished:
            await asyncio.shield(_abandon(kernel))
    await ws.close()
    return ws


async def _abandon(kernel: KernelHandle) -> None:
    """Interrupt the run of a client that left and collect its end, so that the session
    takes new code at once (nobody else would collect it)."""
    with contextlib.suppress(GatewayProblem):
        await kernel.interrupt()
        for _ in range(ABANDON_ROUNDS):
            if (await kernel.execute("query", "", None)).status in _LAST:
                break


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


async def _start(ws: web.WebSocketResponse) -> tuple[str, str, dict[str, Any] | None] | None:
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
    if not isinstance(data, dict):
        await _error(ws, "Invalid API parameters: the start frame must be a JSON object")
        return None
    code, mode, options = data.get("code", ""), data.get("mode", "query"), data.get("options")
    if mode not in ("query", "batch"):
        await _error(ws, f"Invalid API parameters: mode must be query or batch, not {mode!r}")
        return None
    if not isinstance(code, str) or (options is not None and not isinstance(options, dict)):
        await _error(ws, "Invalid API parameters: code must be a string, options an object")
        return None
    return code, mode, options


async def _error(ws: web.WebSocketResponse, message: str) -> None:
    if not ws.closed:
        with contextlib.suppress(ConnectionError):
            await ws.send_str(json.dumps({"status": "error", "msg": message}))
        await ws.close()


async def serve_events(
    request: web.Request,
    hub: EventHub,
    owner: str,
    only: set[str] | None,
    scope: set[str],
) -> web.StreamResponse:
    """Stream the owner's lifecycle events (of the kernels in ``only``, if given)."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    sub = hub.subscribe(owner)
    try:
        await response.prepare(request)
        sessions = bool(scope & {"*", "session"})
        kernels = bool(scope & {"*", "kernel"})
        while True:
            try:
                event = await asyncio.wait_for(sub.get(), KEEPALIVE)
            except asyncio.TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if event is None:
                await response.write(b"event: server_close\ndata: \n\n")
                break
            if only is not None and event.kernel_id not in only:
                continue
            await response.write(_blocks(event, sessions=sessions, kernels=kernels))
        await response.write_eof()
    except ConnectionError:
        pass  # the subscriber left
    finally:
        sub.close()
    return response


def _blocks(event: LifecycleEvent, *, sessions: bool, kernels: bool) -> bytes:
    out: list[str] = []
    mirrored = _KERNEL_EVENTS.get(event.name)
    if kernels and mirrored is not None:
        out.append(_block(mirrored, event_data(event, kernel=True)))
    if sessions:
        out.append(_block(event.name, event_data(event, kernel=False)))
    return "".join(out).encode()


def _block(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"
