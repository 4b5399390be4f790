"""What each entry point loads: the WebSocket stack, asyncio, the tar reader and the SDK
itself load when a feature needs them, not at import (``make bench`` row (g) times it)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Modules an application that only runs code over HTTP never needs at import.
DEFERRED = ("websockets.asyncio", "websockets.sync", "asyncio", "tarfile", "sorna_sdk.live")


def loaded_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after ``statement``."""
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out))


def under(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


def test_import_sorna_sdk_loads_only_its_version() -> None:
    loaded = under(loaded_after("import sorna_sdk"), ("sorna_sdk", "pydantic", "httpx"))
    assert loaded == ["sorna_sdk", "sorna_sdk._version"]


@pytest.mark.parametrize("name", ["Kernel", "AsyncKernel", "Session"])
def test_a_kernel_handle_defers_websockets_asyncio_and_tar(name: str) -> None:
    assert under(loaded_after(f"from sorna_sdk import {name}"), DEFERRED) == []


def test_the_command_line_loads_the_sdk_only_to_run_a_command() -> None:
    loaded = loaded_after("import sorna_sdk.cli")
    assert under(loaded, ("pydantic", "httpx", "sorna_sdk.kernels", "sorna_sdk.session")) == []


def test_a_websocket_run_loads_what_it_needs() -> None:
    # The deferred imports resolve: the names a live run and a terminal use import cleanly.
    loaded = loaded_after(
        "from sorna_sdk import Kernel; import sorna_sdk.live, sorna_sdk.pty, sorna_sdk._ws"
    )
    assert {"websockets.asyncio.client", "websockets.sync.client"} <= loaded
