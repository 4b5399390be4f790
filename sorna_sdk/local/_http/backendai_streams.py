"""Backend.AI's session events over SSE (the execute WebSocket is in :mod:`.execute_ws`).

Events (``/events/session``): ``event: session_started`` / ``data: {...}`` blocks as they
happen (no ``id:`` fields, as the real server), a comment line every 15 s of silence, and
``server_close`` when the gateway shuts down.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Final

from aiohttp import web

from .._runtime.events import EventHub, LifecycleEvent
from .backendai_render import event_data

__all__ = ["serve_events"]

log: logging.Logger = logging.getLogger(__name__)

#: Seconds of silence after which an event stream sends a comment (and notices a gone peer).
KEEPALIVE: Final = 15.0
#: Kernel events mirrored from session events (scope ``kernel``).
_KERNEL_EVENTS: Final = {
    "session_started": "kernel_started",
    "session_terminating": "kernel_terminating",
    "session_terminated": "kernel_terminated",
    "session_cancelled": "kernel_cancelled",
}


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
