"""End-to-end fixtures: real gateways on loopback with settings chosen per test module."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from sorna_sdk import Session
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
