"""The gateway's routes (spec §5) with real kernels, limits, and errors as problem+json."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sorna_sdk._constants import API_VERSION
from sorna_sdk.auth import HMACAuth
from sorna_sdk.local import LocalGateway, RunningGateway

from .helpers import PROBS, assert_like_reference, assert_well_formed, reference


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    with LocalGateway.start_in_thread(max_upload_files=3, max_upload_bytes=1000) as running:
        yield running


def signed_client(gateway: RunningGateway) -> httpx.Client:
    auth = HMACAuth(gateway.access_key, gateway.secret_key, version=API_VERSION)
    return httpx.Client(
        base_url=gateway.endpoint,
        auth=auth,
        timeout=30,
        event_hooks={"response": [lambda r: r.read() and None, assert_well_formed]},
    )


@pytest.fixture
def api(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with signed_client(gateway) as http:
        yield http


def create(api: httpx.Client, token: str | None = None, lang: str = "python3") -> httpx.Response:
    token = token or f"test-{uuid.uuid4().hex}"
    return api.post("/v2/kernel/create", json={"lang": lang, "clientSessionToken": token})


def raw_post(api: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return api.post(path, content=body, headers={"Content-Type": "application/json"})


def test_kernel_lifecycle(api: httpx.Client) -> None:
    token = f"life-{uuid.uuid4().hex}"
    made = create(api, token)
    assert made.status_code == 201
    kernel_id = made.json()["kernelId"]
    assert made.json()["created"] is True
    again = create(api, token)
    assert again.status_code == 201
    assert again.json() == {"kernelId": kernel_id, "created": False}

    ran = api.post(f"/v2/kernel/{kernel_id}", json={"mode": "query", "code": "x = 6*7\nprint(x)"})
    assert ran.status_code == 200
    result = ran.json()["result"]
    assert result["status"] == "finished"
    assert result["console"] == [["stdout", "42\n"]]

    info = api.get(f"/v2/kernel/{kernel_id}")
    assert info.status_code == 200
    assert info.json()["lang"] == "python3"
    assert info.json()["numQueriesExecuted"] >= 1

    restarted = api.patch(f"/v2/kernel/{kernel_id}")
    assert restarted.status_code == 204
    assert restarted.headers["content-length"] == "0"
    assert restarted.content == b""
    gone = api.post(f"/v2/kernel/{kernel_id}", json={"mode": "query", "code": "print(x)"})
    assert "NameError" in str(gone.json()["result"]["console"])

    destroyed = api.delete(f"/v2/kernel/{kernel_id}")
    assert destroyed.status_code == 204
    assert destroyed.headers["content-length"] == "0"
    assert api.get(f"/v2/kernel/{kernel_id}").status_code == 404


@pytest.mark.parametrize(
    ("method", "suffix", "body", "scenario"),
    [
        ("GET", "", None, "31-get-info-unknown-kernel"),
        ("DELETE", "", None, "32-destroy-unknown-kernel"),
        ("POST", "", {"mode": "query", "code": "print(1)"}, "33-execute-unknown-kernel"),
        ("PATCH", "", None, "34-restart-unknown-kernel"),
        ("POST", "/upload", None, "31-get-info-unknown-kernel"),
    ],
)
def test_unknown_kernel(
    api: httpx.Client, method: str, suffix: str, body: Any, scenario: str
) -> None:
    response = api.request(method, f"/v2/kernel/{uuid.uuid4().hex}{suffix}", json=body)
    # Titles are the runtime's own wording; clients branch on the type.
    assert_like_reference(response, scenario, title="any")


def test_malformed_json_is_a_400_not_a_500(api: httpx.Client) -> None:
    # The 2017 server answered 500 to both (transcripts 26 and 35).
    for path, body in [
        ("/v2/kernel/create", b'{"lang": '),
        (f"/v2/kernel/{uuid.uuid4().hex}", b"{oops"),
    ]:
        response = raw_post(api, path, body)
        assert reference("26-get-or-create-malformed-json")["response"]["status"] == 500
        assert response.status_code in (400, 404)
        assert response.json()["type"] in (PROBS + "invalid-api-params", PROBS + "kernel-not-found")
    kernel_id = create(api).json()["kernelId"]
    for body in [b"{oops", b"[1]", b'"text"', b"", b"\xff\xfe\x00garbage", b"[" * 100_000]:
        response = raw_post(api, f"/v2/kernel/{kernel_id}", body)
        assert response.status_code == 400, body[:20]
        assert response.json()["type"] == PROBS + "invalid-api-params"


@pytest.mark.parametrize(
    ("body", "scenario"),
    [
        ({"lang": "python3"}, "27-get-or-create-missing-token"),
        ({"lang": "python3", "clientSessionToken": "abcde"}, "28-get-or-create-short-token"),
        ({"lang": "python3", "clientSessionToken": "x" * 81}, "28-get-or-create-short-token"),
    ],
)
def test_create_token_rules(api: httpx.Client, body: dict[str, Any], scenario: str) -> None:
    response = api.post("/v2/kernel/create", json=body)
    assert_like_reference(response, scenario, title="prefix")
    assert "clientSessionToken" in response.json()["title"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"clientSessionToken": "abcdefgh"}, "lang"),
        ({"lang": 3, "clientSessionToken": "abcdefgh"}, "lang"),
        ({"lang": "python3", "clientSessionToken": 12345678}, "clientSessionToken"),
        ({"lang": "python3", "clientSessionToken": "abcdefgh", "limits": []}, "limits"),
        (
            {"lang": "python3", "clientSessionToken": "abcdefgh", "limits": {"maxMem": "1"}},
            "limits.maxMem",
        ),
        (
            {"lang": "python3", "clientSessionToken": "abcdefgh", "limits": {"maxMem": -1}},
            "limits.maxMem",
        ),
        (
            {"lang": "python3", "clientSessionToken": "abcdefgh", "limits": {"execTimeout": True}},
            "limits.execTimeout",
        ),
        ({"lang": "python3", "clientSessionToken": "abcdefgh", "mounts": "x"}, "mounts"),
    ],
)
def test_create_parameter_types(api: httpx.Client, body: dict[str, Any], field: str) -> None:
    response = api.post("/v2/kernel/create", json=body)
    assert response.status_code == 400
    assert response.json()["type"] == PROBS + "invalid-api-params"
    assert field in response.json()["title"]


@pytest.mark.parametrize("field", ["maxMem", "execTimeout"])
@pytest.mark.parametrize("value", [10**400, 2**53 + 1, 1e300], ids=["10**400", "2**53+1", "1e300"])
def test_create_limits_out_of_range(api: httpx.Client, field: str, value: float) -> None:
    if field == "maxMem" and isinstance(value, float):
        value = int(value)
    token = f"huge-{uuid.uuid4().hex}"
    body = {"lang": "python3", "clientSessionToken": token, "limits": {field: value}}
    response = api.post("/v2/kernel/create", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["type"] == PROBS + "invalid-api-params"
    assert f"limits.{field}" in response.json()["title"]


def test_upload_conflicts_are_400_and_write_nothing(api: httpx.Client) -> None:
    kernel_id = create(api).json()["kernelId"]
    assert (
        api.post(f"/v2/kernel/{kernel_id}/upload", files=[("src", ("f", b"x"))]).status_code == 204
    )
    for files in (
        [("src", ("new.txt", b"x")), ("src", ("a", b"x")), ("src", ("a/b", b"y"))],
        [("src", ("new.txt", b"x")), ("src", ("f/g", b"y"))],
    ):
        response = api.post(f"/v2/kernel/{kernel_id}/upload", files=files)
        assert response.status_code == 400, response.text
        assert response.json()["type"] == PROBS + "invalid-api-params"
        assert "'a'" in response.json()["title"] or "'f'" in response.json()["title"]
    code = "import os; print(sorted(os.listdir('.')))"
    ran = api.post(f"/v2/kernel/{kernel_id}", json={"mode": "query", "code": code})
    assert ran.json()["result"]["console"] == [["stdout", "['.output', 'f']\n"]]


def test_create_accepts_the_2017_body(api: httpx.Client) -> None:
    body = reference("25-get-or-create-no-agents")["request"]["body_json"]
    body["clientSessionToken"] = f"compat-{uuid.uuid4().hex}"
    response = api.post("/v2/kernel/create", json=body)
    assert response.status_code == 201
    assert api.delete(f"/v2/kernel/{response.json()['kernelId']}").status_code == 204


def test_unknown_language(api: httpx.Client) -> None:
    response = create(api, lang="cobol85")
    assert response.status_code == 400
    assert response.json()["type"] == PROBS + "invalid-api-params"
    assert "python3" in response.json()["title"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "print(1)"}, "mode"),
        ({"mode": "query", "code": 5}, "code"),
        ({"mode": "query", "code": "", "options": [1]}, "options"),
    ],
)
def test_execute_parameter_types(api: httpx.Client, body: dict[str, Any], field: str) -> None:
    kernel_id = create(api).json()["kernelId"]
    response = api.post(f"/v2/kernel/{kernel_id}", json=body)
    assert response.status_code == 400
    assert field in response.json()["title"]
    bad_mode = api.post(f"/v2/kernel/{kernel_id}", json={"mode": "nope", "code": ""})
    assert bad_mode.status_code == 400
    assert bad_mode.json()["type"] == PROBS + "invalid-api-params"


def test_upload(api: httpx.Client) -> None:
    kernel_id = create(api).json()["kernelId"]
    files = [("src", ("data/in.txt", b"uploaded!")), ("src", ('say "hi".txt', b"x"))]
    response = api.post(f"/v2/kernel/{kernel_id}/upload", files=files)
    assert response.status_code == 204
    assert response.headers["content-length"] == "0"
    ran = api.post(
        f"/v2/kernel/{kernel_id}",
        json={"mode": "query", "code": "print(open('data/in.txt').read())"},
    )
    assert ran.json()["result"]["console"] == [["stdout", "uploaded!\n"]]
    # httpx sends '"' as %22 (the WHATWG form encoding); the name must come back intact.
    code = """import os; print(os.path.exists('say "hi".txt'))"""
    ran = api.post(f"/v2/kernel/{kernel_id}", json={"mode": "query", "code": code})
    assert ran.json()["result"]["console"] == [["stdout", "True\n"]]


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ([("src", ("../escape.txt", b"x"))], ""),
        ([("src", ("/etc/sorna-upload-test", b"x"))], "relative"),
        ([("src", ("x\x00y", b"x"))], ""),
        ([("src", (f"f{i}.txt", b"x")) for i in range(4)], "3 files"),
        ([("src", ("big.bin", b"x" * 1001))], "1000 bytes"),
        ([("file", ("a.txt", b"x"))], "src"),
        ([("src", (None, b"x"))], "src"),
    ],
)
def test_upload_rejects(api: httpx.Client, files: list[Any], needle: str) -> None:
    kernel_id = create(api).json()["kernelId"]
    response = api.post(f"/v2/kernel/{kernel_id}/upload", files=files)
    assert response.status_code == 400
    assert response.json()["type"] == PROBS + "invalid-api-params"
    assert needle in response.json()["title"]


def test_upload_needs_multipart(api: httpx.Client) -> None:
    kernel_id = create(api).json()["kernelId"]
    assert raw_post(api, f"/v2/kernel/{kernel_id}/upload", b"{}").status_code == 400
    broken = api.post(
        f"/v2/kernel/{kernel_id}/upload",
        content=b"--xyz\r\nContent-Disposition: form-data; name=src; filename=a\r\n\r\nhalf",
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert broken.status_code == 400
    assert "multipart" in broken.json()["title"]


def test_routing_errors(api: httpx.Client) -> None:
    assert_like_reference(api.get("/v2/no/such/thing"), "36-unknown-path")
    assert_like_reference(api.get("/foo"), "37-unversioned-path")
    assert_like_reference(api.get("/v2/folder/abc"), "39-not-implemented-stub")
    # The 2017 server answered 400 to a wrong method (38); the spec asks for 405 + Allow.
    wrong = api.put("/v2/authorize", json={"echo": 1})
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET"
    assert wrong.json()["type"] == PROBS + "generic-bad-request"
    kernel = api.put(f"/v2/kernel/{uuid.uuid4().hex}")
    assert kernel.status_code == 405
    assert kernel.headers["allow"] == "DELETE, GET, PATCH, POST"
    assert api.request("HEAD", "/v2/authorize").status_code == 405


def test_legacy_v1_prefix(api: httpx.Client) -> None:
    response = api.request("GET", "/v1/authorize", json={"echo": "v1"})
    assert response.status_code == 200
    assert response.json() == reference("40-v1-authorize")["response"]["body_json"]


def test_pty_route_without_upgrade(api: httpx.Client) -> None:
    unknown = api.get(f"/v2/stream/kernel/{uuid.uuid4().hex}/pty")
    assert unknown.status_code == 404
    assert unknown.json()["type"] == PROBS + "kernel-not-found"
    kernel_id = create(api).json()["kernelId"]
    known = api.get(f"/v2/stream/kernel/{kernel_id}/pty")  # a plain GET, no WebSocket upgrade
    assert known.status_code == 400
    assert known.json()["type"] == PROBS + "generic-bad-request"


def test_too_large_body(api: httpx.Client) -> None:
    response = raw_post(api, "/v2/kernel/create", b"x" * (8 * 1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.json()["type"] == PROBS + "generic-bad-request"


def test_rate_limit() -> None:
    with (
        LocalGateway.start_in_thread(pool_size=0, rate_limit=2) as gateway,
        signed_client(gateway) as api,
    ):
        first = api.request("GET", "/v2/authorize", json={"echo": 0})
        second = api.request("GET", "/v2/authorize", json={"echo": 1})
        third = api.request("GET", "/v2/authorize", json={"echo": 2})
        hello = api.get("/v2")
    assert [r.status_code for r in (first, second)] == [200, 200]
    assert_like_reference(third, "41-rate-limit")
    assert [r.headers["x-ratelimit-remaining"] for r in (first, second, third)] == ["1", "0", "0"]
    for response in (first, second, third, hello):
        assert response.headers["x-ratelimit-limit"] == "2"
        assert 0 < int(response.headers["x-ratelimit-reset"]) <= 900_000
    assert hello.status_code == 200  # hello stays public


def test_concurrency_quota() -> None:
    with (
        LocalGateway.start_in_thread(concurrency_limit=1) as gateway,
        signed_client(gateway) as api,
    ):
        first = create(api, "quota-token-1")
        assert first.status_code == 201
        assert_like_reference(create(api, "quota-token-2"), "29-get-or-create-quota-exceeded")
        # An existing kernel is no new kernel.
        assert create(api, "quota-token-1").json() == {
            "kernelId": first.json()["kernelId"],
            "created": False,
        }
        assert api.delete(f"/v2/kernel/{first.json()['kernelId']}").status_code == 204
        assert create(api, "quota-token-2").status_code == 201
