"""Shared fixtures: the test data (copied from the spec), literal transcripts."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .fakes import ScriptedServer

#: Copies of the spec's signature vectors and of the transcripts recorded from the real 2017
#: server and from backend.ai-manager 26.9.6 (tests/data/README.md says where they came from).
DATA = Path(__file__).resolve().parent / "data"


def data_path(*parts: str) -> Path:
    """A file of tests/data; fails loudly if it is missing."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"missing test data {path}")
    return path


def transcript(name: str) -> dict[str, Any]:
    """One reference transcript recorded from the 2017 server and client."""
    data: dict[str, Any] = json.loads(data_path("sorna-2017-transcripts", name).read_text())
    return data


def backendai_transcript(name: str) -> dict[str, Any]:
    """One transcript recorded from backend.ai-manager 26.9.6 and backend.ai-client 26.9.6."""
    if not name.endswith(".json"):
        name += ".json"
    data: dict[str, Any] = json.loads(data_path("backendai-transcripts", name).read_text())
    return data


def transcript_response(name: str, index: int = -1) -> dict[str, Any]:
    """The response of a transcript's exchange: status, headers (as a dict) and body bytes."""
    response = transcript(name)["exchanges"][index]["response"]
    return {
        "status": response["status"],
        "headers": dict(response["headers"]),
        "body": response["body"].encode(),
    }


@pytest.fixture(params=["sync", "async"])
def front(request: pytest.FixtureRequest) -> str:
    """Which twin a test drives: ``Kernel``/``Session`` or their async counterparts."""
    return str(request.param)


@pytest.fixture
def server() -> ScriptedServer:
    """A scripted MockTransport server for unit tests of exact wire bytes."""
    return ScriptedServer()


@pytest.fixture
def no_gateway_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test if the local gateway logged an error (it logs one for every 500)."""
    caplog.set_level(logging.ERROR, logger="sorna_sdk.local")
    yield
    errors = [r for r in caplog.records if r.name.startswith("sorna_sdk.local")]
    assert not errors, [r.getMessage() for r in errors]
