"""Serving an application on a socket: aiohttp's runner behind the connection guard."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from .connections import ConnectionGuard

__all__ = ["HttpListener"]


class HttpListener:
    """One listening socket for one application (started, then closed once)."""

    def __init__(self, app: web.Application, guard: ConnectionGuard) -> None:
        self._app = app
        self._guard = guard
        self._runner: web.AppRunner | None = None
        self._server: asyncio.base_events.Server | None = None

    async def start(
        self,
        host: str,
        port: int,
        *,
        shutdown_timeout: float,
        keepalive_timeout: float,
        access_log: bool,
        backlog: int,
    ) -> int:
        """Listen on ``host:port``; return the bound port."""
        self._runner = runner = web.AppRunner(
            self._app,
            handle_signals=False,
            shutdown_timeout=shutdown_timeout,
            access_log=logging.getLogger("aiohttp.access") if access_log else None,
            keepalive_timeout=keepalive_timeout,
            # A client that went away (Ctrl-C in `sorna run`) must not have its execute
            # collect the output the next call is waiting for; the runtime is cancel-safe.
            handler_cancellation=True,
        )
        await runner.setup()
        server = runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        # Our own listener rather than a TCPSite: its protocol factory is the guard's.
        self._server = await loop.create_server(
            self._guard.protocol_factory(server), host, port, backlog=backlog
        )
        sockets: Any = self._server.sockets
        return int(sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop accepting, then end the open connections and the application."""
        server, self._server = self._server, None
        runner, self._runner = self._runner, None
        if server is not None:
            server.close()  # no new connections; runner.cleanup() ends the open ones
        if runner is not None:
            await runner.cleanup()
