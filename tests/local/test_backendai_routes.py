"""The gateway's Backend.AI dialect on the wire: raw signed requests against a real gateway,
answers compared with what backend.ai-manager 26.9.6 sent (``tests/data/backendai-transcripts``).

The SDK's own Backend.AI dialect is tested end to end in ``tests/e2e_backendai``; here the
bodies are literal, so a mistake shared by the SDK's client and server models cannot hide.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect

from sorna_sdk._archive import split_multipart_mixed
from sorna_sdk._dialects.backendai import BackendAI
from sorna_sdk.auth import HMACAuth
from sorna_sdk.local import LocalGateway, RunningGateway

from ..conftest import backendai_transcript
from .helpers import kernel_processes

pytestmark = pytest.mark.timeout(60)

V9 = "v9.20250722"
V4 = "v4.20181215"
BASE = "https://api.backend.ai/probs/"


def real(name: str, index: int = -1) -> dict[str, Any]:
    """One exchange of the real manager: request and response."""
    exchange: dict[str, Any] = backendai_transcript(name)["exchanges"][index]
    return exchange


def real_body(name: str, index: int = -1) -> Any:
    return real(name, index)["response"]["body_json"]


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    with LocalGateway.start_in_thread(max_upload_files=5, flush_window=1.0) as running:
        yield running


def client(gateway: RunningGateway, version: str = V9) -> httpx.Client:
    auth = HMACAuth(
        gateway.access_key, gateway.secret_key, version=version, policy=BackendAI(version).signing
    )
    return httpx.Client(base_url=gateway.endpoint, auth=auth, timeout=30)


@pytest.fixture
def api(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with client(gateway) as http:
        yield http


@pytest.fixture
def api_v4(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with client(gateway, V4) as http:
        yield http


def official_create(name: str, **changes: Any) -> dict[str, Any]:
    """The create body backend.ai-client 26.9.6 sent at v9 (transcript 64), renamed."""
    body: dict[str, Any] = json.loads(real("64-fake-agent-create-enqueue-only")["request"]["body"])
    body.update({"name": name, "enqueueOnly": False, "image": "python:3.11-debian12", **changes})
    return body


def new_session(api: httpx.Client, **changes: Any) -> dict[str, Any]:
    made = api.post("/session", json=official_create(f"wire-{uuid.uuid4().hex[:12]}", **changes))
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == BASE + slug
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["error_code"], str) and body["error_code"].count("_") >= 2
    return body


def run_to_end(api: httpx.Client, ref: str, code: str, inputs: tuple[str, ...] = ()) -> list[Any]:
    """Execute as the official client does; every result."""
    answers = list(inputs)
    results = [api.post(f"/session/{ref}", json={"mode": "query", "code": code}).json()]
    while True:
        result = results[-1]["result"]
        if result["status"] in ("continued", "build-finished", "clean-finished"):
            body = {"mode": "continue", "code": "", "runId": result["runId"]}
        elif result["status"] == "waiting-input":
            body = {"mode": "input", "code": answers.pop(0), "runId": result["runId"]}
        else:
            return [r["result"] for r in results]
        results.append(api.post(f"/session/{ref}", json=body).json())


def tar_names(archive: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return tar.getnames()


def stdout(results: list[Any]) -> str:
    return "".join(d for r in results for k, d in r["console"] if k == "stdout")


# ---- hello, auth, errors --------------------------------------------------------------------


def test_hello_has_the_real_keys(gateway: RunningGateway) -> None:
    answer = httpx.get(gateway.endpoint + "/")
    assert answer.status_code == 200
    assert answer.json().keys() == real_body("01-hello-official-client").keys()
    assert answer.json()["version"] == V9


def test_auth_test_answers_as_the_real_server(api: httpx.Client) -> None:
    assert api.get("/auth/test").json() == real_body("04-auth-test-official-client")
    echoed = api.post("/auth/test", json={"echo": "hello-bai-lab"})
    assert echoed.json() == real_body("05-auth-test-post-echo-official-client")
    for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert int(echoed.headers[header]) >= 0
    assert echoed.headers["X-RateLimit-Window"] == "900"


@pytest.mark.parametrize(
    ("name", "method", "path"),
    [("57-method-not-allowed", "PUT", "/auth/test"), ("56-unknown-path", "GET", "/no/such")],
)
def test_routing_errors_match_the_real_server(
    api: httpx.Client, name: str, method: str, path: str
) -> None:
    expected = real_body(name)
    body = assert_problem(
        api.request(method, path), real(name)["response"]["status"], expected["type"][len(BASE) :]
    )
    assert (body["title"], body["error_code"]) == (expected["title"], expected["error_code"])


def test_unknown_sessions_are_404_with_the_real_error_code(api: httpx.Client) -> None:
    expected = real_body("45-get-info-unknown-session")["error_code"]
    for method, path in (
        ("GET", "/session/no-such-session"),
        ("POST", "/session/no-such-session"),
        ("DELETE", "/session/00000000-0000-4000-8000-0000000000aa"),
        ("PATCH", "/kernel/no-such-session"),
        ("GET", "/session/no-such-session/files"),
        ("GET", "/events/session?sessionName=no-such-session&scope=*"),
    ):
        body = assert_problem(api.request(method, path, json={}), 404, "object-not-found")
        assert body["error_code"] == expected


# ---- create ---------------------------------------------------------------------------------


def test_create_answers_with_the_real_keys(api: httpx.Client) -> None:
    name = f"wire-{uuid.uuid4().hex[:10]}"
    made = api.post("/session", json=official_create(name))
    assert made.status_code == 201
    body = made.json()
    assert body.keys() == real_body("64-fake-agent-create-enqueue-only").keys()
    assert uuid.UUID(body["sessionId"]).version == 4
    assert (body["sessionName"], body["status"], body["created"]) == (name, "RUNNING", True)
    again = api.post("/session", json=official_create(name))
    assert again.json().keys() == real_body("65-fake-agent-create-reuse").keys()
    assert again.json()["sessionId"] == body["sessionId"]
    assert again.json()["created"] is False
    clash = api.post("/session", json=official_create(name, reuseIfExists=False))
    problem = assert_problem(clash, 400, "session-already-exists")
    real_problem = real_body("66-fake-agent-create-no-reuse")
    assert problem["title"] == real_problem["title"]
    assert problem["error_code"] == real_problem["error_code"]
    assert problem["data"] == {"existingSessionId": body["sessionId"]}


@pytest.mark.parametrize(
    "image", ["python", "python:3.11-debian12", "cr.backend.ai/stable/python:3.13-ubuntu24.04"]
)
def test_image_references_map_to_the_python_kernel(api: httpx.Client, image: str) -> None:
    session = new_session(api, image=image)
    ran = run_to_end(api, session["sessionId"], "import sys\nprint(sys.version_info[0])")
    assert stdout(ran) == "3\n"
    assert api.get(f"/session/{session['sessionId']}").json()["image"] == image


def test_an_unknown_image_is_the_real_404(api: httpx.Client) -> None:
    body = json.loads(real("40-session-create-unknown-image")["request"]["body"])
    problem = assert_problem(api.post("/session", json=body), 404, "object-not-found")
    expected = real_body("40-session-create-unknown-image")
    assert (problem["title"], problem["error_code"]) == (expected["title"], expected["error_code"])
    assert "nosuch/image:1.0" in problem["msg"]


def test_v4_create_through_kernel_names_the_session(api_v4: httpx.Client) -> None:
    body = json.loads(real("43-session-create-v4-20181215-official-client")["request"]["body"])
    body["clientSessionToken"] = name = f"wire-v4-{uuid.uuid4().hex[:8]}"
    made = api_v4.post("/kernel", json=body)
    assert made.status_code == 201, made.text
    assert made.json() == {
        "kernelId": name,
        "status": "RUNNING",
        "servicePorts": [],
        "created": True,
    }
    ran = api_v4.post(f"/kernel/{name}", json={"mode": "query", "code": "print(7)", "runId": None})
    assert ran.json()["result"]["console"] == [["stdout", "7\n"]]
    assert api_v4.delete(f"/kernel/{name}").json()["stats"]["status"] == "terminated"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"name": "abc"}, "4 to 64"),
        ({"name": "x" * 65}, "4 to 64"),
        ({"name": "-bad-start"}, "4 to 64"),
        ({"image": 3}, "image"),
        ({"reuseIfExists": "yes"}, "reuseIfExists"),
        ({"maxWaitSeconds": -1}, "maxWaitSeconds"),
        ({"type": "batch"}, "interactive"),
        ({"clusterSize": 2}, "clusterSize"),
        ({"config": []}, "config"),
        ({"config": {"environ": {"A": 1}}}, "environ"),
        ({"config": {"resources": {"cuda.device": "1"}}}, "cuda.device"),
        ({"config": {"resources": {"mem": "lots"}}}, "mem"),
        ({"config": {"mounts": ["vf1"]}}, "virtual folders"),
    ],
)
def test_bad_create_bodies_name_the_field(
    api: httpx.Client, changes: dict[str, Any], words: str
) -> None:
    problem = assert_problem(
        api.post("/session", json={**official_create("wire-bad-body"), **changes}),
        400,
        "invalid-api-params",
    )
    assert words in problem["msg"]


def test_environ_and_resources_reach_the_kernel_and_its_info(api: httpx.Client) -> None:
    config = {"environ": {"GREETING": "hej"}, "resources": {"cpu": "2", "mem": "256m"}}
    session = new_session(api, config=config)
    ref = session["sessionId"]
    ran = run_to_end(api, ref, "import os\nprint(os.environ['GREETING'])")
    assert stdout(ran) == "hej\n"
    info = api.get(f"/session/{ref}").json()
    assert info["requestedSlots"] == "{'cpu': Decimal('2'), 'mem': Decimal('268435456')}"
    assert info["environ"] == "{'GREETING': 'hej'}"
    api.delete(f"/session/{ref}")


def test_enqueue_only_answers_pending_then_the_session_starts(api: httpx.Client) -> None:
    made = api.post(
        "/session", json=official_create("wire-queued-" + uuid.uuid4().hex[:6], enqueueOnly=True)
    )
    assert made.status_code == 201
    assert made.json()["status"] == "PENDING"
    ref = made.json()["sessionId"]
    # A call naming a session still starting waits for it.
    assert api.get(f"/session/{ref}").json()["status"] == "RUNNING"
    assert stdout(run_to_end(api, ref, "print('queued')")) == "queued\n"
    api.delete(f"/session/{ref}")


# ---- info, restart, destroy -----------------------------------------------------------------


def test_info_has_the_real_keys_and_json_types(api: httpx.Client) -> None:
    session = new_session(api)
    ref = session["sessionId"]
    run_to_end(api, ref, "print(1)")
    info = api.get(f"/session/{ref}").json()
    expected = backendai_transcript("67-fake-agent-get-info")["client_view"]["returned"]
    assert info.keys() == expected.keys()
    for key in ("occupiedSlots", "occupyingSlots", "requestedSlots", "environ", "resourceOpts"):
        assert isinstance(info[key], str), key  # Python-repr strings, as the real server
    assert info["status"] == "RUNNING"
    assert info["numQueriesExecuted"] == 1
    assert int(info["lastStat"]["mem"]["current"]) > 1024 * 1024  # a real process's RSS
    assert info["creationTime"].endswith("+00:00")


def test_restart_keeps_the_session_and_destroy_reports_stats(api: httpx.Client) -> None:
    ref = new_session(api)["sessionId"]
    run_to_end(api, ref, "x = 5")
    restarted = api.patch(f"/session/{ref}")
    assert restarted.status_code == 204
    after = run_to_end(api, ref, "print('x' in globals())")
    assert stdout(after) == "False\n"
    destroyed = api.delete(f"/session/{ref}?forced=true")
    assert destroyed.status_code == 200
    assert (
        destroyed.json()["stats"]["status"] == real_body("75-fake-agent-destroy")["stats"]["status"]
    )
    gone = api.get(f"/session/{ref}")
    assert (
        assert_problem(gone, 404, "object-not-found")["error_code"]
        == real_body("77-fake-agent-get-info-after-destroy")["error_code"]
    )


# ---- execute --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["runId", "run_id"])
def test_continue_and_input_accept_either_run_id_key(api: httpx.Client, key: str) -> None:
    ref = new_session(api)["sessionId"]
    code = "import time\nprint('a', flush=True)\ntime.sleep(1.6)\nx = input('? ')\nprint(x)"
    first = api.post(f"/session/{ref}", json={"mode": "query", "code": code}).json()["result"]
    assert first["status"] == "continued"
    assert first.keys() == {"runId", "status", "exitCode", "options", "files", "console"}
    results = [first]
    while results[-1]["status"] == "continued":
        body = {"mode": "continue", "code": "", key: first["runId"]}
        results.append(api.post(f"/session/{ref}", json=body).json()["result"])
    assert results[-1]["status"] == "waiting-input"
    assert results[-1]["options"] == {"is_password": False}
    answer = {"mode": "input", "code": "typed", key: first["runId"]}
    results.append(api.post(f"/session/{ref}", json=answer).json()["result"])
    while results[-1]["status"] == "continued":
        body = {"mode": "continue", "code": "", key: first["runId"]}
        results.append(api.post(f"/session/{ref}", json=body).json()["result"])
    assert results[-1]["status"] == "finished"
    assert results[-1]["exitCode"] == 0
    assert {r["runId"] for r in results} == {first["runId"]}
    assert stdout(results) == "a\n? typed\n"
    api.delete(f"/session/{ref}")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"mode": "nope", "code": "", "runId": None}, "mode"),
        ({"mode": "continue", "code": "", "runId": None}, "runId"),
        ({"mode": "continue", "code": "", "runId": 5}, "runId"),
        ({"mode": "continue", "code": "", "runId": "not-this-run"}, "current run"),
        ({"mode": "input", "code": "x", "run_id": "abc"}, "run"),
        ({"mode": "query", "code": 1}, "code"),
        ({"mode": "batch", "options": []}, "options"),
    ],
)
def test_bad_execute_bodies_are_400_not_the_real_server_500(
    api: httpx.Client, body: dict[str, Any], words: str
) -> None:
    ref = new_session(api)["sessionId"]
    run_to_end(api, ref, "pass")
    problem = assert_problem(api.post(f"/session/{ref}", json=body), 400, "invalid-api-params")
    assert words in problem["msg"]
    api.delete(f"/session/{ref}")


def test_batch_runs_clean_build_and_exec_steps(api: httpx.Client) -> None:
    ref = new_session(api)["sessionId"]
    options = {
        "clean": "echo cleaning",
        "build": "echo building",
        "buildLog": True,
        "exec": "echo running",
    }
    first = api.post(f"/session/{ref}", json={"mode": "batch", "code": "", "options": options})
    results = [first.json()["result"]]
    while results[-1]["status"] != "finished":
        body = {"mode": "continue", "code": "", "runId": results[0]["runId"]}
        results.append(api.post(f"/session/{ref}", json=body).json()["result"])
    statuses = [r["status"] for r in results if r["status"] != "continued"]
    assert statuses == ["clean-finished", "build-finished", "finished"]
    assert stdout(results) == "cleaning\nbuilding\nrunning\n"
    api.delete(f"/session/{ref}")


def test_an_interrupted_run_finishes_with_exit_code_130(api: httpx.Client) -> None:
    ref = new_session(api)["sessionId"]
    code = "import time\nprint('go', flush=True)\ntime.sleep(30)"
    first = api.post(f"/session/{ref}", json={"mode": "query", "code": code}).json()["result"]
    assert first["status"] == "continued"
    assert api.post(f"/session/{ref}/interrupt").status_code == 204
    results = [first]
    while results[-1]["status"] == "continued":
        body = {"mode": "continue", "code": "", "runId": first["runId"]}
        results.append(api.post(f"/session/{ref}", json=body).json()["result"])
    assert (results[-1]["status"], results[-1]["exitCode"]) == ("finished", 130)
    api.delete(f"/session/{ref}")


def test_complete_route(api: httpx.Client) -> None:
    ref = new_session(api)["sessionId"]
    answer = api.post(
        f"/session/{ref}/complete", json={"code": "impo", "options": {"row": 0, "col": 4}}
    )
    assert answer.status_code == 200
    assert "import" in "".join(answer.json()["result"]["suggestions"])
    api.delete(f"/session/{ref}")


# ---- files ----------------------------------------------------------------------------------


def test_upload_files_download_and_logs(api: httpx.Client) -> None:
    ref = new_session(api)["sessionId"]
    sent = api.post(f"/session/{ref}/upload", files=[("src", ("data/a.txt", b"alpha"))])
    assert sent.status_code == 204
    run_to_end(api, ref, "open('b.txt', 'w').write('beta')\nprint('logged line')")

    for listed in (
        api.get(f"/session/{ref}/files", params={"path": "data"}),
        api.request("GET", f"/session/{ref}/files", json={"path": "/home/work/data"}),
    ):
        body = listed.json()
        assert body.keys() == {"files", "errors", "abspath"}
        assert isinstance(body["files"], str)  # JSON inside JSON, as agents send it
        entries = json.loads(body["files"])
        assert [e["filename"] for e in entries] == ["a.txt"]
        assert entries[0].keys() == {"mode", "size", "ctime", "mtime", "atime", "filename"}
        assert (entries[0]["size"], entries[0]["mode"]) == (5, "-rw-r--r--")
        assert body["abspath"] == "/home/work/data"
    missing = api.get(f"/session/{ref}/files", params={"path": "nope"}).json()
    assert json.loads(missing["files"]) == [] and "No such file" in missing["errors"]

    got = api.post(f"/session/{ref}/download", params=[("files", "b.txt"), ("files", "data")])
    assert got.status_code == 200
    parts = split_multipart_mixed(got.headers["content-type"], got.content)
    names = [sorted(tar_names(part)) for part in parts]
    assert names == [["b.txt"], ["data", "data/a.txt"]]
    single = api.post(f"/session/{ref}/download_single", params={"file": "data/a.txt"})
    assert single.content == b"alpha"
    logs = api.get(f"/session/{ref}/logs").json()
    assert "logged line" in logs["result"]["logs"]
    api.delete(f"/session/{ref}")


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "/home/work/../../etc", "a\x00b"])
def test_paths_outside_the_session_are_refused(api: httpx.Client, path: str) -> None:
    ref = new_session(api)["sessionId"]
    for response in (
        api.get(f"/session/{ref}/files", params={"path": path}),
        api.post(f"/session/{ref}/download", params={"files": path}),
        api.post(f"/session/{ref}/download_single", params={"file": path}),
    ):
        assert_problem(response, 400, "invalid-api-params")
    api.delete(f"/session/{ref}")


def test_links_planted_by_kernel_code_are_not_followed(api: httpx.Client) -> None:
    ref = new_session(api)["sessionId"]
    run_to_end(
        api,
        ref,
        "import os\nos.symlink('/etc/passwd', 'pw')\nos.symlink('/etc', 'etc')\nos.mkfifo('fifo')",
    )
    for response in (
        api.post(f"/session/{ref}/download_single", params={"file": "pw"}),
        api.post(f"/session/{ref}/download", params={"files": "etc/passwd"}),
        api.post(f"/session/{ref}/download_single", params={"file": "fifo"}),
    ):
        problem = assert_problem(response, 400, "invalid-api-params")
        assert "root:" not in problem.get("msg", "")
    listed = json.loads(api.get(f"/session/{ref}/files", params={"path": "etc"}).json()["files"])
    assert listed == []
    whole = api.post(f"/session/{ref}/download", params={"files": "."})
    names = tar_names(split_multipart_mixed(whole.headers["content-type"], whole.content)[0])
    assert "work/pw" not in names and "work/fifo" not in names
    too_many = api.post(f"/session/{ref}/download", params=[("files", "x")] * 6)
    assert "at most 5" in assert_problem(too_many, 400, "invalid-api-params")["msg"]
    api.delete(f"/session/{ref}")


# ---- cross-dialect --------------------------------------------------------------------------


def test_one_kernel_answers_in_both_dialects(gateway: RunningGateway, api: httpx.Client) -> None:
    v2 = httpx.Client(
        base_url=gateway.endpoint,
        auth=HMACAuth(gateway.access_key, gateway.secret_key, version="v2.20170315"),
    )
    with v2:
        made = v2.post(
            "/v2/kernel/create", json={"lang": "python3", "clientSessionToken": "cross-dialect-1"}
        )
        kernel_id = made.json()["kernelId"]
        v2.post(f"/v2/kernel/{kernel_id}", json={"mode": "query", "code": "shared = 41"})
        dashed = str(uuid.UUID(kernel_id))
        assert stdout(run_to_end(api, dashed, "print(shared + 1)")) == "42\n"
        assert stdout(run_to_end(api, "cross-dialect-1", "print(shared)")) == "41\n"
        session = new_session(api)
        answer = v2.post(
            f"/v2/kernel/{session['sessionId']}", json={"mode": "query", "code": "print(2)"}
        )
        assert answer.json()["result"]["console"] == [["stdout", "2\n"]]
        v2.delete(f"/v2/kernel/{kernel_id}")
        api.delete(f"/session/{session['sessionId']}")


# ---- streams --------------------------------------------------------------------------------


def _ws(gateway: RunningGateway, path: str) -> Any:
    auth = HMACAuth(
        gateway.access_key, gateway.secret_key, version=V9, policy=BackendAI(V9).signing
    )
    host = gateway.endpoint.split("://", 1)[1]
    headers = auth.signed_headers("GET", path, host, "application/octet-stream", b"")
    return connect("ws://" + host + path, additional_headers=headers, compression=None)


def test_execute_websocket_frames_and_input(gateway: RunningGateway, api: httpx.Client) -> None:
    ref = new_session(api)["sessionId"]
    with _ws(gateway, f"/stream/session/{ref}/execute") as ws:
        ws.send(json.dumps({"code": "print(input('name? '))", "mode": "query", "options": {}}))
        frames = [json.loads(ws.recv(timeout=20))]
        while frames[-1]["status"] != "finished":
            if frames[-1]["status"] == "waiting-input":
                ws.send("ada")
            frames.append(json.loads(ws.recv(timeout=20)))
        # The real server's keys, plus this gateway's runId and offset (for resuming).
        real_keys = {"status", "console", "exitCode", "options", "files"}
        assert frames[0].keys() == real_keys | {"runId", "offset"}
        assert "waiting-input" in [f["status"] for f in frames]
        assert "".join(d for f in frames for k, d in f["console"] if k == "stdout") == (
            "name? ada\n"
        )
    with _ws(gateway, f"/stream/session/{ref}/execute") as ws:
        ws.send(json.dumps({"code": "", "mode": "complete"}))
        error = json.loads(ws.recv(timeout=20))
        assert error["status"] == "error" and "mode" in error["msg"]
    busy = api.post(f"/session/{ref}", json={"mode": "query", "code": "import time\ntime.sleep(5)"})
    assert busy.json()["result"]["status"] == "continued"
    began = time.monotonic()
    with _ws(gateway, f"/stream/session/{ref}/execute") as ws:
        ws.send(json.dumps({"code": "print(1)", "mode": "query"}))
        error = json.loads(ws.recv(timeout=20))
        assert error["status"] == "error" and "running another program" in error["msg"]
        with pytest.raises(ConnectionClosedOK):
            ws.recv(timeout=5)
    assert time.monotonic() - began < 3
    api.delete(f"/session/{ref}")


def test_pty_websocket_sends_binary_frames(gateway: RunningGateway, api: httpx.Client) -> None:
    ref = new_session(api)["sessionId"]
    with _ws(gateway, f"/stream/session/{ref}/pty") as ws:
        chars = b"echo pty-$((6*7))\n"
        ws.send(json.dumps({"type": "stdin", "chars": base64.b64encode(chars).decode()}))
        seen = b""
        deadline = time.monotonic() + 15
        while b"pty-42" not in seen and time.monotonic() < deadline:
            frame = ws.recv(timeout=15)
            assert isinstance(frame, bytes)  # Backend.AI's server frames are binary
            seen += base64.b64decode(json.loads(frame)["data"])
        assert b"pty-42" in seen
    api.delete(f"/session/{ref}")


def test_session_events_over_sse(gateway: RunningGateway, api: httpx.Client) -> None:
    session = new_session(api)
    name, ref = session["sessionName"], session["sessionId"]
    events: list[tuple[str, dict[str, Any]]] = []
    subscribed = threading.Event()

    def listen() -> None:
        with (
            client(gateway) as http,
            http.stream(
                "GET", "/events/session", params={"sessionName": name, "scope": "*"}
            ) as stream,
        ):
            assert stream.headers["content-type"].startswith("text/event-stream")
            subscribed.set()
            event = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: "):
                    events.append((event, json.loads(line[len("data: ") :])))
                    if event == "session_terminated":
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert subscribed.wait(10)
    api.delete(f"/session/{ref}")
    listener.join(15)
    names = [e for e, _ in events]
    assert names == [
        "kernel_terminating",
        "session_terminating",
        "kernel_terminated",
        "session_terminated",
    ]
    real_data = json.loads(
        backendai_transcript("73-fake-agent-events")["client_view"]["returned"]["events"][0]["data"]
    )
    session_data = dict(events)["session_terminated"]
    assert session_data.keys() == real_data.keys()
    assert (session_data["sessionId"], session_data["sessionName"]) == (ref, name)
    assert session_data["ownerAccessKey"] == gateway.access_key


def test_a_gateway_stopped_during_a_queued_create_leaves_nothing() -> None:
    running = LocalGateway.start_in_thread(pool_size=0)
    try:
        with client(running) as http:
            made = http.post("/session", json=official_create("wire-stop-early", enqueueOnly=True))
            assert made.json()["status"] == "PENDING"
            kernel_id = uuid.UUID(made.json()["sessionId"]).hex
    finally:
        running.stop()
    assert kernel_processes(kernel_id) == []


def test_a_run_outlives_its_stream_and_resumes_from_its_offset(
    gateway: RunningGateway, api: httpx.Client
) -> None:
    ref = new_session(api)["sessionId"]
    code = "import time\nfor i in range(4):\n    print('line', i, flush=True)\n    time.sleep(0.4)"
    with _ws(gateway, f"/stream/session/{ref}/execute") as ws:
        ws.send(json.dumps({"code": code, "mode": "query"}))
        first = json.loads(ws.recv(timeout=10))
    assert first["console"][0] == ["stdout", "line 0\n"] and first["offset"] == 0
    time.sleep(1.8)  # the run ends meanwhile, unwatched
    body = {"mode": "continue", "code": "", "runId": first["runId"], "offset": 1}
    results = [api.post(f"/session/{ref}", json=body).json()["result"]]
    while results[-1]["status"] == "continued":
        body["offset"] = results[-1]["offset"] + len(results[-1]["console"])
        results.append(api.post(f"/session/{ref}", json=body).json()["result"])
    assert results[0]["offset"] == 1
    assert stdout(results) == "line 1\nline 2\nline 3\n"  # nothing lost, nothing repeated
    assert results[-1]["status"] == "finished"
    api.delete(f"/session/{ref}")


def test_a_stream_left_unresumed_is_interrupted_after_the_grace() -> None:
    with LocalGateway.start_in_thread(resume_grace=0.5) as running, client(running) as api:
        ref = new_session(api)["sessionId"]
        with _ws(running, f"/stream/session/{ref}/execute") as ws:
            ws.send(json.dumps({"code": "import time\ntime.sleep(30)", "mode": "query"}))
        deadline = time.monotonic() + 10
        while True:
            answer = api.post(f"/session/{ref}", json={"mode": "query", "code": "print('free')"})
            if answer.status_code != 409 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert answer.status_code == 200, answer.text
        assert answer.json()["result"]["console"] == [["stdout", "free\n"]]
        with (
            client(running) as http,
            http.stream(
                "GET", "/events/session", params={"sessionName": new_session(api)["sessionName"]}
            ) as stream,
        ):
            assert stream.status_code == 200
        assert httpx.get(running.endpoint + "/").status_code == 200


def test_events_of_all_sessions_show_creation(gateway: RunningGateway, api: httpx.Client) -> None:
    name = f"wire-born-{uuid.uuid4().hex[:8]}"
    seen: list[tuple[str, dict[str, Any]]] = []
    subscribed = threading.Event()

    def listen() -> None:
        with (
            client(gateway) as http,
            http.stream("GET", "/events/session", params={"scope": "session"}) as stream,
        ):
            subscribed.set()
            event = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: "):
                    data = json.loads(line[len("data: ") :])
                    if data["sessionName"] == name:
                        seen.append((event, data))
                    if event == "session_started" and data["sessionName"] == name:
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert subscribed.wait(10)
    made = api.post("/session", json=official_create(name)).json()
    listener.join(15)
    assert [event for event, _ in seen] == ["session_enqueued", "session_started"]
    assert {data["sessionId"] for _, data in seen} == {made["sessionId"]}
    api.delete(f"/session/{made['sessionId']}")
