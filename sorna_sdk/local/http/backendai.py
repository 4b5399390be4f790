"""The Backend.AI dialect (API v4.20181215 ... v9.20250722): routes, bodies, answers."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..._dialects.backendai import NEWEST
from ..._version import __version__
from .responses import json_response
from .runtime_api import Kernels

__all__ = ["BackendAIRoutes"]


class BackendAIRoutes:
    """The route handlers of the Backend.AI dialect."""

    def __init__(
        self,
        kernels: Kernels,
        *,
        concurrency_limit: int,
        max_upload_files: int,
        max_upload_bytes: int,
        pty: Any,
    ) -> None:
        self.kernels = kernels
        self.concurrency_limit = concurrency_limit
        self.max_upload_files = max_upload_files
        self.max_upload_bytes = max_upload_bytes
        self._pty = pty

    def add_to(self, router: web.UrlDispatcher) -> None:
        """Register the routes (``/session`` from v5, ``/kernel`` up to v4)."""
        router.add_get("/", self.hello, allow_head=False)

    @staticmethod
    def is_hello(path: str) -> bool:
        return path == "/"

    async def hello(self, request: web.Request) -> web.StreamResponse:
        return json_response({"version": NEWEST, "manager": f"sorna-sdk {__version__}"})
