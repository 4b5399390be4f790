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
    """A 204: no body, and (RFC 9110 §8.6) no Content-Length either."""
    return web.Response(status=204)
