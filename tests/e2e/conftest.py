"""End-to-end fixtures: real gateways on loopback with settings chosen per test module."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from sorna_sdk import AsyncKernel, Session
from sorna_sdk.local import LocalGateway, RunningGateway


@contextmanager
def running_gateway(**settings: Any) -> Iterator[RunningGateway]:
    """A gateway in a thread of its own, stopped (kernels ended) on exit."""
    gateway = LocalGateway.start_in_thread(**settings)
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def start_gateway() -> Callable[..., AbstractContextManager[RunningGateway]]:
    return running_gateway


@contextmanager
def session_on(gateway: RunningGateway, **changes: Any) -> Iterator[Session]:
    with Session(gateway.config(**changes)) as session:
        yield session


async def assert_run_at_once(kernels: Sequence[AsyncKernel], sleep: float, limit: float) -> None:
    """Each kernel sleeps ``sleep`` s then prints i*i; all together within ``limit`` s.

    The kernels are destroyed afterwards, whatever happened.
    """
    try:
        start = time.monotonic()
        results = await asyncio.gather(
            *(
                k.run(f"import time\ntime.sleep({sleep})\nprint({i} * {i})")
                for i, k in enumerate(kernels)
            )
        )
        elapsed = time.monotonic() - start
        assert [r.stdout for r in results] == [f"{i * i}\n" for i in range(len(kernels))]
        assert elapsed < limit, (
            f"{len(kernels)} sleeping kernels took {elapsed:.1f} s: they did not run at once"
        )
    finally:
        await asyncio.gather(*(k.destroy() for k in kernels))
