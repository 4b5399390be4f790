"""The Sorna dialect's extensions for live output: ``eager`` and ``offset`` on execute, the
structured ``error``, and the execute WebSocket ``/v2/stream/kernel/{id}/execute``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from sorna_sdk._constants import API_VERSION
from sorna_sdk.auth import HMACAuth
from sorna_sdk.local import LocalGateway, RunningGateway

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    with LocalGateway.start_in_thread(flush_window=1.0) as running:
        yield running


@pytest.fixture
def api(gateway: RunningGateway) -> Iterator[httpx.Client]:
    auth = HMACAuth(gateway.access_key, gateway.secret_key, version=API_VERSION)
    with httpx.Client(base_url=gateway.endpoint, auth=auth, timeout=30) as http:
        yield http


def kernel(api: httpx.Client) -> str:
    made = api.post(
        "/v2/kernel/create",
        json={"lang": "python3", "clientSessionToken": f"streams-{time.time_ns()}"},
    )
    kernel_id: str = made.json()["kernelId"]
    return kernel_id


def ws(gateway: RunningGateway, path: str) -> ClientConnection:
    auth = HMACAuth(gateway.access_key, gateway.secret_key, version=API_VERSION)
    host = gateway.endpoint.split("://", 1)[1]
    headers = auth.signed_headers("GET", path, host, "application/octet-stream", b"")
    return connect("ws://" + host + path, additional_headers=headers, compression=None)


def execute(api: httpx.Client, kernel_id: str, **body: Any) -> dict[str, Any]:
    answer = api.post(f"/v2/kernel/{kernel_id}", json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()["result"]
    return result


def test_without_extensions_results_keep_the_2017_shape(api: httpx.Client) -> None:
    kid = kernel(api)
    result = execute(api, kid, mode="query", code="print(1)")
    assert result.keys() == {"status", "console", "options", "files"}


def test_offset_adds_run_id_and_replays(api: httpx.Client) -> None:
    kid = kernel(api)
    code = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.3)"
    answers = [execute(api, kid, mode="query", code=code, offset=0, eager=True)]
    assert answers[0].keys() == {
        "status",
        "console",
        "options",
        "files",
        "runId",
        "offset",
        "exitCode",
    }
    while answers[-1]["status"] == "continued":
        offset = answers[-1]["offset"] + len(answers[-1]["console"])
        answers.append(execute(api, kid, mode="query", code="", offset=offset, eager=True))
    assert "".join(d for a in answers for _, d in a["console"]) == "0\n1\n2\n"
    assert (answers[-1]["status"], answers[-1]["exitCode"]) == ("finished", 0)
    again = execute(api, kid, mode="query", code="", offset=1)
    assert "".join(d for _, d in again["console"]) == "1\n2\n"
    bad = api.post(f"/v2/kernel/{kid}", json={"mode": "query", "code": "", "offset": 99})
    assert bad.status_code == 400
    for wrong in ({"offset": -1}, {"offset": "1"}, {"offset": True}, {"eager": "yes"}):
        refused = api.post(f"/v2/kernel/{kid}", json={"mode": "query", "code": "", **wrong})
        assert refused.status_code == 400, wrong


def test_execute_websocket_streams_as_printed(gateway: RunningGateway, api: httpx.Client) -> None:
    kid = kernel(api)
    code = (
        "import time\nfor i in range(3):\n    print(i, time.time(), flush=True)\n"
        "    time.sleep(0.4)\nprint(input('more? '))"
    )
    with ws(gateway, f"/v2/stream/kernel/{kid}/execute") as stream:
        stream.send(json.dumps({"code": code, "mode": "query"}))
        frames, lags = [], []
        while True:
            frame = json.loads(stream.recv(timeout=10))
            frames.append(frame)
            for kind, data in frame["console"]:
                if kind == "stdout" and data[:1].isdigit():
                    for line in data.splitlines():
                        lags.append(time.time() - float(line.split()[1]))
            if frame["status"] == "waiting-input":
                stream.send("yes")
            if frame["status"] == "finished":
                break
    assert max(lags) < 0.25, lags  # each line arrives well before the next is printed
    assert [f["offset"] for f in frames] == sorted(f["offset"] for f in frames)
    assert frames[-1]["console"][-1] == ["stdout", "yes\n"]
    assert {f["runId"] for f in frames} == {frames[0]["runId"]}


def test_execute_websocket_resumes_a_run(gateway: RunningGateway, api: httpx.Client) -> None:
    kid = kernel(api)
    code = "import time\nfor i in range(4):\n    print(i, flush=True)\n    time.sleep(0.3)"
    with ws(gateway, f"/v2/stream/kernel/{kid}/execute") as stream:
        stream.send(json.dumps({"code": code, "mode": "query"}))
        first = json.loads(stream.recv(timeout=10))
    got = "".join(d for _, d in first["console"])
    offset = first["offset"] + len(first["console"])
    with ws(gateway, f"/v2/stream/kernel/{kid}/execute") as stream:
        stream.send(json.dumps({"mode": "continue", "runId": first["runId"], "offset": offset}))
        while True:
            frame = json.loads(stream.recv(timeout=10))
            assert frame["offset"] == offset
            got += "".join(d for _, d in frame["console"])
            offset += len(frame["console"])
            if frame["status"] == "finished":
                break
    assert got == "0\n1\n2\n3\n"
    with ws(gateway, f"/v2/stream/kernel/{kid}/execute") as stream:
        stream.send(json.dumps({"mode": "continue", "runId": "other", "offset": 0}))
        error = json.loads(stream.recv(timeout=10))
        assert error["status"] == "error" and "not the session's run" in error["msg"]


def test_unknown_kernels_are_refused_before_the_upgrade(
    gateway: RunningGateway, api: httpx.Client
) -> None:
    answer = api.get("/v2/stream/kernel/no-such-kernel/execute")
    assert answer.status_code == 404
    assert answer.json()["type"] == "https://api.sorna.io/probs/kernel-not-found"
