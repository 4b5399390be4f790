"""Sans-IO retry policy (DESIGN.md §3): which failures to retry, and how long to wait."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["Failure", "RetryPolicy"]

_RETRYABLE_STATUSES = frozenset({502, 503, 504})


class Failure(Enum):
    """How an attempt failed without a response."""

    #: The connection was never made, so the request never reached the server.
    NOT_SENT = "not-sent"
    #: The request may have reached the server (read timeout, reset mid-response).
    MAYBE_SENT = "maybe-sent"


@dataclass(frozen=True)
class RetryPolicy:
    """Decide whether to try again, and after how many seconds."""

    max_retries: int = 2
    max_wait: float = 30.0
    base_delay: float = 0.25
    jitter: Callable[[float], float] = field(default=lambda delay: _quarter_jitter(delay))

    def after_failure(self, failure: Failure, *, idempotent: bool, attempt: int) -> float | None:
        """Delay before retrying a transport failure, or ``None`` to give up.

        ``attempt`` counts from 0 for the first try.
        """
        if attempt >= self.max_retries:
            return None
        if failure is Failure.MAYBE_SENT and not idempotent:
            return None
        return self._backoff(attempt)

    def after_status(
        self, status: int, retry_after: float | None, *, idempotent: bool, attempt: int
    ) -> float | None:
        """Delay before retrying an error status, or ``None`` to give up.

        ``retry_after`` is the wait the server asked for, in seconds (each dialect reads
        its own rate-limit headers: milliseconds on Sorna v2, seconds on Backend.AI).
        """
        if attempt >= self.max_retries:
            return None
        if status == 429:
            # Refused before running anything, so even an execute is safe to resend.
            reset = retry_after
            if reset is None:
                return self._backoff(attempt)
            if reset > self.max_wait:
                return None
            return reset + self.jitter(max(reset, self.base_delay))
        if status in _RETRYABLE_STATUSES and idempotent:
            return self._backoff(attempt)
        return None

    def _backoff(self, attempt: int) -> float:
        delay = min(self.base_delay * (2.0**attempt), self.max_wait)
        return min(delay + self.jitter(delay), self.max_wait)


def _quarter_jitter(delay: float) -> float:
    return random.uniform(0.0, delay / 4)
