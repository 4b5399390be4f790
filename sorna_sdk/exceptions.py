"""The errors raised by sorna_sdk, in one tree::

    SornaError
    ├── ConfigurationError            bad or missing configuration (names the variable)
    ├── InvalidArgumentError          a call's argument was refused before any I/O
    ├── APIConnectionError            the request got no response
    │   └── APITimeoutError
    ├── APIStatusError                the server answered 4xx/5xx (status, type, title, body)
    │   ├── BadRequestError                  400 generic-bad-request
    │   │   ├── InvalidAuthParamsError       400 invalid-auth-params
    │   │   └── InvalidAPIParamsError        400 invalid-api-params
    │   ├── AuthenticationError              401 auth-failed
    │   ├── NotFoundError                    404 generic-not-found
    │   │   ├── KernelNotFoundError          404 kernel-not-found
    │   │   └── InstanceNotFoundError        404 instance-not-found
    │   ├── QuotaExceededError               412 quota-exceeded
    │   ├── RateLimitError                   429 rate-limit-exceeded
    │   ├── InternalServerError              500 internal-server-error
    │   │   ├── KernelCreationFailedError    500 kernel-creation-failed
    │   │   ├── KernelDestructionFailedError 500 kernel-destruction-failed
    │   │   ├── KernelRestartFailedError     500 kernel-restart-failed
    │   │   └── KernelExecutionFailedError   500 kernel-execution-failed
    │   └── ServiceUnavailableError          503 service-unavailable
    │       ├── InstanceNotAvailableError    503 instance-not-available
    │       └── NotImplementedByServerError  503 not-implemented
    ├── APIResponseValidationError    a 2xx body that does not match the protocol
    ├── ExecutionError                a high-level run() could not finish (e.g. input needed)
    └── PtyError                      the terminal stream was refused or closed

Statuses with no problem type of their own map by status (405 gives
``APIStatusError``; any other 5xx ``InternalServerError``). Branch on the class
or on ``.type``, never on ``.title``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from ._constants import PROBLEM_BASE

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ExecutionError",
    "InstanceNotAvailableError",
    "InstanceNotFoundError",
    "InternalServerError",
    "InvalidAPIParamsError",
    "InvalidArgumentError",
    "InvalidAuthParamsError",
    "KernelCreationFailedError",
    "KernelDestructionFailedError",
    "KernelExecutionFailedError",
    "KernelNotFoundError",
    "KernelRestartFailedError",
    "NotFoundError",
    "NotImplementedByServerError",
    "PtyError",
    "QuotaExceededError",
    "RateLimitError",
    "ServiceUnavailableError",
    "SornaError",
    "error_from_response",
]

_EXCERPT = 200


class SornaError(Exception):
    """Base class of every error this package raises."""


class ConfigurationError(SornaError):
    """The configuration is missing or invalid."""


class InvalidArgumentError(SornaError, ValueError):
    """An argument was refused before anything was sent."""


class APIConnectionError(SornaError):
    """No response was received (connection refused, reset, DNS, TLS)."""

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.url = url


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class APIResponseValidationError(SornaError):
    """A successful response whose body does not match the protocol."""

    def __init__(self, message: str, *, status: int, body: bytes) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ExecutionError(SornaError):
    """A high-level run could not complete (for example, input was needed and none given)."""


class PtyError(SornaError):
    """The PTY stream was closed (``code``: the WebSocket close code) or misbehaved."""

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class APIStatusError(SornaError):
    """The server answered with an error status.

    Attributes: ``status`` (HTTP status), ``type`` (problem type URI, or
    ``"about:blank"`` when the body had none), ``title``, ``problem`` (the
    parsed JSON body, or ``None``), ``body`` (raw bytes) and ``headers``.
    """

    status_code: ClassVar[int | None] = None
    problem_type: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        status: int,
        type: str,
        title: str,
        problem: Mapping[str, Any] | None,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        method: str = "",
        url: str = "",
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.problem = problem
        self.body = body
        #: Response headers; lookups ignore case.
        self.headers: Mapping[str, str] = httpx.Headers(dict(headers or {}))
        self.method = method
        self.url = url
        where = f" ({method} {url})" if method else ""
        super().__init__(f"{status} {title} [{type}]{where}")

    @property
    def agent_details(self) -> Mapping[str, Any] | None:
        """The ``agent-details`` object of agent-side failures, if any."""
        details = (self.problem or {}).get("agent-details")
        return details if isinstance(details, Mapping) else None


class BadRequestError(APIStatusError):
    """400: the request was malformed."""

    status_code = 400
    problem_type = PROBLEM_BASE + "generic-bad-request"


class InvalidAuthParamsError(BadRequestError):
    """400: missing or malformed authentication headers, or clock skew."""

    problem_type = PROBLEM_BASE + "invalid-auth-params"


class InvalidAPIParamsError(BadRequestError):
    """400: missing or invalid API parameters."""

    problem_type = PROBLEM_BASE + "invalid-api-params"


class AuthenticationError(APIStatusError):
    """401: unknown access key or signature mismatch."""

    status_code = 401
    problem_type = PROBLEM_BASE + "auth-failed"


class NotFoundError(APIStatusError):
    """404: unknown URL path."""

    status_code = 404
    problem_type = PROBLEM_BASE + "generic-not-found"


class KernelNotFoundError(NotFoundError):
    """404: no such kernel (or not yours)."""

    problem_type = PROBLEM_BASE + "kernel-not-found"


class InstanceNotFoundError(NotFoundError):
    """404: no such agent instance."""

    problem_type = PROBLEM_BASE + "instance-not-found"


class QuotaExceededError(APIStatusError):
    """412: the keypair's concurrency limit is reached."""

    status_code = 412
    problem_type = PROBLEM_BASE + "quota-exceeded"


class RateLimitError(APIStatusError):
    """429: the keypair's query rate limit is reached."""

    status_code = 429
    problem_type = PROBLEM_BASE + "rate-limit-exceeded"


class InternalServerError(APIStatusError):
    """5xx: an unexpected server failure."""

    status_code = 500
    problem_type = PROBLEM_BASE + "internal-server-error"


class KernelCreationFailedError(InternalServerError):
    """500: the agent failed to create the kernel."""

    problem_type = PROBLEM_BASE + "kernel-creation-failed"


class KernelDestructionFailedError(InternalServerError):
    """500: the agent failed to destroy the kernel."""

    problem_type = PROBLEM_BASE + "kernel-destruction-failed"


class KernelRestartFailedError(InternalServerError):
    """500: the agent failed to restart the kernel."""

    problem_type = PROBLEM_BASE + "kernel-restart-failed"


class KernelExecutionFailedError(InternalServerError):
    """500: the agent failed to execute the code."""

    problem_type = PROBLEM_BASE + "kernel-execution-failed"


class ServiceUnavailableError(APIStatusError):
    """503: the server is not ready."""

    status_code = 503
    problem_type = PROBLEM_BASE + "service-unavailable"


class InstanceNotAvailableError(ServiceUnavailableError):
    """503: no capacity to start a kernel."""

    problem_type = PROBLEM_BASE + "instance-not-available"


class NotImplementedByServerError(ServiceUnavailableError):
    """503: the server does not implement this API query."""

    problem_type = PROBLEM_BASE + "not-implemented"


_ALL_STATUS_CLASSES: tuple[type[APIStatusError], ...] = (
    BadRequestError,
    InvalidAuthParamsError,
    InvalidAPIParamsError,
    AuthenticationError,
    NotFoundError,
    KernelNotFoundError,
    InstanceNotFoundError,
    QuotaExceededError,
    RateLimitError,
    InternalServerError,
    KernelCreationFailedError,
    KernelDestructionFailedError,
    KernelRestartFailedError,
    KernelExecutionFailedError,
    ServiceUnavailableError,
    InstanceNotAvailableError,
    NotImplementedByServerError,
)
#: Problem type URI -> exception class (spec §4).
PROBLEM_CLASSES: Mapping[str, type[APIStatusError]] = {
    cls.problem_type: cls for cls in _ALL_STATUS_CLASSES if cls.problem_type
}
#: Status -> class for bodies without a known problem type.
_STATUS_CLASSES: Mapping[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    412: QuotaExceededError,
    429: RateLimitError,
    500: InternalServerError,
    503: ServiceUnavailableError,
}


def error_from_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "",
    url: str = "",
) -> APIStatusError:
    """Map an error response to its exception: by problem type first, then by status."""
    problem = _parse_problem(body)
    problem_type = problem.get("type") if problem is not None else None
    title = problem.get("title") if problem is not None else None
    cls = PROBLEM_CLASSES.get(problem_type) if isinstance(problem_type, str) else None
    if cls is None or cls.status_code != status:
        cls = _STATUS_CLASSES.get(status)
        if cls is None:
            cls = InternalServerError if status >= 500 else APIStatusError
    if not isinstance(title, str) or not title:
        title = _excerpt(body) or f"HTTP {status}"
    return cls(
        status=status,
        type=problem_type if isinstance(problem_type, str) else "about:blank",
        title=title,
        problem=problem,
        body=body,
        headers=headers,
        method=method,
        url=url,
    )


def _parse_problem(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _excerpt(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"
