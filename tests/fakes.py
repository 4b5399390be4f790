"""A scripted httpx.MockTransport for unit tests of exact wire bytes (both fronts)."""

from __future__ import annotations

import inspect
import json
from collections import deque
from collections.abc import Awaitable
from datetime import datetime, timezone
from typing import Any, TypeVar

import httpx

from sorna_sdk import APIConfig, AsyncSession, Session

T = TypeVar("T")

ACCESS_KEY = "AKIATESTKEY0000000"
SECRET_KEY = "unit-test-secret-do-not-leak-0123456789"
ENDPOINT = "http://127.0.0.1:8081"
FIXED_DATE = datetime(2026, 11, 25, 8, 0, 0, tzinfo=timezone.utc)


def config(**changes: Any) -> APIConfig:
    values: dict[str, Any] = {
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "endpoint": ENDPOINT,
        "max_retry_wait": 0.05,
    }
    values.update(changes)
    return APIConfig(**values)


class ScriptedServer:
    """Answers requests with queued responses and records what it received."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._replies: deque[httpx.Response | Exception] = deque()

    def reply(
        self,
        status: int = 200,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> ScriptedServer:
        content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        all_headers = {"Content-Type": content_type, **(headers or {})}
        self._replies.append(httpx.Response(status, headers=all_headers, content=content))
        return self

    def fail(self, exc: Exception) -> ScriptedServer:
        self._replies.append(exc)
        return self

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if not self._replies:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        reply = self._replies.popleft()
        if isinstance(reply, Exception):
            raise reply
        return reply

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def sync_session(self, **changes: Any) -> Session:
        return Session(config(**changes), transport=httpx.MockTransport(self), clock=_fixed)

    def async_session(self, **changes: Any) -> AsyncSession:
        return AsyncSession(config(**changes), transport=httpx.MockTransport(self), clock=_fixed)


def _fixed() -> datetime:
    return FIXED_DATE


async def settle(value: T | Awaitable[T]) -> T:
    """The value of a sync call, or the awaited result of an async one (for twin tests)."""
    if inspect.isawaitable(value):
        return await value
    return value
