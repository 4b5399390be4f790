"""Session lifecycle events: the registry publishes them, event streams subscribe.

Names follow Backend.AI's (``session_enqueued``, ``session_started``, ``session_terminating``,
``session_terminated``, ``session_cancelled``); a subscriber that does not keep up loses its
oldest events, never the gateway's memory.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

__all__ = ["EventHub", "EventName", "LifecycleEvent", "Subscription"]

EventName: TypeAlias = Literal[
    "session_enqueued",
    "session_started",
    "session_terminating",
    "session_terminated",
    "session_cancelled",
]
#: Events a subscriber may have pending before its oldest are dropped.
MAX_PENDING: Final = 256


@dataclass(frozen=True)
class LifecycleEvent:
    """One step in a session's life."""

    name: EventName
    kernel_id: str
    owner: str
    session_name: str
    reason: str = ""
    exit_code: int | None = None
    at: float = 0.0  # seconds since the epoch


class Subscription:
    """The events of one owner, as they happen; ``None`` from :meth:`get` once ended."""

    def __init__(self, hub: EventHub, owner: str) -> None:
        self.owner = owner
        self._hub = hub
        self._queue: asyncio.Queue[LifecycleEvent | None] = asyncio.Queue(MAX_PENDING + 1)
        self.dropped: int = 0

    async def get(self) -> LifecycleEvent | None:
        return await self._queue.get()

    def put(self, event: LifecycleEvent | None) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    def close(self) -> None:
        self._hub.unsubscribe(self)


class EventHub:
    """Fans lifecycle events out to the subscriptions of their owner."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._closed = False

    def subscribe(self, owner: str) -> Subscription:
        sub = Subscription(self, owner)
        if self._closed:
            sub.put(None)
        else:
            self._subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscriptions.discard(sub)

    def publish(
        self,
        name: EventName,
        *,
        kernel_id: str,
        owner: str,
        session_name: str,
        reason: str = "",
        exit_code: int | None = None,
    ) -> None:
        event = LifecycleEvent(name, kernel_id, owner, session_name, reason, exit_code, time.time())
        for sub in list(self._subscriptions):
            if sub.owner == owner:
                sub.put(event)

    def close(self) -> None:
        """End every subscription (the gateway is closing)."""
        self._closed = True
        for sub in list(self._subscriptions):
            sub.put(None)
        self._subscriptions.clear()
