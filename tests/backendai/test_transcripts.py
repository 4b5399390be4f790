"""The real backend.ai-manager 26.9.6, as recorded: signatures reproduced byte for byte, every
success body parsed by the SDK's models, every problem type mapped to the exception tree."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

import sorna_sdk
from sorna_sdk._dialects import BackendAI
from sorna_sdk._protocol import Response
from sorna_sdk.auth import InvalidAuthorization, parse_authorization, sign
from sorna_sdk.exceptions import APIStatusError
from sorna_sdk.models import (
    AuthorizeResponse,
    DestroyResult,
    HelloResponse,
    SessionCreated,
    SessionEvent,
    SessionInfo,
)

from ..conftest import DATA, backendai_transcript

#: The lab's fixture keypairs (public test values of the recorded lab, not secrets).
KEYS = {
    "AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AKIALABUSER00EXAMPLE": "labUserSecretKey000000000000000000000000",
    "AKIALABRATELIMIT2EXA": "labRateLimitSecretKey0000000000000000000",
}
SCENARIOS = sorted(
    p.stem for p in (DATA / "backendai-transcripts").glob("[0-9]*.json") if p.stem != "00-index"
)


def _header(headers: list[list[str]], name: str) -> str | None:
    return next((value for key, value in headers if key.lower() == name.lower()), None)


def _exchanges() -> Iterator[tuple[str, int, dict[str, Any]]]:
    for scenario in SCENARIOS:
        for index, exchange in enumerate(backendai_transcript(scenario)["exchanges"]):
            yield scenario, index, exchange


def _signed() -> list[tuple[str, int, dict[str, Any]]]:
    found = []
    for scenario, index, exchange in _exchanges():
        authorization = _header(exchange["request"]["headers"], "Authorization") or ""
        if "credential=" in authorization and authorization.startswith(("BackendAI ", "Sorna ")):
            found.append((scenario, index, exchange))
    return found


SIGNED = _signed()


def test_the_transcripts_are_all_here() -> None:
    assert len(SCENARIOS) == 77
    assert len(SIGNED) >= 95


def _recompute(exchange: dict[str, Any]) -> tuple[str, str] | None:
    """(what the SDK signs, what was sent), or None when the server refused before checking."""
    request, response = exchange["request"], exchange["response"]
    headers = request["headers"]
    sent = _header(headers, "Authorization") or ""
    try:
        parsed = parse_authorization(sent)
    except InvalidAuthorization:
        assert response["status"] == 400  # e.g. signMethod=HMAC-FOO
        return None
    date = _header(headers, "Date") or _header(headers, "X-BackendAI-Date")
    version_header = "X-BackendAI-Version"
    version = _header(headers, version_header)
    if version is None:
        version_header, version = "X-Sorna-Version", _header(headers, "X-Sorna-Version")
    if parsed.access_key not in KEYS or date is None or version is None:
        # Unknown key, no Date, no version header: refused before any signature check.
        assert response["status"] in (400, 401)
        return None
    mine = sign(
        method=request["method"],
        path=request["path"],
        date=date,
        host=_header(headers, "Host") or "",
        content_type=_header(headers, "Content-Type") or "application/octet-stream",
        body=request["body"].encode(),
        version=version,
        access_key=parsed.access_key,
        secret_key=KEYS[parsed.access_key],
        hash_name=parsed.hash_name,
        scheme=parsed.scheme,
        version_header=version_header,
        hash_body=False,
    )
    return mine, sent


def _mis_signed(exchange: dict[str, Any]) -> bool:
    response = exchange["response"]
    return response["status"] == 401 and b"signature mismatch" in response["body"].encode()


@pytest.mark.parametrize(
    ("scenario", "index", "exchange"), SIGNED, ids=[f"{s}#{i}" for s, i, _ in SIGNED]
)
def test_recorded_signatures_are_reproduced_byte_for_byte(
    scenario: str, index: int, exchange: dict[str, Any]
) -> None:
    pair = _recompute(exchange)
    if pair is None:
        return
    mine, sent = pair
    if _mis_signed(exchange):
        # The deliberately mis-signed requests: the server refused them, and so do we.
        assert mine != sent
    else:
        assert mine == sent, scenario


def test_signature_totals_match_the_lab_verifier() -> None:
    """91 reproduced, 6 deliberately wrong (as the lab's own verifier counts)."""
    pairs = [(exchange, _recompute(exchange)) for _, _, exchange in SIGNED]
    reproduced = [1 for exchange, pair in pairs if pair and pair[0] == pair[1]]
    wrong = [1 for exchange, pair in pairs if pair and pair[0] != pair[1] and _mis_signed(exchange)]
    assert (len(reproduced), len(wrong)) == (91, 6)


def test_the_sdk_signs_as_the_official_client_did() -> None:
    """Our own signer, fed the official client's request, yields its exact header."""
    exchange = backendai_transcript("05-auth-test-post-echo-official-client")["exchanges"][1]
    request = exchange["request"]
    headers = request["headers"]
    dialect = BackendAI("v9.20250722")
    policy = dialect.signing
    assert (policy.scheme, policy.version_header, policy.hash_body) == (
        "BackendAI",
        "X-BackendAI-Version",
        False,
    )
    from sorna_sdk.auth import HMACAuth, parse_date

    auth = HMACAuth(
        "AKIAIOSFODNN7EXAMPLE",
        KEYS["AKIAIOSFODNN7EXAMPLE"],
        version="v9.20250722",
        policy=policy,
        clock=lambda: parse_date(_header(headers, "Date") or ""),
    )
    signed = auth.signed_headers(
        "POST",
        "/auth/test",
        _header(headers, "Host") or "",
        "application/json",
        request["body"].encode(),
    )
    assert signed["Authorization"] == _header(headers, "Authorization")
    assert signed["X-BackendAI-Version"] == "v9.20250722"
    assert signed["Date"] == _header(headers, "Date")


def _response(exchange: dict[str, Any]) -> Response:
    raw = exchange["response"]
    return Response(
        status=raw["status"],
        headers={key: value for key, value in raw["headers"]},
        content=raw["body"].encode(),
        method=exchange["request"]["method"],
        url="http://127.0.0.1:8091" + exchange["request"]["path"],
    )


def _successes() -> list[tuple[str, int, dict[str, Any]]]:
    return [
        (scenario, index, exchange)
        for scenario, index, exchange in _exchanges()
        if 200 <= exchange["response"]["status"] < 300
    ]


SUCCESSES = _successes()


def _model_for(method: str, path: str) -> type[sorna_sdk.models.SornaModel] | None:
    route = path.split("?", 1)[0]
    if route == "/":
        return HelloResponse
    if route == "/auth/test":
        return AuthorizeResponse
    if method == "POST" and route == "/session":
        return SessionCreated
    if route.startswith("/session/_/"):
        return None  # /session/_/match: not part of the SDK
    if method == "GET" and route.startswith("/session/"):
        return SessionInfo
    if method == "DELETE":
        return DestroyResult
    raise AssertionError(f"no model for {method} {path}")


@pytest.mark.parametrize(
    ("scenario", "index", "exchange"), SUCCESSES, ids=[f"{s}#{i}" for s, i, _ in SUCCESSES]
)
def test_every_real_success_body_parses(
    scenario: str, index: int, exchange: dict[str, Any]
) -> None:
    request = exchange["request"]
    model = _model_for(request["method"], request["path"])
    if model is None:
        return
    body = json.loads(exchange["response"]["body"])
    parsed = model.model_validate(body)
    # Nothing is lost: every key of the real body is readable through the wire view.
    for key, value in body.items():
        assert key in parsed
        if not isinstance(parsed, SessionInfo):
            assert parsed[key] == value


def test_session_info_decodes_the_python_repr_fields() -> None:
    exchange = backendai_transcript("67-fake-agent-get-info")["exchanges"][-1]
    info = SessionInfo.model_validate_json(exchange["response"]["body"])
    assert info.status == "SCHEDULED"
    assert info.lang == "cr.backend.ai/stable/python:3.13-ubuntu24.04"
    assert info.num_queries_executed == 0 and info.age == 626
    assert info.occupied_slots == {"cpu": Decimal("1.000000"), "mem": Decimal("1140850688.000000")}
    assert info.requested_slots == info.occupying_slots
    assert info.occupied_shares == {} and info.environ == {}
    assert info.resource_opts == {"main1": {"shmem": 67108864}}
    assert info.status_info is None  # the server sends the string "None"
    assert info.container_id is None and info.tag == ""
    assert info.creation_time is not None and not isinstance(info.creation_time, str)
    assert info.creation_time.year == 2026
    assert info.idle_checks == {
        "session_lifetime": {
            "remaining": None,
            "remaining_time_type": "expire_after",
            "extra": None,
        }
    }
    # The raw strings stay available through the wire view.
    assert "occupiedSlots" in info


def test_unreadable_repr_fields_are_kept_as_strings() -> None:
    info = SessionInfo.model_validate(
        {
            "lang": "python",
            "age": 1,
            "numQueriesExecuted": 0,
            "occupiedSlots": "{'cpu': __import__('os').system('true')}",
            "environ": "not a mapping",
            "creationTime": "yesterday",
        }
    )
    assert info.occupied_slots == "{'cpu': __import__('os').system('true')}"
    assert info.environ == "not a mapping"
    assert info.creation_time == "yesterday"


def test_create_replies_new_and_reused() -> None:
    new = SessionCreated.model_validate_json(
        backendai_transcript("64-fake-agent-create-enqueue-only")["exchanges"][-1]["response"][
            "body"
        ]
    )
    assert new.created is True and new.status == "PENDING" and new.service_ports == []
    assert new.reference == "85a1da6a-97cb-4299-856b-1403195d1294"
    reused = SessionCreated.model_validate_json(
        backendai_transcript("65-fake-agent-create-reuse")["exchanges"][-1]["response"]["body"]
    )
    assert reused.created is False and reused.service_ports is None
    assert reused["service_ports"] is None  # the deprecated twin key is kept
    timeout = SessionCreated.model_validate_json(
        backendai_transcript("74-fake-agent-create-max-wait")["exchanges"][-1]["response"]["body"]
    )
    assert timeout.status == "TIMEOUT"


def test_the_recorded_session_event_parses() -> None:
    (raw,) = backendai_transcript("73-fake-agent-events")["client_view"]["returned"]["events"]
    event = SessionEvent.model_validate({**json.loads(raw["data"]), "event": raw["event"]})
    assert event.event == "session_preparing"
    assert event.reason == "passed-preconditions"
    assert event.session_name == "lab-fake-probe"
    assert event.session_id == "85a1da6a-97cb-4299-856b-1403195d1294"
    assert event.exit_code is None


#: (status, slug, error_code) -> the class users catch.
PROBLEMS: dict[tuple[int, str, str], type[APIStatusError]] = {
    (400, "generic-bad-request", "api_parsing_bad-request"): sorna_sdk.BadRequestError,
    (400, "generic-bad-request", "api_parsing_invalid-parameters"): sorna_sdk.BadRequestError,
    (400, "generic-bad-request", "backendai_generic_bad-request"): sorna_sdk.BadRequestError,
    (400, "invalid-auth-params", "user_auth_invalid-parameters"): sorna_sdk.InvalidAuthParamsError,
    # Every one of these in the transcripts is "resource group 'default' has no agents ...".
    (400, "invalid-api-params", "api_generic_invalid-parameters"): sorna_sdk.SchedulingFailedError,
    (400, "session-already-exists", "session_create_already-exists"): (
        sorna_sdk.SessionAlreadyExistsError
    ),
    (401, "auth-failed", "user_auth_unauthorized"): sorna_sdk.AuthenticationError,
    (403, "not-enough-permission", "permission_access_forbidden"): (
        sorna_sdk.InsufficientPrivilegeError
    ),
    (404, "entity-not-found", "session_read_not-found"): sorna_sdk.KernelNotFoundError,
    (404, "object-not-found", "session_read_not-found"): sorna_sdk.KernelNotFoundError,
    (404, "object-not-found", "image_read_not-found"): sorna_sdk.ImageNotFoundError,
    (404, "url-not-found", "api_read_not-found"): sorna_sdk.NotFoundError,
    (405, "method-not-allowed", "api_access_forbidden"): APIStatusError,
    (429, "rate-limit-exceeded", "api_access_unavailable"): sorna_sdk.RateLimitError,
    (500, "internal-server-error", "backendai_generic_internal-error"): (
        sorna_sdk.InternalServerError
    ),
    (500, "invalid-session-data", "session_read_invalid-data-format"): (
        sorna_sdk.InternalServerError
    ),
    (501, "not-implemented", "api_generic_not-implemented"): sorna_sdk.NotImplementedByServerError,
    (503, "agent-connection-unavailable", "agent_access_unavailable"): (
        sorna_sdk.ServiceUnavailableError
    ),
}


def _errors() -> list[tuple[str, int, dict[str, Any]]]:
    return [
        (scenario, index, exchange)
        for scenario, index, exchange in _exchanges()
        if exchange["response"]["status"] >= 400
    ]


ERRORS = _errors()


@pytest.mark.parametrize(
    ("scenario", "index", "exchange"), ERRORS, ids=[f"{s}#{i}" for s, i, _ in ERRORS]
)
def test_every_real_error_maps_to_its_class(
    scenario: str, index: int, exchange: dict[str, Any]
) -> None:
    body = json.loads(exchange["response"]["body"])
    error = BackendAI("v9.20250722").error(_response(exchange))
    status = exchange["response"]["status"]
    slug = body["type"].rsplit("/", 1)[-1]
    expected = PROBLEMS[(status, slug, body["error_code"])]
    assert type(error) is expected, (scenario, slug)
    assert error.status == status
    assert error.type == body["type"]
    assert error.title == body["title"]
    assert error.error_code == body["error_code"]
    assert error.msg == body.get("msg")
    assert error.data == body.get("data")
    if error.msg:
        assert error.msg[:40] in str(error)


def test_every_problem_type_of_the_transcripts_is_in_the_table() -> None:
    seen = set()
    for _scenario, _index, exchange in ERRORS:
        body = json.loads(exchange["response"]["body"])
        seen.add(
            (exchange["response"]["status"], body["type"].rsplit("/", 1)[-1], body["error_code"])
        )
    assert seen == set(PROBLEMS)


def test_no_agents_is_a_scheduling_failure_and_an_instance_not_available() -> None:
    exchange = backendai_transcript("37-session-create-no-agents-official-client")["exchanges"][-1]
    error = BackendAI("v9.20250722").error(_response(exchange))
    assert isinstance(error, sorna_sdk.SchedulingFailedError)
    assert isinstance(error, sorna_sdk.InstanceNotAvailableError)  # what Sorna v2 users catch
    assert error.status == 400
    assert "no agents serving any resource slot" in str(error)


def test_session_already_exists_names_the_existing_session() -> None:
    exchange = backendai_transcript("66-fake-agent-create-no-reuse")["exchanges"][-1]
    error = BackendAI("v9.20250722").error(_response(exchange))
    assert isinstance(error, sorna_sdk.SessionAlreadyExistsError)
    assert isinstance(error, sorna_sdk.BadRequestError)
    assert error.existing_session_id == "85a1da6a-97cb-4299-856b-1403195d1294"


def test_rate_limit_reset_is_read_in_seconds() -> None:
    exchange = backendai_transcript("59-rate-limit")["exchanges"][-1]
    error = BackendAI("v9.20250722").error(_response(exchange))
    assert isinstance(error, sorna_sdk.RateLimitError)
    assert error.retry_after == 900.0  # X-RateLimit-Reset: 900 (seconds, not 2017's ms)


def test_html_from_a_proxy_stays_a_typed_error() -> None:
    body = b"<html><body><h1>504 Gateway Time-out</h1>The server didn't respond.</body></html>"
    error = BackendAI("v9.20250722").error(
        Response(504, {"Content-Type": "text/html"}, body, "POST", "http://h/session")
    )
    assert isinstance(error, sorna_sdk.InternalServerError)
    assert error.status == 504 and error.problem is None
    assert "504 Gateway Time-out" in error.title


def test_a_reused_session_reports_host_ports() -> None:
    """26.x answers a reuse with ``host_ports``/``container_ports`` (seen in the live lab)."""
    body = {
        "sessionId": "x", "sessionName": "abc-session", "status": "TERMINATING", "created": False,
        "servicePorts": [{"name": "sshd", "protocol": "tcp", "host_ports": [30002],
                          "container_ports": [2200], "is_inference": False}],
    }  # fmt: skip
    reply = SessionCreated.model_validate(body)
    assert reply.service_ports is not None
    (port,) = reply.service_ports
    assert port.ports == [30002] and port.container_ports == [2200]
    assert reply.to_dict()["servicePorts"][0]["host_ports"] == [30002]
    assert port["is_inference"] is False
