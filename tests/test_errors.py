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


# -- errors of runs (structured, or derived from a Backend.AI server's stderr) ----------

PY_TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "<string>", line 1, in <module>\n'
    "ZeroDivisionError: division by zero\n"
)


def _failed(stderr: str, exit_code: int | None = 1, **extra: object) -> sorna_sdk.ExecutionResult:
    return sorna_sdk.ExecutionResult.model_validate(
        {"status": "finished", "exitCode": exit_code, "console": [["stderr", stderr]], **extra}
    )


def test_the_wire_error_is_used_as_sent() -> None:
    error = {
        "name": "ValueError",
        "value": "bad",
        "traceback": ["Traceback...\n", "ValueError: bad\n"],
    }
    result = _failed("whatever", error=error)
    assert result.error == sorna_sdk.RunError(**error)  # type: ignore[arg-type]
    assert result["error"] == error


@pytest.mark.parametrize(
    ("stderr", "exit_code", "name", "value"),
    [
        (PY_TRACEBACK, 1, "ZeroDivisionError", "division by zero"),
        # ANSI colours (IPython-style) are stripped first.
        ("\x1b[31mTraceback (most recent call last):\x1b[0m\n  File \"x\", line 1\n"
         "\x1b[1;31mKeyError\x1b[0m: 'k'\n", 1, "KeyError", "'k'"),
        # A real 2017 server says no exit code: a traceback is still recognised.
        (PY_TRACEBACK, None, "ZeroDivisionError", "division by zero"),
        ('  File "<string>", line 1\n    1 +\n       ^\nSyntaxError: invalid syntax\n', 1,
         "SyntaxError", "invalid syntax"),
        ("/w/main.js:1\nthrow new TypeError('nope')\n^\n\nTypeError: nope\n"
         "    at Object.<anonymous> (/w/main.js:1:7)\n    at node:internal/main:1:1\n",
         1, "TypeError", "nope"),
        ("Uncaught ReferenceError: x is not defined\n", 1, "ReferenceError", "x is not defined"),
        ('lua: [string "main"]:1: attempt to call a nil value (global \'f\')\nstack traceback:\n'
         "\t[C]: in ?\n", 1, "LuaError", "attempt to call a nil value (global 'f')"),
        ("ls: cannot access 'nope': No such file or directory\n", 2, "NonZeroExit",
         "ls: cannot access 'nope': No such file or directory"),
        ("", 3, "NonZeroExit", "exit code 3"),
    ],
)  # fmt: skip
def test_errors_derived_from_stderr(
    stderr: str, exit_code: int | None, name: str, value: str
) -> None:
    error = _failed(stderr, exit_code).error
    assert error is not None
    assert (error.name, error.value) == (name, value)
    assert all(isinstance(line, str) for line in error.traceback)


def test_no_error_for_success_warnings_or_unfinished_runs() -> None:
    assert _failed("DeprecationWarning: old\n", 0).error is None
    assert _failed("", None).error is None
    running = sorna_sdk.ExecutionResult.model_validate(
        {"status": "continued", "console": [["stderr", PY_TRACEBACK]]}
    )
    assert running.error is None
    assert running.raise_for_error() is running


def test_raise_for_error_raises_a_program_error_with_the_result() -> None:
    result = _failed(PY_TRACEBACK)
    with pytest.raises(sorna_sdk.ProgramError) as caught:
        result.raise_for_error()
    assert isinstance(caught.value, sorna_sdk.ExecutionError)
    assert caught.value.result is result
    assert caught.value.name == "ZeroDivisionError" and caught.value.value == "division by zero"
    assert caught.value.traceback[0].startswith("Traceback")
    assert "ZeroDivisionError: division by zero" in str(caught.value)


def test_exec_timeout_and_interrupted_runs_have_errors() -> None:
    timed_out = sorna_sdk.ExecutionResult(status="exec-timeout")
    assert timed_out.error is not None and timed_out.error.name == "ExecTimeout"
    stopped = sorna_sdk.ExecutionResult(status="interrupted")
    assert stopped.error is not None and stopped.error.name == "KeyboardInterrupt"


def test_timeout_and_resume_errors_carry_results() -> None:
    so_far = sorna_sdk.ExecutionResult(status="continued")
    timeout = sorna_sdk.ExecutionTimeoutError("late", result=so_far, timeout=2.0)
    assert isinstance(timeout, sorna_sdk.ExecutionError) and timeout.result is so_far
    resume = sorna_sdk.StreamResumeError("gone", result=so_far)
    assert isinstance(resume, sorna_sdk.StreamError) and resume.result is so_far
