"""Malformed Backend.AI requests, signed as a real client signs them: never a 500, always
``application/problem+json`` with ``type``, ``title`` and ``error_code``; and the gateway
still answers ``GET /`` after all of them."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

import sorna_sdk
from sorna_sdk import Kernel, Session
from sorna_sdk._dialects import BackendAI
from sorna_sdk.auth import HMACAuth
from sorna_sdk.local import RunningGateway

from .conftest import (
    NEWEST,
    OLDEST,
    VERSIONS,
    Findings,
    assert_problem,
    noun,
    signed_client,
    unique,
)

pytestmark = pytest.mark.timeout(60)

JSON = {"Content-Type": "application/json"}


def still_serving(gateway: RunningGateway) -> None:
    """The anonymous version probe still works."""
    response = httpx.get(gateway.endpoint + "/", timeout=10)
    assert response.status_code == 200
    assert response.json()["version"] == NEWEST


@pytest.fixture(scope="module")
def live(gateway: RunningGateway) -> Iterator[dict[str, str]]:
    """One living session per version (made through the SDK): version -> id in paths."""
    with ExitStack() as stack:
        ids = {}
        for version in VERSIONS:
            session = stack.enter_context(Session(gateway.config(version=version)))
            kern = stack.enter_context(
                Kernel.get_or_create("python", unique("raw"), session=session)
            )
            ids[version] = kern.kernel_id
        yield ids


@pytest.fixture(autouse=True)
def serving_afterwards(gateway: RunningGateway) -> Iterator[None]:
    """Whatever a test sent, the gateway answers ``GET /`` after it."""
    yield
    still_serving(gateway)


@pytest.fixture
def http(gateway: RunningGateway, version: str) -> Iterator[httpx.Client]:
    """A client signing for ``version`` with the SDK's own signer."""
    with signed_client(gateway, version) as client:
        yield client


def _keys(version: str) -> tuple[str, str]:
    """The create body's name and image keys at ``version``."""
    return ("clientSessionToken", "lang") if version == OLDEST else ("name", "image")


def _create(version: str, **fields: Any) -> bytes:
    """A valid create body at ``version`` with ``fields`` changed (``NAME``/``IMAGE`` name the
    version's keys; ``_DROP`` removes one)."""
    name, image = _keys(version)
    body: dict[str, Any] = {name: unique("bad"), image: "python"}
    for key, value in fields.items():
        key = {"NAME": name, "IMAGE": image}.get(key, key)
        if value is _DROP:
            body.pop(key, None)
        else:
            body[key] = value
    return json.dumps(body).encode()


_DROP: Any = object()

#: Create bodies every version must refuse with a 400.
BAD_CREATES: list[dict[str, Any]] = [
    {"NAME": 5},
    {"NAME": None},
    {"NAME": ["x"]},
    {"NAME": _DROP},
    {"IMAGE": 5},
    {"IMAGE": None},
    {"IMAGE": {"x": 1}},
    {"IMAGE": _DROP},
    {"IMAGE": ""},
    {"NAME": "abc"},
    {"NAME": "x" * 65},
    {"NAME": "x" * 20_000},
    {"NAME": "-starts-with-dash"},
    {"NAME": "has space"},
    {"NAME": "semi;colon"},
    {"config": "x"},
    {"config": []},
    {"config": {"environ": "x"}},
    {"config": {"environ": [1]}},
    {"config": {"environ": {"A": 1}}},
    {"config": {"resources": "x"}},
    {"config": {"mounts": "x"}},
    {"config": {"mounts": ["my-vfolder"]}},
    {"config": {"resources": {"cuda.device": 1}}},
    {"config": {"resources": {"mem": "lots"}}},
]
#: Fields of the modern create body only (v4.20190615 and later).
BAD_MODERN_CREATES: list[dict[str, Any]] = [
    {"clusterSize": 0},
    {"clusterSize": -1},
    {"clusterSize": "many"},
    {"clusterSize": 2},
    {"clusterMode": 5},
    {"clusterMode": "everywhere"},
    {"type": 5},
    {"type": "weird"},
    {"type": "batch"},
    {"enqueueOnly": []},
    {"maxWaitSeconds": "soon"},
    {"maxWaitSeconds": -1},
    {"reuseIfExists": {}},
]
#: Fields the gateway may ignore: accepted or refused, but never a 500.
ODD_CREATES: list[dict[str, Any]] = [
    {"tag": 5},
    {"startupCommand": 5},
    {"bootstrap_script": 5},
    {"domain": 5},
    {"group": 5},
    {"owner_access_key": 5},
    {"starts_at": "yesterday"},
    {"callback_url": 5},
    {"dependencies": "x"},
    {"architecture": 5},
    {"config": {"scalingGroup": 5}},
    {"config": {"resource_opts": "x"}},
    {"config": {"preopen_ports": "x"}},
    {"config": {"mount_map": []}},
    {"config": {"clusterSize": "x"}},
    {"enqueueOnly": "yes"},
    {"reuseIfExists": "no"},
]
NOT_OBJECTS = [b"{bad", b"[]", b"null", b"5", b'"x"', b"\xff\xfe\x00", b"", b"[" * 50_000]


def test_create_bodies_that_are_not_objects_are_400(http: httpx.Client, version: str) -> None:
    found = Findings()
    for body in NOT_OBJECTS:
        response = http.post(f"/{noun(version)}", content=body, headers=JSON)
        found.problem(response, 400, f"create {body[:20]!r}")
    found.check()


def test_create_with_bad_fields_is_400(http: httpx.Client, version: str) -> None:
    found = Findings()
    cases = BAD_CREATES + (BAD_MODERN_CREATES if version != OLDEST else [])
    for fields in cases:
        response = http.post(f"/{noun(version)}", content=_create(version, **fields), headers=JSON)
        found.problem(response, 400, f"create with {_short(fields)}")
        if response.status_code in (200, 201):  # a bug, but do not leave the session behind
            made = response.json()
            http.delete(f"/{noun(version)}/{made.get('sessionId') or made.get('kernelId')}")
    found.check()


def test_create_with_odd_fields_is_never_a_500(gateway: RunningGateway) -> None:
    """Fields of the modern body that the gateway may ignore (each a real create, 4 at once)."""
    found = Findings()

    def attempt(http: httpx.Client, fields: dict[str, Any]) -> None:
        response = http.post("/session", content=_create(NEWEST, **fields), headers=JSON)
        what = f"create with {_short(fields)}"
        if response.status_code >= 400:
            found.problem(response, None, what)
        elif response.status_code != 201:
            found.wrong.append(f"{what}: {response.status_code}")
        elif http.delete(f"/session/{response.json()['sessionId']}").status_code != 200:
            found.wrong.append(f"{what}: could not delete the session")

    with signed_client(gateway, NEWEST) as http, ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda fields: attempt(http, fields), ODD_CREATES))
    found.check()


def _short(fields: dict[str, Any]) -> str:
    text = repr({k: ("<dropped>" if v is _DROP else v) for k, v in fields.items()})
    return text if len(text) < 80 else text[:77] + "..."


def test_create_answer_shape(http: httpx.Client, version: str) -> None:
    """A create answers 201 as a real manager does; the same body again reuses the session."""
    body = _create(version)
    response = http.post(f"/{noun(version)}", content=body, headers=JSON)
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["created"] is True
    assert made["status"] == "RUNNING"
    ref = made.get("sessionId") or made.get("kernelId")
    assert isinstance(ref, str) and ref
    again = http.post(f"/{noun(version)}", content=body, headers=JSON)
    assert again.status_code in (200, 201), again.text
    assert again.json()["created"] is False
    assert (again.json().get("sessionId") or again.json().get("kernelId")) == ref
    assert http.delete(f"/{noun(version)}/{ref}").status_code == 200
    assert_problem(http.get(f"/{noun(version)}/{ref}"), 404)


BAD_EXECUTES = [
    b"{",
    b"[]",
    b"null",
    b'{"mode": 5, "code": ""}',
    b'{"mode": "fly", "code": ""}',
    b'{"mode": "query", "code": 1}',
    b'{"mode": "query", "code": ["print(1)"]}',
    b'{"mode": "query", "code": "print(1)", "runId": 5}',
    b'{"mode": "continue", "code": ""}',
    b'{"mode": "continue", "code": "", "runId": null}',
    b'{"mode": "input", "code": "x"}',
    b'{"mode": "input", "code": "x", "runId": ""}',
    b'{"mode": "batch", "code": "", "options": "x"}',
    b'{"mode": "batch", "code": "", "options": {"build": 5}}',
    b'{"mode": "complete", "code": "x", "options": {"row": "a"}}',
    b'{"mode": null, "code": "print(1)"}',
]


def test_execute_with_bad_body_is_400(
    http: httpx.Client, version: str, live: dict[str, str]
) -> None:
    found = Findings()
    path = f"/{noun(version)}/{live[version]}"
    for body in BAD_EXECUTES:
        found.problem(http.post(path, content=body, headers=JSON), 400, f"execute {body!r}")
    # The session is unharmed and idle.
    ok = http.post(
        path, content=b'{"mode": "query", "code": "print(40 + 2)", "runId": null}', headers=JSON
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["result"]["console"] == [["stdout", "42\n"]]
    found.check()


def test_continue_of_an_unknown_run(http: httpx.Client, version: str, live: dict[str, str]) -> None:
    found = Findings()
    for mode in ("continue", "input"):
        body = {"mode": mode, "code": "", "runId": "no-such-run", "run_id": "no-such-run"}
        response = http.post(
            f"/{noun(version)}/{live[version]}", content=json.dumps(body).encode(), headers=JSON
        )
        found.problem(response, None, f"{mode} of an unknown run")
    found.check()


BAD_COMPLETES = [
    b"{",
    b"[]",
    b'{"code": 5}',
    b'{"code": "x", "options": "x"}',
    b'{"code": "x", "options": {"row": []}}',
]


def test_complete_with_bad_body_is_400(
    http: httpx.Client, version: str, live: dict[str, str]
) -> None:
    found = Findings()
    path = f"/{noun(version)}/{live[version]}/complete"
    for body in BAD_COMPLETES:
        found.problem(http.post(path, content=body, headers=JSON), 400, f"complete {body!r}")
    found.check()


FILE_QUERIES = [
    ("GET", "files", "path=%00"),
    ("GET", "files", "path=../../.."),
    ("GET", "files", "path=/etc"),
    ("GET", "files", "path=" + "a/" * 3000),
    ("POST", "download", ""),
    ("POST", "download", "files="),
    ("POST", "download", "files=../../etc/passwd"),
    ("POST", "download", "files=%00"),
    ("POST", "download", "files=/etc/passwd"),
    ("POST", "download_single", ""),
    ("POST", "download_single", "file="),
    ("POST", "download_single", "file=../../etc/passwd"),
    ("POST", "download_single", "file=/etc/passwd"),
    ("POST", "download_single", "file=%00"),
    ("POST", "download_single", "file=no-such-file"),
    ("POST", "download_single", "file=" + "x" * 5000),
]


def test_bad_file_queries_are_4xx(http: httpx.Client, version: str, live: dict[str, str]) -> None:
    found = Findings()
    for method, action, query in FILE_QUERIES:
        path = f"/{noun(version)}/{live[version]}/{action}" + (f"?{query}" if query else "")
        response = http.request(method, path)
        found.problem(response, None, f"{method} {path[:90]}")
        if b"root:" in response.content:
            found.wrong.append(f"{method} {path}: the host's /etc/passwd came back")
    found.check()


BAD_UPLOADS = [
    (b"not multipart", "text/plain"),
    (b"--b\r\nbroken", "multipart/form-data; boundary=b"),
    (b"--b\r\nContent-Disposition: form-data; name=src\r\n\r\nno filename\r\n--b--\r\n",
     "multipart/form-data; boundary=b"),
    (b'--b\r\nContent-Disposition: form-data; name=src; filename="../x"\r\n\r\nx\r\n'
     b"--b--\r\n", "multipart/form-data; boundary=b"),
    (b"--b--\r\n", "multipart/form-data; boundary=b"),
]  # fmt: skip


def test_bad_uploads_are_400(http: httpx.Client, version: str, live: dict[str, str]) -> None:
    found = Findings()
    for body, content_type in BAD_UPLOADS:
        response = http.post(
            f"/{noun(version)}/{live[version]}/upload",
            content=body,
            headers={"Content-Type": content_type},
        )
        found.problem(response, 400, f"upload {body[:40]!r}")
    found.check()


GHOSTS = ["no-such-session", "f" * 32, str(uuid.UUID(int=12345))]


def test_unknown_sessions_are_404_on_every_route(http: httpx.Client, version: str) -> None:
    found = Findings()
    query = b'{"mode": "query", "code": "print(1)", "runId": null}'
    for ghost in GHOSTS:
        base = f"/{noun(version)}/{ghost}"
        for method, path, body in [
            ("GET", base, b""),
            ("PATCH", base, b""),
            ("DELETE", base, b""),
            ("POST", base, query),
            ("POST", f"{base}/interrupt", b""),
            ("POST", f"{base}/complete", b'{"code": "pri", "options": {"row": 0, "col": 3}}'),
            ("GET", f"{base}/files?path=.", b""),
            ("GET", f"{base}/logs", b""),
            ("POST", f"{base}/download?files=a.txt", b""),
            ("POST", f"{base}/download_single?file=a.txt", b""),
            ("GET", f"/stream/{noun(version)}/{ghost}/pty", b""),
            ("GET", f"/stream/{noun(version)}/{ghost}/execute", b""),
            (
                "GET",
                f"/events/session?sessionName={ghost}&scope=*"
                if version != OLDEST
                else f"/stream/kernel/_/events?sessionId={ghost}",
                b"",
            ),
        ]:
            response = http.request(method, path, content=body, headers=JSON if body else {})
            problem = found.problem(response, 404, f"{method} {path}")
            if problem is not None and not problem["error_code"].startswith(
                ("session_", "kernel_")
            ):
                found.wrong.append(f"{method} {path}: error_code {problem['error_code']}")
    found.check()


STRANGE_IDS = ["%00", "%2e%2e", "a" * 5000, "%ff%fe", "x%2Fy", "_", "%20"]


def test_strange_session_ids_are_4xx(http: httpx.Client, version: str) -> None:
    found = Findings()
    for ghost in STRANGE_IDS:
        for method in ("GET", "PATCH", "DELETE"):
            path = f"/{noun(version)}/{ghost}"
            found.problem(http.request(method, path), None, f"{method} {path[:60]}")
    found.check()


def test_wrong_methods_are_405(http: httpx.Client, version: str, live: dict[str, str]) -> None:
    found = Findings()
    base = f"/{noun(version)}/{live[version]}"
    for method, path in [
        ("PUT", "/auth/test"),
        ("DELETE", "/auth/test"),
        ("PUT", f"/{noun(version)}"),
        ("PUT", base),
        ("GET", f"{base}/interrupt"),
        ("PATCH", f"{base}/upload"),
        ("PUT", f"{base}/complete"),
    ]:
        response = http.request(method, path)
        problem = found.problem(response, 405, f"{method} {path}")
        if problem is not None and not response.headers.get("Allow"):
            found.wrong.append(f"{method} {path}: no Allow header")
        if problem is not None and not problem["type"].endswith("/method-not-allowed"):
            found.wrong.append(f"{method} {path}: type {problem['type']}")
    found.check()


def test_unknown_path_is_url_not_found(http: httpx.Client) -> None:
    problem = assert_problem(http.get("/no-such-path"), 404)
    assert problem["type"].endswith("/url-not-found")
    assert problem["error_code"] == "api_read_not-found"


def test_unsigned_and_misversioned_requests(gateway: RunningGateway, version: str) -> None:
    """No Authorization header is a 401 ``auth-failed``, with or without a Date, as the real
    manager answers (transcript 35 has neither); an unknown version a 4xx; a wrong secret 401."""
    found = Findings()
    url = f"{gateway.endpoint}/{noun(version)}/no-such-session"
    now = datetime.now(timezone.utc).isoformat()
    for headers in (
        {"X-BackendAI-Version": version},
        {"X-BackendAI-Version": version, "Date": now},
    ):
        unsigned = httpx.get(url, headers=headers, timeout=10)
        problem = found.problem(unsigned, 401, f"unsigned GET with {sorted(headers)}")
        if problem is not None and not problem["type"].endswith("/auth-failed"):
            found.wrong.append(f"unsigned GET with {sorted(headers)}: {problem}")
    for other in ("v99.20990101", "v4.20180101", "v10"):
        auth = HMACAuth(
            gateway.access_key, gateway.secret_key, version=other, policy=BackendAI(NEWEST).signing
        )
        odd = httpx.get(f"{gateway.endpoint}/auth/test", auth=auth, timeout=10)
        found.problem(odd, 400, f"signed for version {other}")
    found.check()
    wrong = gateway.config(version=version, secret_key="not-the-secret")
    with Session(wrong) as session:
        with pytest.raises(sorna_sdk.AuthenticationError) as info:
            session.authorize("x")
        assert info.value.status == 401
        assert "not-the-secret" not in str(info.value)


def test_random_signed_requests(gateway: RunningGateway) -> None:
    """A seeded fuzz of methods, paths, queries and bodies: never a 500."""
    rng = random.Random(20250722)
    with Session(gateway.config(version=NEWEST)) as session:
        kern = Kernel.get_or_create("python", unique("fuzz"), session=session)
    ids = [kern.kernel_id, "no-such-session", "f" * 32, "%00"]
    routes = ["", "/interrupt", "/complete", "/files", "/logs", "/download", "/download_single",
              "/upload", "/nothing"]  # fmt: skip
    queries = ["", "?path=.", "?path=..", "?files=x", "?file=", "?file=../x", "?forced=true",
               "?forced=maybe", "?path=%00", "?a=" + "b" * 2000]  # fmt: skip
    bodies = [
        b"",
        b"{}",
        b"null",
        b'{"mode": {}, "code": []}',
        b'{"name": null, "image": []}',
        b'{"name": "fz", "image": "python"}',
        b'{"image": "python", "name": "fuzz-session", "clusterSize": 1e308}',
        b'{"image": "python", "name": "fuzz-session", "config": {"environ": {"": ""}}}',
        b'{"mode": "continue", "runId": {"a": 1}}',
        b'{"code": "print(1)", "mode": "query", "runId": null, "extra": [1, 2, 3]}',
    ]
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
    with signed_client(gateway, NEWEST) as http:
        for _ in range(200):
            if rng.random() < 0.85:
                path = f"/session/{rng.choice(ids)}{rng.choice(routes)}"
            else:
                path = rng.choice(["/session", "/kernel", "/auth/test", "/events/session",
                                   "/stream/session/x/pty", "/", "/v9/session"])  # fmt: skip
            body = rng.choice(bodies) if rng.random() < 0.8 else rng.randbytes(rng.randint(1, 300))
            response = http.request(
                rng.choice(methods),
                path + rng.choice(queries),
                content=body,
                headers={"Content-Type": rng.choice(["application/json", "text/plain"])},
            )
            assert response.status_code < 500, (response.request, response.text[:300])
            if response.status_code >= 400 and response.request.method != "HEAD":
                assert_problem(response)
            if path in ("/session", "/kernel") and response.status_code in (200, 201):
                made = response.json()
                http.delete(f"/session/{made.get('sessionId') or made.get('kernelId')}")
        http.delete(f"/session/{kern.kernel_id}")
    still_serving(gateway)
