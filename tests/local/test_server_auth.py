"""The gateway's request checks (spec §3.3) over loopback, against the 2017 transcripts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from sorna_sdk._constants import API_VERSION
from sorna_sdk.auth import HMACAuth, sign
from sorna_sdk.local import LocalGateway, RunningGateway

from .helpers import PROBS, assert_like_reference, assert_well_formed, reference


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    with LocalGateway.start_in_thread(pool_size=0) as running:
        yield running


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.endpoint, timeout=30) as http:
        yield http


def signed(
    gateway: RunningGateway,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    content_type: str = "application/json",
    date: str | None = None,
    sign_host: str | None = None,
    sign_path: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    scheme: str = "Sorna",
    date_header: str = "Date",
    version_header: str = "X-Sorna-Version",
    hash_name: str = "sha256",
) -> dict[str, str]:
    """Headers of a request signed with the gateway's keys, each part overridable."""
    date = date or datetime.now(timezone.utc).isoformat()
    authorization = sign(
        method=method,
        path=sign_path or path,
        date=date,
        host=sign_host or f"127.0.0.1:{gateway.port}",
        content_type=content_type,
        body=body,
        version=API_VERSION,
        access_key=access_key or gateway.access_key,
        secret_key=secret_key or gateway.secret_key,
        hash_name=hash_name,
        scheme=scheme,
        version_header=version_header.lower(),
    )
    return {
        date_header: date,
        version_header: API_VERSION,
        "Content-Type": content_type,
        "Authorization": authorization,
    }


def send(
    client: httpx.Client, method: str, path: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    response = client.request(method, path, content=body, headers=headers)
    assert_well_formed(response)
    return response


ECHO = b'{"echo": "hello-sorna-lab"}'


def test_authorize_with_the_sdk_signer(gateway: RunningGateway) -> None:
    auth = HMACAuth(gateway.access_key, gateway.secret_key, version=API_VERSION)
    with httpx.Client(base_url=gateway.endpoint, auth=auth) as http:
        response = http.request("GET", "/v2/authorize", json={"echo": "hello-sorna-lab"})
    assert_well_formed(response)
    assert response.status_code == 200
    assert response.json() == reference("03-authorize-ok")["response"]["body_json"]
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    limit = int(response.headers["x-ratelimit-limit"])
    assert 0 <= int(response.headers["x-ratelimit-remaining"]) < limit
    assert 0 < int(response.headers["x-ratelimit-reset"]) <= 15 * 60 * 1000


def test_hello_is_public(gateway: RunningGateway, client: httpx.Client) -> None:
    date = datetime.now(timezone.utc).isoformat()
    ok = send(client, "GET", "/v2", b"", {"Date": date})
    assert ok.status_code == 200
    assert ok.json() == reference("01-hello-get-v2")["response"]["body_json"]
    # The 2017 client signs "/v2/" but sends "/v2": a wrong signature must not matter.
    headers = signed(
        gateway, "GET", "/v2", sign_path="/v2/", content_type="application/octet-stream"
    )
    hello = send(client, "GET", "/v2", b"", headers)
    assert hello.status_code == 200
    # A known access key gets its rate figures; an anonymous hello gets none.
    assert int(hello.headers["x-ratelimit-limit"]) > 0
    assert "x-ratelimit-limit" not in ok.headers
    # The 2017 server wanted a Date even here (02-hello-get-v2-no-headers: 400); ours answers
    # health checks without one: test_server_hardening.py.


def test_hello_does_not_count_against_the_rate_limit(
    gateway: RunningGateway, client: httpx.Client
) -> None:
    headers = signed(gateway, "GET", "/v2", content_type="application/octet-stream")
    first = send(client, "GET", "/v2", b"", headers)
    second = send(client, "GET", "/v2", b"", headers)
    assert first.headers["x-ratelimit-remaining"] == second.headers["x-ratelimit-remaining"]


def test_query_string_is_signed(gateway: RunningGateway, client: httpx.Client) -> None:
    body = b'{"echo": "q"}'
    path = "/v2/authorize?x=1&y=two"
    ok = send(client, "GET", path, body, signed(gateway, "GET", path, body))
    assert ok.status_code == 200
    assert ok.json() == reference("04-authorize-query-string-signed")["response"]["body_json"]
    headers = signed(gateway, "GET", "/v2/authorize?x=1", body, sign_path="/v2/authorize")
    bad = send(client, "GET", "/v2/authorize?x=1", body, headers)
    assert_like_reference(bad, "05-authorize-query-string-not-signed")


@pytest.mark.parametrize(
    ("sign_host", "scenario"),
    [
        ("localhost:{port}", "06-authorize-wrong-host-signed"),
        ("127.0.0.1", "07-authorize-host-without-port"),
    ],
)
def test_the_host_header_is_signed_as_received(
    gateway: RunningGateway, client: httpx.Client, sign_host: str, scenario: str
) -> None:
    body = b'{"echo": "h"}'
    host = sign_host.format(port=gateway.port)
    response = send(
        client,
        "GET",
        "/v2/authorize",
        body,
        signed(gateway, "GET", "/v2/authorize", body, sign_host=host),
    )
    assert_like_reference(response, scenario)


def test_wrong_secret_and_unknown_key(gateway: RunningGateway, client: httpx.Client) -> None:
    body = b'{"echo": "x"}'
    wrong = signed(gateway, "GET", "/v2/authorize", body, secret_key="not-the-secret")
    assert_like_reference(
        send(client, "GET", "/v2/authorize", body, wrong), "08-authorize-wrong-secret"
    )
    unknown = signed(gateway, "GET", "/v2/authorize", body, access_key="AKIANOSUCHKEY0000000")
    assert_like_reference(
        send(client, "GET", "/v2/authorize", body, unknown), "09-authorize-unknown-access-key"
    )


def test_missing_date(gateway: RunningGateway, client: httpx.Client) -> None:
    headers = signed(gateway, "GET", "/v2/authorize", ECHO)
    del headers["Date"]
    assert_like_reference(
        send(client, "GET", "/v2/authorize", ECHO, headers), "10-authorize-missing-date"
    )


@pytest.mark.parametrize(
    ("minutes", "scenario"),
    [
        (20, "11-authorize-date-skew-plus-20min"),
        (-20, "12-authorize-date-skew-minus-20min"),
        (14, "13-authorize-date-skew-plus-14min"),
        (-14, "13-authorize-date-skew-plus-14min"),
    ],
)
def test_clock_skew(
    gateway: RunningGateway, client: httpx.Client, minutes: int, scenario: str
) -> None:
    date = (datetime.now(timezone.utc) + timedelta(minutes=minutes)).isoformat()
    response = send(
        client,
        "GET",
        "/v2/authorize",
        ECHO,
        signed(gateway, "GET", "/v2/authorize", ECHO, date=date),
    )
    expected = reference(scenario)["response"]
    assert response.status_code == expected["status"]
    if response.status_code == 200:
        assert response.json()["authorized"] == "yes"
    else:
        assert_like_reference(response, scenario)


@pytest.mark.parametrize(
    "date", ["yesterday", "2017-09-20T12:34:56", "Wed, 99 Foo 2026", "0001-01-01T00:00:00+14:00"]
)
def test_unparsable_dates(gateway: RunningGateway, client: httpx.Client, date: str) -> None:
    headers = signed(gateway, "GET", "/v2/authorize", ECHO)
    headers["Date"] = date
    response = send(client, "GET", "/v2/authorize", ECHO, headers)
    assert_like_reference(response, "10-authorize-missing-date")


def test_rfc1123_date(gateway: RunningGateway, client: httpx.Client) -> None:
    date = format_datetime(datetime.now(timezone.utc), usegmt=True)
    body = b'{"echo": "rfc1123"}'
    response = send(
        client,
        "GET",
        "/v2/authorize",
        body,
        signed(gateway, "GET", "/v2/authorize", body, date=date),
    )
    assert response.status_code == 200
    assert response.json() == reference("14-authorize-rfc1123-date")["response"]["body_json"]


@pytest.mark.parametrize("date_header", ["X-BackendAI-Date", "X-Sorna-Date"])
def test_backendai_header_variants(
    gateway: RunningGateway, client: httpx.Client, date_header: str
) -> None:
    body = b'{"echo": "bai"}'
    headers = signed(
        gateway,
        "GET",
        "/v2/authorize",
        body,
        scheme="BackendAI",
        date_header=date_header,
        version_header="X-BackendAI-Version",
    )
    response = send(client, "GET", "/v2/authorize", body, headers)
    assert response.status_code == 200
    assert response.json() == reference("15-authorize-backendai-headers")["response"]["body_json"]


def test_the_version_header_name_is_signed(gateway: RunningGateway, client: httpx.Client) -> None:
    headers = signed(gateway, "GET", "/v2/authorize", ECHO)
    headers["X-BackendAI-Version"] = headers.pop("X-Sorna-Version")
    response = send(client, "GET", "/v2/authorize", ECHO, headers)
    assert response.status_code == 401
    assert response.json()["type"] == PROBS + "auth-failed"


@pytest.mark.parametrize(
    "scenario",
    [
        "16-authz-malformed-no-space",
        "17-authz-wrong-type",
        "18-authz-garbage-params",
        "19-authz-missing-credential",
        "20-authz-credential-no-colon",
        "21-authz-unsupported-hash",
    ],
)
def test_malformed_authorization(
    gateway: RunningGateway, client: httpx.Client, scenario: str
) -> None:
    sent = dict(reference(scenario)["request"]["headers"])
    headers = signed(gateway, "GET", "/v2/authorize")
    headers["Authorization"] = sent["Authorization"]
    response = send(client, "GET", "/v2/authorize", b"", headers)
    if scenario.startswith("18-"):
        # The 2017 server crashed (500) here; the spec asks for a 400.
        assert response.status_code == 400
        assert response.json()["type"] == PROBS + "invalid-auth-params"
    else:
        assert_like_reference(response, scenario)


def test_missing_authorization(gateway: RunningGateway, client: httpx.Client) -> None:
    body = b'{"lang": "python3", "clientSessionToken": "abcdefghij"}'
    headers = signed(gateway, "POST", "/v2/kernel/create", body)
    del headers["Authorization"]
    assert_like_reference(
        send(client, "POST", "/v2/kernel/create", body, headers), "30-get-or-create-unsigned"
    )


def test_missing_version_header(gateway: RunningGateway, client: httpx.Client) -> None:
    headers = signed(gateway, "GET", "/v2/authorize")
    del headers["X-Sorna-Version"]
    response = send(client, "GET", "/v2/authorize", b"", headers)
    assert_like_reference(response, "22-authz-missing-version-header")


@pytest.mark.parametrize("version_header", ["X-Sorna-Version", "X-BackendAI-Version"])
@pytest.mark.parametrize(
    ("version", "accepted"),
    [
        ("v2.20170315", True),
        ("v2", True),
        ("v1.20160915", True),  # /v1 is served as an alias of /v2
        ("v9.whatever", False),
        ("v3.20170315", False),
        ("2.20170315", False),
        ("v22.1", False),
    ],
)
def test_the_api_major_version_is_checked(
    gateway: RunningGateway, client: httpx.Client, version_header: str, version: str, accepted: bool
) -> None:
    date = datetime.now(timezone.utc).isoformat()
    authorization = sign(
        method="GET",
        path="/v2/authorize",
        date=date,
        host=f"127.0.0.1:{gateway.port}",
        content_type="application/json",
        body=ECHO,
        version=version,
        access_key=gateway.access_key,
        secret_key=gateway.secret_key,
        scheme="Sorna",
        version_header=version_header.lower(),
    )
    headers = {
        "Date": date,
        version_header: version,
        "Content-Type": "application/json",
        "Authorization": authorization,
    }
    response = send(client, "GET", "/v2/authorize", ECHO, headers)
    if accepted:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 400
        assert response.json()["type"] == PROBS + "invalid-auth-params"
        assert response.json()["title"].endswith("(Unsupported API version)")


def test_checks_run_in_spec_order(gateway: RunningGateway, client: httpx.Client) -> None:
    # A bad date wins over a bad Authorization, which wins over an unknown key.
    headers = {"Date": "nonsense", "Authorization": "Bearer x", "X-Sorna-Version": API_VERSION}
    assert "Date/time" in send(client, "GET", "/v2/authorize", b"", headers).json()["title"]
    headers["Date"] = datetime.now(timezone.utc).isoformat()
    first = send(client, "GET", "/v2/authorize", b"", headers)
    assert first.status_code == 400
    assert first.json()["type"] == PROBS + "invalid-auth-params"
    headers["Authorization"] = "Sorna signMethod=HMAC-SHA256, credential=AKIANOPE:abc"
    assert send(client, "GET", "/v2/authorize", b"", headers).status_code == 401


def test_body_and_content_type_are_signed(gateway: RunningGateway, client: httpx.Client) -> None:
    headers = signed(gateway, "GET", "/v2/authorize", b'{"echo": 1}')
    assert send(client, "GET", "/v2/authorize", b'{"echo": 2}', headers).status_code == 401
    headers = signed(gateway, "GET", "/v2/authorize", ECHO, content_type="text/plain")
    headers["Content-Type"] = "application/json"
    assert send(client, "GET", "/v2/authorize", ECHO, headers).status_code == 401
    # Parameters of the content type are not signed.
    headers = signed(gateway, "GET", "/v2/authorize", ECHO)
    headers["Content-Type"] = "application/json; charset=utf-8"
    assert send(client, "GET", "/v2/authorize", ECHO, headers).status_code == 200


def test_absent_content_type_is_signed_as_octet_stream(
    gateway: RunningGateway, client: httpx.Client
) -> None:
    headers = signed(gateway, "GET", "/v2/authorize", content_type="application/octet-stream")
    del headers["Content-Type"]
    response = send(client, "GET", "/v2/authorize", b"", headers)
    assert response.status_code == 200
    assert response.json() == {"authorized": "yes", "echo": None}


@pytest.mark.parametrize("hash_name", ["sha384", "sha512"])
def test_other_hashes(gateway: RunningGateway, client: httpx.Client, hash_name: str) -> None:
    # Weaker or exotic hashes are refused: test_server_hardening.py.
    headers = signed(gateway, "GET", "/v2/authorize", ECHO, hash_name=hash_name)
    assert send(client, "GET", "/v2/authorize", ECHO, headers).status_code == 200


def test_authorize_body(gateway: RunningGateway, client: httpx.Client) -> None:
    bad = b"{not json"
    response = send(
        client, "GET", "/v2/authorize", bad, signed(gateway, "GET", "/v2/authorize", bad)
    )
    assert_like_reference(response, "23-authorize-malformed-json-body")
    listed = b"[1, 2]"
    response = send(
        client, "GET", "/v2/authorize", listed, signed(gateway, "GET", "/v2/authorize", listed)
    )
    assert response.status_code == 400
    # The 2017 server refused an empty body too (24); the spec makes the echo optional.
    empty = signed(gateway, "GET", "/v2/authorize", content_type="application/octet-stream")
    response = send(client, "GET", "/v2/authorize", b"", empty)
    assert response.status_code == 200
    assert response.json() == {"authorized": "yes", "echo": None}


def test_unsigned_pty_is_refused(gateway: RunningGateway, client: httpx.Client) -> None:
    path = "/v2/stream/kernel/614354afaab249e5a36c211ce8de53d1/pty"
    headers = signed(gateway, "GET", path, content_type="application/octet-stream")
    del headers["Authorization"]
    headers.update(
        {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "96DF+4gBnrLLVhMqZMbekw==",
        }
    )
    assert_like_reference(send(client, "GET", path, b"", headers), "42-stream-pty-unknown-kernel")
