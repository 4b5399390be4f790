"""Per-keypair query rate limit over a fixed 15-minute window (spec §4); a log throttle."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RATE_LIMIT_WINDOW", "RateLimiter", "RateState", "Throttle"]

#: Length of one rate-limit window in seconds.
RATE_LIMIT_WINDOW = 15 * 60.0


@dataclass(frozen=True)
class RateState:
    """What the ``X-RateLimit-*`` headers report after one request."""

    allowed: bool
    limit: int
    remaining: int
    reset_ms: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_ms),
        }


class RateLimiter:
    """Counts queries per access key; a window starts with its first query."""

    def __init__(
        self,
        limit: int,
        *,
        window: float = RATE_LIMIT_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("the rate limit must be at least 1")
        self._limit = limit
        self._window = window
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}

    def hit(self, key: str) -> RateState:
        """Count one query of ``key``; ``allowed`` is false once the limit is passed."""
        start, count = self._current(key)
        count += 1
        self._windows[key] = (start, count)
        return self._state(start, count)

    def peek(self, key: str) -> RateState:
        """The state of ``key`` without counting a query (for the public hello route)."""
        start, count = self._current(key)
        return self._state(start, count)

    def _current(self, key: str) -> tuple[float, int]:
        now = self._clock()
        start, count = self._windows.get(key, (now, 0))
        if now - start >= self._window:
            start, count = now, 0
        return start, count

    def _state(self, start: float, count: int) -> RateState:
        left = max(0.0, start + self._window - self._clock())
        return RateState(
            allowed=count <= self._limit,
            limit=self._limit,
            remaining=max(0, self._limit - count),
            reset_ms=int(left * 1000),
        )


class Throttle:
    """At most one event per ``interval`` seconds passes; the rest are counted.

    For log lines that a flood would repeat (accept errors, refused connections).
    """

    def __init__(self, interval: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self._held = 0

    def allow(self) -> int | None:
        """``None`` if this event must be dropped, else how many were dropped since the last."""
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            self._held += 1
            return None
        self._last = now
        held, self._held = self._held, 0
        return held
