"""Fixtures of the Backend.AI end-to-end tests: one real gateway on loopback for the folder,
and clients of its Backend.AI dialect at the newest and the oldest API version."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any, Final

import httpx
import pytest

from sorna_sdk import AsyncSession, Session
from sorna_sdk._dialects import BackendAI
from sorna_sdk._problems import BACKENDAI_BASE
from sorna_sdk.auth import HMACAuth
from sorna_sdk.local import RunningGateway

from ..e2e.conftest import running_gateway

NEWEST: Final = "v9.20250722"
OLDEST: Final = "v4.20181215"
#: The two route families: ``/session/{uuid}`` (v5 and later) and ``/kernel/{id}`` (v4).
VERSIONS: Final = (NEWEST, OLDEST)
#: Short, so that a program of a few seconds comes back ``continued`` several times.
FLUSH_WINDOW: Final = 0.5


@pytest.fixture(scope="package")
def gateway() -> Iterator[RunningGateway]:
    """The gateway every test of this folder shares (each test makes its own sessions)."""
    with running_gateway(flush_window=FLUSH_WINDOW) as running:
        yield running


@pytest.fixture(autouse=True)
def no_server_errors(no_gateway_errors: None) -> None:
    """Every test here fails if the gateway logged an error (it logs one for any 500)."""


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    """The Backend.AI API version a test speaks."""
    return str(request.param)


@pytest.fixture
def session(gateway: RunningGateway, version: str) -> Iterator[Session]:
    """A synchronous session speaking ``version`` to the gateway."""
    with Session(gateway.config(version=version)) as opened:
        yield opened


@pytest.fixture
def newest(gateway: RunningGateway) -> Iterator[Session]:
    """A synchronous session speaking the newest version (for what only v5+ routes have)."""
    with Session(gateway.config(version=NEWEST)) as opened:
        yield opened


@pytest.fixture
async def async_session(gateway: RunningGateway, version: str) -> AsyncIterator[AsyncSession]:
    """An asynchronous session speaking ``version`` to the gateway."""
    async with AsyncSession(gateway.config(version=version)) as opened:
        yield opened


def unique(prefix: str) -> str:
    """A fresh session name (4-64 characters, as Backend.AI wants)."""
    return f"{prefix}-{secrets.token_hex(4)}"


def noun(version: str) -> str:
    """The route noun of a version: ``kernel`` up to v4, ``session`` from v5."""
    return "kernel" if version.startswith("v4.") else "session"


def signed_client(gateway: RunningGateway, version: str = NEWEST) -> httpx.Client:
    """An httpx client that signs as a Backend.AI client does (the SDK's own signer)."""
    auth = HMACAuth(
        gateway.access_key,
        gateway.secret_key,
        version=version,
        policy=BackendAI(version).signing,
    )
    return httpx.Client(base_url=gateway.endpoint, auth=auth, timeout=30)


def assert_problem(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    """A well-formed Backend.AI error answer: 4xx, exact length, problem+json with
    ``type``, ``title`` and ``error_code``; returns the body."""
    where = f"{response.request.method} {response.request.url.raw_path!r}"
    assert 400 <= response.status_code < 500, (where, response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, (where, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json"), where
    assert response.headers["content-length"] == str(len(response.content)), where
    body = response.json()
    assert isinstance(body, dict), (where, body)
    assert isinstance(body.get("type"), str) and body["type"].startswith(BACKENDAI_BASE), body
    assert isinstance(body.get("title"), str) and body["title"], body
    assert isinstance(body.get("error_code"), str) and body["error_code"], body
    assert "msg" not in body or isinstance(body["msg"], str), body
    return body


class Findings:
    """Checks many answers and reports every one that is wrong at once, not just the first."""

    def __init__(self) -> None:
        self.wrong: list[str] = []

    def problem(
        self, response: httpx.Response, status: int | None = None, what: str = ""
    ) -> dict[str, Any] | None:
        """The problem body if ``response`` is a well-formed error (of ``status``), else noted."""
        try:
            return assert_problem(response, status)
        except (AssertionError, ValueError, KeyError):
            expected = f"expected {status}" if status else "expected a 4xx problem"
            self.wrong.append(
                f"{what or response.request.url}: {expected}, got {response.status_code} "
                f"{response.headers.get('content-type')} {response.content[:160]!r}"
            )
            return None

    def check(self) -> None:
        if self.wrong:
            pytest.fail(f"{len(self.wrong)} wrong answers:\n" + "\n".join(self.wrong))
