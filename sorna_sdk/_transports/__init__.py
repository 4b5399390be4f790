"""HTTP transports behind the sessions, and how their failures are classified.

``AsyncSession`` runs on an aiohttp-backed httpx transport when aiohttp is installed
(``pip install 'sorna-sdk[aiohttp]'``, part of ``[local]``): at 50 concurrent calls
httpx's own async pool is many times slower than aiohttp's. The httpx API stays: the
session still owns an ``httpx.AsyncClient``, and a ``transport=`` or ``http_client=`` given
by the caller wins.

This module is imported by :mod:`sorna_sdk.session`; it imports aiohttp only when a
transport is built, never at ``import sorna_sdk``.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import TYPE_CHECKING

import httpx

from .._retry import Failure

if TYPE_CHECKING:
    from ._aiohttp import AiohttpTransport

__all__ = ["aiohttp_available", "classify", "default_async_transport"]

_aiohttp_found: bool | None = None


def aiohttp_available() -> bool:
    """Whether aiohttp can be imported (looked up once, without importing it)."""
    global _aiohttp_found
    if _aiohttp_found is None:
        _aiohttp_found = "aiohttp" in sys.modules or importlib.util.find_spec("aiohttp") is not None
    return _aiohttp_found


def default_async_transport() -> AiohttpTransport | None:
    """The transport an ``AsyncSession`` builds its client on; ``None``: httpx's own pool."""
    if not aiohttp_available():
        return None
    from ._aiohttp import AiohttpTransport

    return AiohttpTransport()


def classify(exc: httpx.TransportError) -> Failure:
    """Whether a failed attempt may have reached the server.

    Only a failure to connect proves the request was never sent. httpx's names are not
    trusted alone: a transport that chains its backend's exception is judged by that
    cause, so a connection dropped after the request was written counts as "maybe sent"
    even where a transport reports it as ``ConnectTimeout`` (httpx-aiohttp maps every
    ``aiohttp.ClientConnectionError``, ``ServerDisconnectedError`` included, to it).
    """
    if not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return Failure.MAYBE_SENT
    if "aiohttp" in sys.modules:
        from ._aiohttp import cause_verdict

        cause = exc.__cause__  # explicit chaining only: raise ... from backend_error
        while cause is not None:
            verdict = cause_verdict(cause)
            if verdict is not None:
                return verdict
            cause = cause.__cause__
    return Failure.NOT_SENT
