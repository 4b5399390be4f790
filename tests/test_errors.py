"""Error mapping: every problem type of spec §4, literal transcript bodies, non-JSON bodies."""

from __future__ import annotations

import pytest

import sorna_sdk
from sorna_sdk.exceptions import APIStatusError, error_from_response

from .conftest import transcript_response

P = "https://api.sorna.io/probs/"

PROBLEM_TYPES = [
    (400, "generic-bad-request", sorna_sdk.BadRequestError),
    (400, "invalid-auth-params", sorna_sdk.InvalidAuthParamsError),
    (400, "invalid-api-params", sorna_sdk.InvalidAPIParamsError),
    (401, "auth-failed", sorna_sdk.AuthenticationError),
    (404, "generic-not-found", sorna_sdk.NotFoundError),
    (404, "kernel-not-found", sorna_sdk.KernelNotFoundError),
    (404, "instance-not-found", sorna_sdk.InstanceNotFoundError),
    (412, "quota-exceeded", sorna_sdk.QuotaExceededError),
    (429, "rate-limit-exceeded", sorna_sdk.RateLimitError),
    (500, "internal-server-error", sorna_sdk.InternalServerError),
    (500, "kernel-creation-failed", sorna_sdk.KernelCreationFailedError),
    (500, "kernel-destruction-failed", sorna_sdk.KernelDestructionFailedError),
    (500, "kernel-restart-failed", sorna_sdk.KernelRestartFailedError),
    (500, "kernel-execution-failed", sorna_sdk.KernelExecutionFailedError),
    (503, "service-unavailable", sorna_sdk.ServiceUnavailableError),
    (503, "instance-not-available", sorna_sdk.InstanceNotAvailableError),
    (503, "not-implemented", sorna_sdk.NotImplementedByServerError),
]


@pytest.mark.parametrize(("status", "suffix", "cls"), PROBLEM_TYPES)
def test_each_problem_type_maps_to_its_own_class(
    status: int, suffix: str, cls: type[APIStatusError]
) -> None:
    body = f'{{"type": "{P}{suffix}", "title": "Some title."}}'.encode()
    error = error_from_response(status, body, {"Content-Type": "application/problem+json"})
    assert type(error) is cls
    assert isinstance(error, sorna_sdk.SornaError) and isinstance(error, Exception)
    assert error.status == status
    assert error.type == P + suffix
    assert error.title == "Some title."
    assert error.problem == {"type": P + suffix, "title": "Some title."}
    assert error.body == body


def test_every_problem_class_is_distinct() -> None:
    assert len({cls for _, _, cls in PROBLEM_TYPES}) == len(PROBLEM_TYPES)


@pytest.mark.parametrize(
    ("name", "cls", "status"),
    [
        ("25-get-or-create-no-agents.json", sorna_sdk.InstanceNotAvailableError, 503),
        ("31-get-info-unknown-kernel.json", sorna_sdk.KernelNotFoundError, 404),
        ("29-get-or-create-quota-exceeded.json", sorna_sdk.QuotaExceededError, 412),
        ("41-rate-limit.json", sorna_sdk.RateLimitError, 429),
        ("08-authorize-wrong-secret.json", sorna_sdk.AuthenticationError, 401),
        ("10-authorize-missing-date.json", sorna_sdk.InvalidAuthParamsError, 400),
        ("27-get-or-create-missing-token.json", sorna_sdk.InvalidAPIParamsError, 400),
        ("36-unknown-path.json", sorna_sdk.NotFoundError, 404),
        ("39-not-implemented-stub.json", sorna_sdk.NotImplementedByServerError, 503),
        ("18-authz-garbage-params.json", sorna_sdk.InternalServerError, 500),
    ],
)
def test_real_2017_bodies_map_to_typed_errors(
    name: str, cls: type[APIStatusError], status: int
) -> None:
    response = transcript_response(name)
    error = error_from_response(response["status"], response["body"], response["headers"])
    assert type(error) is cls
    assert error.status == status
    assert error.title and error.title in str(error)
    assert error.headers["Content-Type"].startswith("application/problem+json")


def test_html_503_from_a_proxy_is_a_typed_error_with_an_excerpt() -> None:
    body = b"<html><head><title>503 Service Temporarily Unavailable</title></head></html>"
    error = error_from_response(503, body, {"Content-Type": "text/html"})
    assert type(error) is sorna_sdk.ServiceUnavailableError
    assert error.problem is None and error.type == "about:blank"
    assert "503 Service Temporarily Unavailable" in error.title
    assert "503" in str(error)


def test_empty_and_unknown_status_bodies() -> None:
    empty = error_from_response(502, b"")
    assert isinstance(empty, sorna_sdk.InternalServerError) and empty.title == "HTTP 502"
    teapot = error_from_response(418, b"I'm a teapot")
    assert type(teapot) is APIStatusError and teapot.title == "I'm a teapot"
    huge = error_from_response(400, b"x" * 10_000)
    assert type(huge) is sorna_sdk.BadRequestError and len(huge.title) <= 200


def test_type_wins_over_title_and_status_guards_type() -> None:
    # A known type with a reworded title still maps by type.
    error = error_from_response(404, f'{{"type": "{P}kernel-not-found", "title": "Gone"}}'.encode())
    assert type(error) is sorna_sdk.KernelNotFoundError
    # A type that contradicts the status falls back to the status.
    odd = error_from_response(400, f'{{"type": "{P}kernel-not-found", "title": "x"}}'.encode())
    assert type(odd) is sorna_sdk.BadRequestError


def test_agent_details_are_exposed() -> None:
    body = (
        f'{{"type": "{P}kernel-creation-failed", "title": "t", '
        '"agent-details": {"type": "x", "title": "y", "exception": "boom"}}'
    ).encode()
    error = error_from_response(500, body)
    assert error.agent_details == {"type": "x", "title": "y", "exception": "boom"}
