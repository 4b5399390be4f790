"""Success answers: JSON with an exact Content-Length, and bodiless 204s."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

__all__ = ["json_response", "no_content"]


def json_response(payload: Any, status: int = 200) -> web.Response:
    """``payload`` as ``application/json; charset=utf-8``."""
    return web.Response(
        body=json.dumps(payload).encode(),
        status=status,
        content_type="application/json",
        charset="utf-8",
    )


def no_content() -> web.Response:
    """A 204 with no body.

    sorna-client 0.9.8 reads Content-Type and Content-Length of every answer, as the 2017
    server sent them: the Content-Type is set here, and ``Content-Length: 0`` is put back
    by the connection guard (``connections._Head204Fix``) after aiohttp removes it.
    """
    return web.Response(status=204, content_type="application/octet-stream")
