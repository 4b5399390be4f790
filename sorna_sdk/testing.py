"""pytest plugin: a real local Sorna gateway for your tests (``pip install 'sorna-sdk[local]'``).

Registered through the ``pytest11`` entry point, so the fixtures are available
as soon as ``sorna-sdk`` is installed:

- ``sorna_gateway`` (session): a :class:`~sorna_sdk.local.RunningGateway` on a free
  loopback port, with a temporary kernel root.
- ``sorna_config`` (session): the :class:`~sorna_sdk.APIConfig` to reach it.
- ``sorna_session``: a :class:`~sorna_sdk.Session` for it, closed after the test.
- ``sorna_async_session``: an :class:`~sorna_sdk.AsyncSession`, closed after the test
  (needs ``pytest-asyncio``).

Nothing here imports aiohttp until a fixture is used: users without the
``[local]`` extra get the plugin loaded without cost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .config import APIConfig
    from .local import RunningGateway
    from .session import AsyncSession, Session

__all__ = ["sorna_async_session", "sorna_config", "sorna_gateway", "sorna_session"]


@pytest.fixture(scope="session")
def sorna_gateway() -> Iterator[RunningGateway]:
    """A local gateway on 127.0.0.1 and a free port, for the whole test session."""
    try:
        from .local import LocalGateway
    except ImportError as exc:
        pytest.fail(str(exc), pytrace=False)
    gateway = LocalGateway.start_in_thread(host="127.0.0.1", port=0)
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(scope="session")
def sorna_config(sorna_gateway: RunningGateway) -> APIConfig:
    """The client configuration that reaches ``sorna_gateway``."""
    return sorna_gateway.config()


@pytest.fixture
def sorna_session(sorna_config: APIConfig) -> Iterator[Session]:
    """A synchronous session on ``sorna_gateway``, closed after the test."""
    from .session import Session

    with Session(sorna_config) as session:
        yield session


async def _async_session(sorna_config: APIConfig) -> AsyncIterator[AsyncSession]:
    """An asynchronous session on ``sorna_gateway``, closed after the test."""
    from .session import AsyncSession

    async with AsyncSession(sorna_config) as session:
        yield session


def _async_fixture() -> Any:
    try:
        import pytest_asyncio
    except ImportError:

        @pytest.fixture
        def sorna_async_session() -> None:
            pytest.fail("sorna_async_session needs pytest-asyncio installed", pytrace=False)

        return sorna_async_session
    return pytest_asyncio.fixture(_async_session, name="sorna_async_session")


#: Any: a pytest-asyncio fixture (or, without pytest-asyncio, one that fails the test).
sorna_async_session: Any = _async_fixture()
