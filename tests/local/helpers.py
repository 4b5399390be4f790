"""Helpers shared by the gateway's tests: runtime result collection and reference checks."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from sorna_sdk.local._runtime.registry import LocalKernel
from sorna_sdk.local._runtime.results import RunResult

from ..conftest import data_path

PROBS = "https://api.sorna.io/probs/"
Result = RunResult


async def run(
    kernel: LocalKernel, code: str, mode: str = "query", opts: Any = None
) -> list[Result]:
    """Execute and follow ``continued`` until the run ends; every result, in order."""
    results = [await kernel.execute(mode, code, opts)]
    while results[-1].status == "continued":
        results.append(await kernel.execute(mode, "", opts))
    return results


def text(results: list[Result], kind: str = "stdout") -> str:
    """The joined console text of one kind across results."""
    return "".join(data for r in results for k, data in r.console if k == kind)


def reference(name: str, index: int = -1) -> dict[str, Any]:
    """The 2017 server's answer in one transcript: request and response."""
    path = data_path("sorna-2017-transcripts", f"{name}.json")
    exchange: dict[str, Any] = json.loads(path.read_text())["exchanges"][index]
    return exchange


def assert_like_reference(response: httpx.Response, name: str, *, title: str = "exact") -> None:
    """Same status and problem type as the 2017 server; the title "exact", as "prefix" or "any"."""
    expected = reference(name)["response"]
    assert response.status_code == expected["status"], response.text
    body, ref = response.json(), expected["body_json"]
    assert body["type"] == ref["type"]
    if title == "exact":
        assert body["title"] == ref["title"]
    elif title == "prefix":
        assert body["title"].startswith(ref["title"])


def assert_well_formed(response: httpx.Response) -> None:
    """Every answer: Content-Type, exact Content-Length, never chunked, the reference's Server.

    A 204 too says ``Content-Length: 0``, as the 2017 server did: sorna-client 0.9.8 reads
    both headers of every answer.
    """
    assert "content-type" in response.headers
    if response.request.method != "HEAD":
        assert response.headers["content-length"] == str(len(response.content))
    assert "transfer-encoding" not in response.headers
    server = dict(reference("01-hello-get-v2")["response"]["headers"])["Server"]
    assert response.headers["server"] == server
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")


@asynccontextmanager
async def deadline(seconds: float) -> AsyncIterator[None]:
    """``asyncio.timeout()`` for Python 3.10 too: raise TimeoutError when the block overruns."""
    task = asyncio.current_task()
    assert task is not None
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    handle = asyncio.get_running_loop().call_later(seconds, expire)
    try:
        yield
    except asyncio.CancelledError:
        if expired:
            raise TimeoutError(f"still running after {seconds} s") from None
        raise
    finally:
        handle.cancel()


def kernel_processes(kernel_id: str) -> list[int]:
    """Host pids of the living processes that run in a kernel's folder.

    Kernel code cannot tell its host pid under the sandbox (a PID namespace), so tests find a
    kernel's processes from outside by their working directory, ``<root>/<kernel_id>``.
    """
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        parts = cwd.split("/")
        if kernel_id in parts and state != "Z":
            found.append(int(entry))
    return found


def track_bridge_end(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """An event set when the gateway's PTY bridge of a connection returns."""
    from sorna_sdk.local._http import pty_bridge as pty_stream

    ended = asyncio.Event()
    original = pty_stream.bridge

    async def tracked(*args: Any) -> None:
        try:
            await original(*args)
        finally:
            ended.set()

    monkeypatch.setattr("sorna_sdk.local._http.pty_bridge.bridge", tracked)
    return ended
