"""Signing: the spec's vectors byte for byte, and what the httpx signer actually signs."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from sorna_sdk import API_VERSION
from sorna_sdk.auth import (
    HMACAuth,
    InvalidAuthorization,
    parse_authorization,
    parse_date,
    sign,
    verify,
)

from .conftest import data_path

VECTORS = json.loads(data_path("signature-vectors.json").read_text())


@pytest.mark.parametrize("vector", VECTORS, ids=[v["method"] + v["path"] for v in VECTORS])
def test_signature_vectors_byte_for_byte(vector: dict[str, str]) -> None:
    header = sign(
        method=vector["method"],
        path=vector["path"],
        date=vector["date"],
        host=vector["host"],
        content_type=vector["content_type"],
        body=base64.b64decode(vector["body_base64"]),
        version=vector["version"],
        access_key=vector["access_key"],
        secret_key=vector["secret_key"],
        hash_name=vector["hash"],
    )
    assert header == vector["authorization"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["method"] + v["path"] for v in VECTORS])
def test_verify_accepts_vectors_and_rejects_tampering(vector: dict[str, str]) -> None:
    parsed = parse_authorization(vector["authorization"])
    args = {
        "method": vector["method"],
        "path": vector["path"],
        "date": vector["date"],
        "host": vector["host"],
        "content_type": vector["content_type"],
        "body": base64.b64decode(vector["body_base64"]),
        "version": vector["version"],
    }
    assert verify(parsed, secret_key=vector["secret_key"], **args)  # type: ignore[arg-type]
    assert not verify(parsed, secret_key=vector["secret_key"] + "x", **args)  # type: ignore[arg-type]
    args["host"] = "evil.example:1"
    assert not verify(parsed, secret_key=vector["secret_key"], **args)  # type: ignore[arg-type]


def test_multipart_body_is_signed_as_empty() -> None:
    common = {
        "method": "POST",
        "path": "/v2/kernel/k/upload",
        "date": "2017-03-15T00:00:00+00:00",
        "host": "h",
        "version": API_VERSION,
        "access_key": "AK",
        "secret_key": "SK",
    }
    a = sign(content_type="multipart/form-data; boundary=x", body=b"--x\r\nstuff", **common)  # type: ignore[arg-type]
    b = sign(content_type="multipart/form-data", body=b"", **common)  # type: ignore[arg-type]
    assert a == b


@pytest.mark.parametrize(
    "header",
    [
        "Sorna",
        "Basic abc",
        "Sorna signMethod=HMAC-SHA256",
        "Sorna signMethod=HMAC-SHA256, credential=nocolon",
        "Sorna signMethod=HMAC-MD4X, credential=a:b",
        "Sorna signMethod=RSA, credential=a:b",
        "Sorna garbage",
    ],
)
def test_parse_authorization_rejects_malformed(header: str) -> None:
    with pytest.raises(InvalidAuthorization):
        parse_authorization(header)


def test_parse_authorization_accepts_backendai_scheme() -> None:
    parsed = parse_authorization("BackendAI signMethod=HMAC-SHA1, credential=AK:abc")
    assert (parsed.scheme, parsed.hash_name, parsed.access_key, parsed.signature) == (
        "BackendAI",
        "sha1",
        "AK",
        "abc",
    )


def test_parse_date_iso_and_rfc1123() -> None:
    assert parse_date("2017-09-20T12:34:56.789012+00:00").year == 2017
    assert parse_date("Wed, 25 Nov 2026 20:52:59 GMT").utcoffset() == timedelta(0)
    assert parse_date("2026-11-25T20:52:59Z") == datetime(
        2026, 11, 25, 20, 52, 59, tzinfo=timezone.utc
    )
    with pytest.raises(InvalidAuthorization):
        parse_date("yesterday")
    with pytest.raises(InvalidAuthorization):
        parse_date("2017-09-20T12:34:56")  # no offset


def _signed(url: str, clock_value: datetime, **kwargs: object) -> httpx.Request:
    auth = HMACAuth("AK", "SK", version=API_VERSION, clock=lambda: clock_value)
    request = httpx.Request(
        "POST", url, content=b'{"a": 1}', headers={"Content-Type": "application/json"}
    )
    flow = auth.sync_auth_flow(request)
    return next(flow)


def test_httpx_signer_signs_the_host_header_actually_sent() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    # httpx drops the explicit default port from Host; the signature must follow what is sent.
    request = _signed("https://api.sorna.io:443/v2/kernel/x", moment)
    assert request.headers["Host"] == "api.sorna.io"
    expected = sign(
        method="POST",
        path="/v2/kernel/x",
        date=moment.isoformat(),
        host="api.sorna.io",
        content_type="application/json",
        body=b'{"a": 1}',
        version=API_VERSION,
        access_key="AK",
        secret_key="SK",
    )
    assert request.headers["Authorization"] == expected
    assert request.headers["Date"] == "2026-01-02T03:04:05+00:00"
    assert request.headers["X-Sorna-Version"] == API_VERSION

    with_port = _signed("http://127.0.0.1:8081/sorna/v2/kernel/x", moment)
    assert with_port.headers["Host"] == "127.0.0.1:8081"
    assert with_port.headers["Authorization"] == sign(
        method="POST",
        path="/sorna/v2/kernel/x",
        date=moment.isoformat(),
        host="127.0.0.1:8081",
        content_type="application/json",
        body=b'{"a": 1}',
        version=API_VERSION,
        access_key="AK",
        secret_key="SK",
    )


def test_signer_repr_hides_the_secret() -> None:
    auth = HMACAuth("AK", "super-secret-value", version=API_VERSION)
    assert "super-secret-value" not in repr(auth)


def test_unsupported_hash_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported hash"):
        HMACAuth("AK", "SK", version=API_VERSION, hash_name="shake_128")
