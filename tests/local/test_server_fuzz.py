"""Malformed input must never produce a 500, and the gateway must keep serving after it."""

from __future__ import annotations

import contextlib
import random
import socket
from collections.abc import Iterator
from datetime import datetime, timezone

import httpx
import pytest

from sorna_sdk._constants import API_VERSION
from sorna_sdk.auth import HMACAuth, sign
from sorna_sdk.local import LocalGateway, RunningGateway

from .helpers import assert_well_formed


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    with LocalGateway.start_in_thread(pool_size=0, max_request_bytes=64 * 1024) as running:
        yield running


@pytest.fixture(autouse=True)
def no_server_errors(no_gateway_errors: None) -> None:
    """Every test here fails if the gateway logged an error (it logs one for any 500)."""


def still_serving(gateway: RunningGateway) -> None:
    auth = HMACAuth(gateway.access_key, gateway.secret_key, version=API_VERSION)
    with httpx.Client(base_url=gateway.endpoint, auth=auth, timeout=10) as http:
        response = http.request("GET", "/v2/authorize", json={"echo": "alive"})
    assert response.status_code == 200
    assert response.json()["echo"] == "alive"


def exchange(gateway: RunningGateway, data: bytes, wait: float = 10.0) -> bytes:
    """Send raw bytes and read what the gateway answers until it closes or ``wait`` passes.

    No half-close: aiohttp drops a connection whose client sent EOF, answer or not.
    """
    with socket.create_connection((gateway.host, gateway.port), timeout=wait) as sock:
        # The gateway may refuse a huge request before it is all sent.
        with contextlib.suppress(OSError):
            sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass  # an incomplete request: the gateway waits for the rest
    return b"".join(chunks)


def statuses(answer: bytes) -> list[int]:
    """The status codes of every response in a raw answer."""
    found = []
    for line in answer.split(b"\r\n"):
        if line.startswith(b"HTTP/1."):
            found.append(int(line.split()[1]))
    return found


def signed_head(
    gateway: RunningGateway,
    method: str,
    path: str,
    body: bytes,
    content_type: str = "application/json",
    extra: bytes = b"",
) -> bytes:
    """A correctly signed request head (Host 127.0.0.1:port) as raw bytes."""
    host = f"127.0.0.1:{gateway.port}"
    date = datetime.now(timezone.utc).isoformat()
    authorization = sign(
        method=method,
        path=path,
        date=date,
        host=host,
        content_type=content_type,
        body=body,
        version=API_VERSION,
        access_key=gateway.access_key,
        secret_key=gateway.secret_key,
    )
    return (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nDate: {date}\r\n"
        f"X-Sorna-Version: {API_VERSION}\r\nContent-Type: {content_type}\r\n"
        f"Authorization: {authorization}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n"
    ).encode() + extra


NOW = datetime.now(timezone.utc).isoformat().encode()
GARBAGE = [
    b"GARBAGE\r\n\r\n",
    bytes(range(256)) * 4 + b"\r\n\r\n",
    b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v2 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
    b"GET /v2 HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
    + b"\r\n",
    b"BREW /v2/authorize HTTP/1.1\r\nHost: x\r\nDate: " + NOW + b"\r\nConnection: close\r\n\r\n",
    b"get /v2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /v2 HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /v2 HTTP/1.1\r\nHost: x\r\nDate: \xff\xfe\x00\r\nConnection: close\r\n\r\n",
    b"GET /v2/authorize HTTP/1.1\r\nHost: \xff\xfe\r\nDate: " + NOW + b"\r\n"
    b"X-Sorna-Version: v2\r\nAuthorization: Sorna signMethod=HMAC-SHA256, credential=\xff:\xfe\r\n"
    b"Connection: close\r\n\r\n",
    b"POST /v2/kernel/create HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
    b"POST /v2/kernel/create HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}",
    b"POST /v2/kernel/create HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}",
    b"POST /v2/kernel/create HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n{}",
    b"POST /v2/kernel/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nab\r\n",
    b"GET http://127.0.0.1/v2 HTTP/1.1\r\nHost: x\r\nDate: "
    + NOW
    + b"\r\nConnection: close\r\n\r\n",
    b"GET /v2/\xff\xfe/x HTTP/1.1\r\nHost: x\r\nDate: " + NOW + b"\r\nConnection: close\r\n\r\n",
    b"GET /v2 HTTP/1.0\r\nDate: " + NOW + b"\r\n\r\n",
    b"GET /v2/authorize HTTP/1.1\r\nHost: x\r\nDate: "
    + NOW
    + b"\r\nAuthorization: "
    + b"Sorna "
    + b"a=b," * 2000
    + b"\r\nConnection: close\r\n\r\n",
    b"\r\n\r\n\r\n",
    b"GET",
]


@pytest.mark.parametrize("data", GARBAGE, ids=range(len(GARBAGE)))
def test_raw_garbage(gateway: RunningGateway, data: bytes) -> None:
    answer = exchange(gateway, data, wait=1.5)
    assert all(status < 500 for status in statuses(answer)), answer[:300]
    still_serving(gateway)


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type"),
    [
        ("POST", "/v2/kernel/create", b"\xff\xfe\xfa not utf-8", "application/json"),
        (
            "POST",
            "/v2/kernel/create",
            b'{"lang": "\\ud800", "clientSessionToken": "x"}',
            "application/json",
        ),
        ("POST", "/v2/kernel/create", b"[" * 50_000, "application/json"),
        ("POST", "/v2/kernel/create", b'{"lang": 1e999999}', "application/json"),
        ("POST", "/v2/kernel/create", b'{"lang": ' + b"9" * 10_000 + b"}", "application/json"),
        ("POST", "/v2/kernel/%ff%fe", b"{}", "application/json"),
        ("GET", "/v2/kernel/%00", b"", "application/octet-stream"),
        ("POST", "/v2/kernel/x/upload", b"--b\r\nbroken", "multipart/form-data"),
        ("POST", "/v2/kernel/x/upload", b"--b\r\nbroken", "multipart/form-data; boundary=b"),
        ("GET", "/v2/authorize", b"\x00" * 10, "application/json"),
        ("OPTIONS", "/v2/authorize", b"", "application/octet-stream"),
        ("TRACE", "/v2", b"", "application/octet-stream"),
        ("POST", "/v2/kernel/create", b"{}" * 40_000, "application/json"),
    ],
)
def test_signed_malformed_requests(
    gateway: RunningGateway, method: str, path: str, body: bytes, content_type: str
) -> None:
    answer = exchange(
        gateway, signed_head(gateway, method, path, body, content_type) + b"\r\n" + body
    )
    codes = statuses(answer)
    assert codes, answer[:300]
    assert all(400 <= status < 500 for status in codes), answer[:300]
    assert b"\r\ncontent-length: " in answer.lower()
    still_serving(gateway)


def test_signed_upload_with_broken_multipart_for_a_real_kernel(gateway: RunningGateway) -> None:
    auth = HMACAuth(gateway.access_key, gateway.secret_key, version=API_VERSION)
    with httpx.Client(base_url=gateway.endpoint, auth=auth, timeout=30) as http:
        made = http.post(
            "/v2/kernel/create", json={"lang": "bash", "clientSessionToken": "fuzz-1234"}
        )
        kernel_id = made.json()["kernelId"]
        for body in [
            b"--b\r\nContent-Disposition: form-data; name=src\r\n\r\nno filename\r\n--b--\r\n",
            b"--b\r\nContent-Disposition: form-data; name=src; filename=a\r\n\r\nunterminated",
            b"--b--\r\n",
            b"no boundary at all",
            b"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n"
            b"--c\r\n\r\nx\r\n--c--\r\n--b--\r\n",
        ]:
            response = http.post(
                f"/v2/kernel/{kernel_id}/upload",
                content=body,
                headers={"Content-Type": "multipart/form-data; boundary=b"},
            )
            assert_well_formed(response)
            assert response.status_code == 400, body
        assert http.delete(f"/v2/kernel/{kernel_id}").status_code == 204


def test_random_signed_requests(gateway: RunningGateway) -> None:
    rng = random.Random(20170315)
    auth = HMACAuth(gateway.access_key, gateway.secret_key, version=API_VERSION)
    paths = [
        "/v2",
        "/v2/authorize",
        "/v2/kernel/create",
        "/v2/kernel/abc",
        "/v2/kernel/abc/upload",
        "/v2/stream/kernel/abc/pty",
        "/v2/nothing",
        "/v3/kernel/create",
        "/",
    ]
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    bodies = [
        b"",
        b"{}",
        b"null",
        b'{"lang": null, "clientSessionToken": []}',
        b'{"mode": {}, "code": []}',
        b'{"lang": "python3", "clientSessionToken": "abcdefgh", "limits": {"maxMem": 1e308}}',
        b'{"lang": "python3", "clientSessionToken": "abcdefgh", "limits": {"execTimeout": -1}}',
    ]
    with httpx.Client(base_url=gateway.endpoint, auth=auth, timeout=30) as http:
        for _ in range(150):
            body = rng.choice(bodies) if rng.random() < 0.8 else rng.randbytes(rng.randint(1, 300))
            response = http.request(
                rng.choice(methods),
                rng.choice(paths),
                content=body,
                headers={"Content-Type": rng.choice(["application/json", "text/plain"])},
            )
            assert_well_formed(response)
            assert response.status_code < 500, (response.request, response.text)
    still_serving(gateway)
