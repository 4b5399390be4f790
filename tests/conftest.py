"""Shared fixtures: the spec folder, literal transcripts, and a MockTransport server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
SPEC = SHARED / "spec"


def spec_path(*parts: str) -> Path:
    """A file of the shared spec folder; fails loudly if CI lost the folder."""
    path = SPEC.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"missing {path}: the shared/ folder must sit beside the repository")
    return path


def transcript(name: str) -> dict[str, Any]:
    """One reference transcript recorded from the 2017 server and client."""
    data: dict[str, Any] = json.loads(spec_path("reference-transcripts", name).read_text())
    return data


def transcript_response(name: str, index: int = -1) -> dict[str, Any]:
    """The response of a transcript's exchange: status, headers (as a dict) and body bytes."""
    response = transcript(name)["exchanges"][index]["response"]
    return {
        "status": response["status"],
        "headers": dict(response["headers"]),
        "body": response["body"].encode(),
    }
