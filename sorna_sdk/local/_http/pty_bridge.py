"""The PTY WebSocket bridge (spec §6): client frames into a :class:`Terminal`, its output out.

Close codes sent by the gateway:

* 1000: the client closed, or the shell exited by itself (``exit``, Ctrl-D), with the reason
  "the shell exited (status N)" after the shell's last output; the next stream gets a fresh
  shell (see ``terminal.py``); 1001 "gateway shutting down";
* 1003: a binary message (frames are JSON text); 1007: a malformed frame (bad JSON, unknown
  type, bad base64, out-of-range size). Malformed frames are never ignored silently: the
  socket is closed with the reason, and the terminal keeps running for the next connection;
* 1011: the terminal failed; 1013: output not read in time (see ``terminal.py``);
* 4404 "kernel destroyed": DELETE, exec-timeout, idle reaping or a crash of the kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final, Protocol

from aiohttp import WSMsgType, web
from pydantic import ValidationError

from sorna_sdk.local._http.problems import HttpProblem
from sorna_sdk.local._runtime.errors import KernelNotFound
from sorna_sdk.local._runtime.terminal import CLOSE_SHUTDOWN, Subscription, Terminal, TerminalClosed
from sorna_sdk.models.pty import (
    OutFrame,
    PingFrame,
    ResizeFrame,
    RestartFrame,
    StdinFrame,
    decode_client_frame,
)

__all__ = ["MAX_FRAME", "PtyKernel", "PtyStreams", "bridge", "serve_pty"]

log: logging.Logger = logging.getLogger(__name__)

#: Largest client message accepted (aiohttp closes with 1009 beyond it).
MAX_FRAME: Final = 1024 * 1024
_CLOSE_WAIT: Final = 15.0


class PtyKernel(Protocol):
    """What the bridge needs of a kernel."""

    kernel_id: str

    def touch(self) -> None: ...
    def terminal(self) -> Terminal: ...


class PtyStreams:
    """The open PTY streams of the gateway, closed first at shutdown."""

    def __init__(self) -> None:
        self.open: set[Subscription] = set()

    async def on_shutdown(self, app: web.Application) -> None:
        """Close every stream (1001): the server waits for its handlers to end."""
        for sub in list(self.open):
            sub.close(CLOSE_SHUTDOWN, "gateway shutting down")


async def serve_pty(
    request: web.Request, kernel: PtyKernel, streams: PtyStreams, *, binary_output: bool
) -> web.StreamResponse:
    """Upgrade to the kernel's terminal (both dialects' PTY route)."""
    # Everything that can refuse (auth in the middleware, 404, no upgrade) comes before
    # prepare(): after the 101 only close codes can tell the client what went wrong.
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_FRAME)
    if not ws.can_prepare(request).ok:
        raise HttpProblem("bad-request", "WebSocket upgrade expected.")
    terminal = kernel.terminal()
    try:
        sub = await terminal.subscribe()
    except TerminalClosed:
        raise KernelNotFound(f"kernel {kernel.kernel_id} was destroyed") from None
    except OSError:
        log.exception("the terminal of kernel %s could not start", kernel.kernel_id)
        raise HttpProblem("service-unavailable", title="The terminal could not start.") from None
    streams.open.add(sub)
    try:
        await ws.prepare(request)
        watchdog = asyncio.get_running_loop().create_task(_abort_when_ended(request, sub))
        try:
            await bridge(ws, kernel, terminal, sub, binary_output)
        finally:
            watchdog.cancel()
    finally:
        streams.open.discard(sub)
        sub.close()
    return ws


#: How often a PTY stream checks whether its subscription has ended, and how long the bridge
#: then gets to close the WebSocket itself before the connection is aborted.
_PTY_POLL: Final = 0.25
_PTY_END_GRACE: Final = 3.0


async def _abort_when_ended(request: web.Request, sub: Subscription) -> None:
    """Abort the connection of a subscription the terminal ended, if it is still open later.

    The bridge closes the WebSocket with the subscription's code (1013 for a subscriber
    dropped for not reading, 4404, 1001). A peer that does not read never gets that close
    frame: it waits behind unread output while the bridge's send waits for room. Without
    this, such a connection stayed open as long as the peer kept pinging.
    """
    while sub.close_code is None:  # noqa: ASYNC110 (Subscription has no "ended" event to wait on)
        await asyncio.sleep(_PTY_POLL)
    await asyncio.sleep(_PTY_END_GRACE)
    transport = request.transport
    if transport is not None:
        # Even when already closing: close() waits to flush the unread output, which never is.
        log.debug("aborting a PTY stream still open %.0f s after it ended", _PTY_END_GRACE)
        transport.abort()


class _Malformed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def bridge(
    ws: web.WebSocketResponse,
    kernel: PtyKernel,
    terminal: Terminal,
    sub: Subscription,
    binary_output: bool = False,
) -> None:
    """Serve one prepared WebSocket until either side ends it; never raises.

    ``binary_output``: output frames travel as binary messages (JSON inside), as
    Backend.AI's manager sends them; the Sorna dialect sends them as text.
    """
    pump = asyncio.get_running_loop().create_task(_pump(ws, sub, binary_output))
    try:
        await _receive(ws, kernel, terminal, sub)
    except _Malformed as exc:
        await ws.close(code=exc.code, message=exc.reason.encode())
    except Exception:
        log.exception("PTY stream of a kernel failed")
        await ws.close(code=1011, message=b"internal error")
    finally:
        sub.close()  # no-op when the terminal already ended it (the pump then closes with its code)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(pump, _CLOSE_WAIT)


async def _pump(ws: web.WebSocketResponse, sub: Subscription, binary: bool) -> None:
    try:
        while (data := await sub.get()) is not None:
            frame = OutFrame.from_bytes(data).encode()
            if binary:
                await ws.send_bytes(frame.encode())
            else:
                await ws.send_str(frame)
        await ws.close(code=sub.close_code or 1000, message=sub.close_reason.encode())
    except ConnectionError:
        pass  # the client is gone; the receiving side notices too


async def _receive(
    ws: web.WebSocketResponse, kernel: PtyKernel, terminal: Terminal, sub: Subscription
) -> None:
    async for message in ws:
        if message.type is WSMsgType.BINARY:
            raise _Malformed(1003, "binary frames are not supported; send JSON text")
        if message.type is not WSMsgType.TEXT:
            return
        frame = _decode(message.data)
        try:
            if isinstance(frame, StdinFrame):
                kernel.touch()  # an active terminal keeps its kernel from idling out
                await terminal.write(frame.payload, sub)
            elif isinstance(frame, ResizeFrame):
                terminal.resize(frame.rows, frame.cols)
            elif isinstance(frame, PingFrame):
                kernel.touch()
            elif isinstance(frame, RestartFrame):
                await terminal.restart()
        except TerminalClosed:
            # The kernel is going away (the pump closes with 4404), or this subscriber was
            # dropped (1013) and its pending input discarded.
            return


def _decode(text: str) -> StdinFrame | ResizeFrame | PingFrame | RestartFrame:
    try:
        frame = decode_client_frame(text)
        if isinstance(frame, StdinFrame):
            _ = frame.payload  # validate the base64 before acting on anything
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid"}
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise _Malformed(1007, _reason(f"malformed frame: {where} {first['msg']}")) from None
    except ValueError:
        raise _Malformed(1007, "malformed frame: chars is not valid base64") from None
    return frame


def _reason(text: str) -> str:
    """A close reason within the 123 bytes a close frame allows."""
    return text.encode()[:120].decode(errors="ignore")
