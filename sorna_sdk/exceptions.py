"""The errors raised by sorna_sdk, in one tree::

    SornaError
    ├── ConfigurationError            bad or missing configuration (names the variable)
    │   └── UnsupportedAPIVersionError    version negotiation found no common version
    ├── InvalidArgumentError          a call's argument was refused before any I/O
    │   └── UnsupportedOperationError     the server's API version has no such operation
    ├── APIConnectionError            the request got no response
    │   └── APITimeoutError
    ├── APIStatusError                the server answered 4xx/5xx (status, type, title, body)
    │   ├── BadRequestError                  400 generic-bad-request
    │   │   ├── InvalidAuthParamsError       400 invalid-auth-params
    │   │   ├── InvalidAPIParamsError        400 invalid-api-params
    │   │   └── SessionAlreadyExistsError    400 session-already-exists
    │   ├── AuthenticationError              401 auth-failed
    │   ├── PermissionDeniedError            403 generic-forbidden
    │   │   └── InsufficientPrivilegeError   403 insufficient-privilege
    │   ├── NotFoundError                    404 generic-not-found
    │   │   ├── KernelNotFoundError          404 kernel-not-found
    │   │   ├── ImageNotFoundError           404 (Backend.AI: an unknown image reference)
    │   │   └── InstanceNotFoundError        404 instance-not-found
    │   ├── InvalidKernelStatusError         409 (Backend.AI: invalid-kernel-status)
    │   │   └── KernelBusyError              409 kernel-busy
    │   ├── QuotaExceededError               412 quota-exceeded
    │   ├── RateLimitError                   429 rate-limit-exceeded
    │   ├── InternalServerError              500 internal-server-error
    │   │   ├── KernelCreationFailedError    500 kernel-creation-failed
    │   │   ├── KernelDestructionFailedError 500 kernel-destruction-failed
    │   │   ├── KernelRestartFailedError     500 kernel-restart-failed
    │   │   └── KernelExecutionFailedError   500 kernel-execution-failed
    │   └── ServiceUnavailableError          503 service-unavailable
    │       ├── InstanceNotAvailableError    503 instance-not-available
    │       │   └── SchedulingFailedError    (Backend.AI: no agent can run the session)
    │       └── NotImplementedByServerError  503 not-implemented (501 on Backend.AI)
    ├── APIResponseValidationError    a 2xx body that does not match the protocol
    ├── ExecutionError                a high-level run() could not finish (e.g. input needed)
    │   ├── ProgramError                 the program failed (raise_for_error(): .result, .error)
    │   └── ExecutionTimeoutError        run(timeout=)/execute(timeout=) expired (.result so far)
    ├── PtyError                      the terminal stream was refused or closed
    └── StreamError                   an execute or event stream misbehaved or was cut
        └── StreamResumeError            a dropped live run could not be resumed (.result so far)

The slugs above are those of the Sorna v2 API (``https://api.sorna.io/probs/``); each wire
dialect maps its own problem types (Backend.AI: ``https://api.backend.ai/probs/``) onto the
same classes, so code that catches ``KernelNotFoundError`` works against either server.
A class names a meaning; ``.status`` is what the server actually sent. Statuses with no
problem type of their own map by status (405 gives ``APIStatusError``; any other 5xx
``InternalServerError``). Branch on the class or on ``.type``, never on ``.title``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, cast

import httpx

from ._json import is_object
from ._problems import by_name

if TYPE_CHECKING:
    from .models.execution import ExecutionResult, RunError

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ExecutionError",
    "ExecutionTimeoutError",
    "ImageNotFoundError",
    "InstanceNotAvailableError",
    "InstanceNotFoundError",
    "InsufficientPrivilegeError",
    "InternalServerError",
    "InvalidAPIParamsError",
    "InvalidArgumentError",
    "InvalidAuthParamsError",
    "InvalidKernelStatusError",
    "KernelBusyError",
    "KernelCreationFailedError",
    "KernelDestructionFailedError",
    "KernelExecutionFailedError",
    "KernelNotFoundError",
    "KernelRestartFailedError",
    "NotFoundError",
    "NotImplementedByServerError",
    "PermissionDeniedError",
    "ProgramError",
    "PtyError",
    "QuotaExceededError",
    "RateLimitError",
    "SchedulingFailedError",
    "ServiceUnavailableError",
    "SessionAlreadyExistsError",
    "SornaError",
    "StreamError",
    "StreamResumeError",
    "UnsupportedAPIVersionError",
    "UnsupportedOperationError",
    "build_error",
    "error_from_response",
]

_EXCERPT = 200


class SornaError(Exception):
    """Base class of every error this package raises."""


class ConfigurationError(SornaError):
    """The configuration is missing or invalid."""


class UnsupportedAPIVersionError(ConfigurationError):
    """Version negotiation failed: the server is too old, or did not say its version.

    ``server_version`` is what the server reported (``None`` if it said nothing usable).
    """

    def __init__(self, message: str, *, server_version: str | None = None) -> None:
        super().__init__(message)
        self.server_version: str | None = server_version
        """The version the server reported (``None`` if it said nothing usable)."""


class InvalidArgumentError(SornaError, ValueError):
    """An argument was refused before anything was sent."""


class UnsupportedOperationError(InvalidArgumentError):
    """The API version this session speaks has no such operation (nothing was sent)."""


class APIConnectionError(SornaError):
    """No response was received (connection refused, reset, DNS, TLS)."""

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.method: str = method
        """The HTTP method of the failed request."""
        self.url: str = url
        """The URL of the failed request."""


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class APIResponseValidationError(SornaError):
    """A successful response whose body does not match the protocol."""

    def __init__(self, message: str, *, status: int, body: bytes) -> None:
        super().__init__(message)
        self.status: int = status
        """The HTTP status of the response."""
        self.body: bytes = body
        """The raw response body."""


class ExecutionError(SornaError):
    """A high-level run could not complete (for example, input was needed and none given)."""


class ProgramError(ExecutionError):
    """The program failed (``result.raise_for_error()``).

    ``result`` is the whole run; ``error`` its :class:`~sorna_sdk.models.RunError`, whose
    ``name``, ``value`` and ``traceback`` are also attributes of the exception.
    """

    def __init__(self, result: ExecutionResult, error: RunError) -> None:
        super().__init__(f"the program failed: {error}")
        self.result: ExecutionResult = result
        """The whole run (merged console, final status)."""
        self.error: RunError = error
        """Why the run failed."""
        self.name: str = error.name
        """The exception's name (``ZeroDivisionError``, ``TypeError``, ``LuaError``...)."""
        self.value: str = error.value
        """The exception's message."""
        self.traceback: list[str] = list(error.traceback)
        """The traceback lines, as the kernel printed them."""


class ExecutionTimeoutError(ExecutionError):
    """A ``run(timeout=)`` / ``execute(timeout=)`` deadline passed; the run was interrupted.

    ``result`` holds the output received so far (merged), ``timeout`` the deadline in
    seconds. The kernel stays usable: its handle collects the interrupted run's end first.
    """

    def __init__(self, message: str, *, result: ExecutionResult, timeout: float) -> None:
        super().__init__(message)
        self.result: ExecutionResult = result
        """The output received before the deadline (merged)."""
        self.timeout: float = timeout
        """The deadline, in seconds."""


class StreamError(SornaError):
    """An execute stream or an event stream was refused, cut, or sent something unexpected."""


class StreamResumeError(StreamError):
    """A live run's connection dropped and the run cannot be continued (a server that names
    no runs, or one that no longer has it). ``result`` holds the output received so far."""

    def __init__(self, message: str, *, result: ExecutionResult | None = None) -> None:
        super().__init__(message)
        self.result: ExecutionResult | None = result
        """The output received before the connection dropped, if any."""


class PtyError(SornaError):
    """The PTY stream was closed (``code``: the WebSocket close code) or misbehaved."""

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code: int | None = code
        """The WebSocket close code, if the stream was closed."""
        self.reason: str = reason
        """The close reason the server sent (may be empty)."""


class APIStatusError(SornaError):
    """The server answered with an error status.

    Attributes: ``status`` (HTTP status), ``type`` (problem type URI, or
    ``"about:blank"`` when the body had none), ``title``, ``problem`` (the
    parsed JSON body, or ``None``), ``body`` (raw bytes), ``headers``, and
    ``retry_after`` (seconds the server asked to wait, when it said).
    Backend.AI's extra members are ``error_code``, ``msg`` and ``data``.
    """

    status_code: ClassVar[int | None] = None
    """The HTTP status this class stands for (``None``: any)."""
    problem_type: ClassVar[str | None] = None
    """The Sorna problem type URI this class stands for, if any."""

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
        retry_after: float | None = None,
    ) -> None:
        self.status: int = status
        """The HTTP status."""
        self.type: str = type
        """The problem type URI (``"about:blank"`` when the body had none)."""
        self.title: str = title
        """The problem's short human-readable summary."""
        self.problem: Mapping[str, Any] | None = problem
        """The parsed JSON body, or ``None``."""
        self.body: bytes = body
        """The raw response body."""
        self.headers: Mapping[str, str] = httpx.Headers(dict(headers or {}))
        """Response headers; lookups ignore case."""
        self.method: str = method
        """The HTTP method of the request."""
        self.url: str = url
        """The URL of the request."""
        self.retry_after: float | None = retry_after
        """Seconds the server asked to wait before retrying, when it said."""
        where = f" ({method} {url})" if method else ""
        detail = self.msg
        if detail and detail not in title:
            separator = " " if title.endswith((".", "!", "?")) else ": "
            detail = separator + _one_line(detail)
        else:
            detail = ""
        super().__init__(f"{status} {title}{detail} [{type}]{where}")

    @property
    def error_code(self) -> str | None:
        """Backend.AI's machine-readable ``error_code`` (``domain_operation_detail``)."""
        value = (self.problem or {}).get("error_code")
        return value if isinstance(value, str) else None

    @property
    def msg(self) -> str | None:
        """The server's human-readable detail (``msg``, or RFC 7807 ``detail``)."""
        problem = self.problem or {}
        value = problem.get("msg", problem.get("detail"))
        return value if isinstance(value, str) else None

    @property
    def data(self) -> Any:
        """Backend.AI's ``data`` member (structured detail; its shape depends on the type)."""
        return (self.problem or {}).get("data")

    @property
    def agent_details(self) -> Mapping[str, Any] | None:
        """The ``agent-details`` object of agent-side failures, if any."""
        details = (self.problem or {}).get("agent-details")
        return cast("Mapping[str, Any]", details) if isinstance(details, Mapping) else None


class BadRequestError(APIStatusError):
    """400: the request was malformed."""

    status_code: ClassVar[int | None] = 400
    problem_type: ClassVar[str | None] = by_name("bad-request").sorna_type


class InvalidAuthParamsError(BadRequestError):
    """400: missing or malformed authentication headers, or clock skew."""

    problem_type: ClassVar[str | None] = by_name("invalid-auth-params").sorna_type


class InvalidAPIParamsError(BadRequestError):
    """400: missing or invalid API parameters."""

    problem_type: ClassVar[str | None] = by_name("invalid-api-params").sorna_type


class SessionAlreadyExistsError(BadRequestError):
    """400: a session with that name exists and reuse was not allowed (Backend.AI)."""

    problem_type: ClassVar[str | None] = None

    @property
    def existing_session_id(self) -> str | None:
        """The id of the session that already has the name, when the server said."""
        data = self.data
        value = (
            cast("Mapping[str, object]", data).get("existingSessionId")
            if isinstance(data, Mapping)
            else None
        )
        return value if isinstance(value, str) else None


class AuthenticationError(APIStatusError):
    """401: unknown access key or signature mismatch."""

    status_code: ClassVar[int | None] = 401
    problem_type: ClassVar[str | None] = by_name("auth-failed").sorna_type


class PermissionDeniedError(APIStatusError):
    """403: the credentials are valid but may not do this."""

    status_code: ClassVar[int | None] = 403
    problem_type: ClassVar[str | None] = None


class InsufficientPrivilegeError(PermissionDeniedError):
    """403: the user's role lacks a permission the operation needs (Backend.AI)."""


class NotFoundError(APIStatusError):
    """404: unknown URL path."""

    status_code: ClassVar[int | None] = 404
    problem_type: ClassVar[str | None] = by_name("url-not-found").sorna_type


class KernelNotFoundError(NotFoundError):
    """404: no such kernel (or not yours)."""

    problem_type: ClassVar[str | None] = by_name("kernel-not-found").sorna_type


class InstanceNotFoundError(NotFoundError):
    """404: no such agent instance."""

    problem_type: ClassVar[str | None] = by_name("instance-not-found").sorna_type


class ImageNotFoundError(NotFoundError):
    """404: the server knows no image (language) by that reference (Backend.AI)."""

    problem_type: ClassVar[str | None] = None


class InvalidKernelStatusError(APIStatusError):
    """409: the kernel is not in a state that allows this (e.g. not running yet)."""

    status_code: ClassVar[int | None] = 409
    problem_type: ClassVar[str | None] = None


class KernelBusyError(InvalidKernelStatusError):
    """409: the kernel is running another program; collect it, or interrupt it, first."""

    problem_type: ClassVar[str | None] = by_name("kernel-busy").sorna_type


class QuotaExceededError(APIStatusError):
    """412: the keypair's concurrency limit is reached."""

    status_code: ClassVar[int | None] = 412
    problem_type: ClassVar[str | None] = by_name("quota-exceeded").sorna_type


class RateLimitError(APIStatusError):
    """429: the keypair's query rate limit is reached."""

    status_code: ClassVar[int | None] = 429
    problem_type: ClassVar[str | None] = by_name("rate-limit-exceeded").sorna_type


class InternalServerError(APIStatusError):
    """5xx: an unexpected server failure."""

    status_code: ClassVar[int | None] = 500
    problem_type: ClassVar[str | None] = by_name("internal-server-error").sorna_type


class KernelCreationFailedError(InternalServerError):
    """500: the agent failed to create the kernel."""

    problem_type: ClassVar[str | None] = by_name("kernel-creation-failed").sorna_type


class KernelDestructionFailedError(InternalServerError):
    """500: the agent failed to destroy the kernel."""

    problem_type: ClassVar[str | None] = by_name("kernel-destruction-failed").sorna_type


class KernelRestartFailedError(InternalServerError):
    """500: the agent failed to restart the kernel."""

    problem_type: ClassVar[str | None] = by_name("kernel-restart-failed").sorna_type


class KernelExecutionFailedError(InternalServerError):
    """500: the agent failed to execute the code."""

    problem_type: ClassVar[str | None] = by_name("kernel-execution-failed").sorna_type


class ServiceUnavailableError(APIStatusError):
    """503: the server is not ready."""

    status_code: ClassVar[int | None] = 503
    problem_type: ClassVar[str | None] = by_name("service-unavailable").sorna_type


class InstanceNotAvailableError(ServiceUnavailableError):
    """503: no capacity to start a kernel."""

    problem_type: ClassVar[str | None] = by_name("instance-not-available").sorna_type


class SchedulingFailedError(InstanceNotAvailableError):
    """No agent can run the session: none in the resource group, none with free capacity,
    or the scheduler refused it (Backend.AI answers 400 or 503 for these)."""

    problem_type: ClassVar[str | None] = None


class NotImplementedByServerError(ServiceUnavailableError):
    """503: the server does not implement this API query."""

    problem_type: ClassVar[str | None] = by_name("not-implemented").sorna_type


_ALL_STATUS_CLASSES: tuple[type[APIStatusError], ...] = (
    BadRequestError,
    InvalidAuthParamsError,
    InvalidAPIParamsError,
    AuthenticationError,
    NotFoundError,
    KernelNotFoundError,
    InstanceNotFoundError,
    KernelBusyError,
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
STATUS_CLASSES: Mapping[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: InvalidKernelStatusError,
    412: QuotaExceededError,
    429: RateLimitError,
    500: InternalServerError,
    503: ServiceUnavailableError,
}


def status_class(status: int) -> type[APIStatusError]:
    """The class for an error status whose body names no known problem type."""
    cls = STATUS_CLASSES.get(status)
    if cls is None:
        cls = InternalServerError if status >= 500 else APIStatusError
    return cls


def error_from_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "",
    url: str = "",
    retry_after: float | None = None,
) -> APIStatusError:
    """Map a Sorna v2 error response to its exception: by problem type first, then by status."""
    problem = parse_problem(body)
    problem_type = problem.get("type") if problem is not None else None
    cls = PROBLEM_CLASSES.get(problem_type) if isinstance(problem_type, str) else None
    if cls is None or cls.status_code != status:
        cls = status_class(status)
    return build_error(
        cls, status, body, problem, headers, method=method, url=url, retry_after=retry_after
    )


def build_error(
    cls: type[APIStatusError],
    status: int,
    body: bytes,
    problem: dict[str, Any] | None,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "",
    url: str = "",
    retry_after: float | None = None,
) -> APIStatusError:
    """Instantiate ``cls`` for one error response (title falls back to a body excerpt)."""
    problem_type = problem.get("type") if problem is not None else None
    title = problem.get("title") if problem is not None else None
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
        retry_after=retry_after,
    )


def parse_problem(body: bytes) -> dict[str, Any] | None:
    """The JSON object of an error body, or ``None`` (HTML from a proxy, empty, ...)."""
    try:
        parsed: object = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed if is_object(parsed) else None


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _excerpt(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"
