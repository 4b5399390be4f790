"""The PTY WebSocket bridge (spec §6): client frames into a :class:`Terminal`, its output out.

Close codes sent by the gateway:

* 1000: the client closed; 1001 "gateway shutting down";
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

from sorna_sdk.local.runtime.terminal import Subscription, Terminal, TerminalClosed
from sorna_sdk.models.pty import (
    OutFrame,
    PingFrame,
    ResizeFrame,
    RestartFrame,
    StdinFrame,
    decode_client_frame,
)

__all__ = ["MAX_FRAME", "PtyKernel", "bridge"]

log = logging.getLogger(__name__)

#: Largest client message accepted (aiohttp closes with 1009 beyond it).
MAX_FRAME: Final = 1024 * 1024
_CLOSE_WAIT: Final = 15.0


class PtyKernel(Protocol):
    """What the bridge needs of a kernel."""

    def touch(self) -> None: ...


class _Malformed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def bridge(
    ws: web.WebSocketResponse, kernel: PtyKernel, terminal: Terminal, sub: Subscription
) -> None:
    """Serve one prepared WebSocket until either side ends it; never raises."""
    pump = asyncio.get_running_loop().create_task(_pump(ws, sub))
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


async def _pump(ws: web.WebSocketResponse, sub: Subscription) -> None:
    try:
        while (data := await sub.get()) is not None:
            await ws.send_str(OutFrame.from_bytes(data).encode())
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
