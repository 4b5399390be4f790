"""Problems raised by the local gateway's runtime; the HTTP layer maps them to RFC 7807 bodies."""

from __future__ import annotations

__all__ = [
    "GatewayProblem",
    "InvalidParameters",
    "InvalidUpload",
    "KernelBusy",
    "KernelCreationFailed",
    "KernelNotFound",
    "QuotaExceeded",
    "ServiceUnavailable",
    "SessionExists",
    "UnknownLanguage",
]


class GatewayProblem(Exception):
    """Base class: ``status`` is the HTTP status, ``problem`` the type suffix, ``title`` text."""

    status: int = 500
    problem: str = "internal-server-error"

    def __init__(self, title: str) -> None:
        super().__init__(title)
        self.title = title


class UnknownLanguage(GatewayProblem):
    """The requested language is not offered by this gateway."""

    status = 400
    problem = "invalid-api-params"


class InvalidParameters(GatewayProblem):
    """Bad mode, options or code types in a request."""

    status = 400
    problem = "invalid-api-params"


class KernelNotFound(GatewayProblem):
    """No such kernel, or it was destroyed or died."""

    status = 404
    problem = "kernel-not-found"


class KernelBusy(GatewayProblem):
    """New code was sent while the kernel is still running (or waiting in) another run."""

    status = 409
    problem = "kernel-busy"


class SessionExists(GatewayProblem):
    """A session of that name exists and the caller asked not to reuse it."""

    status = 400
    problem = "session-already-exists"

    def __init__(self, existing_id: str) -> None:
        super().__init__("The session already exists but you requested not to reuse existing one.")
        self.existing_id = existing_id


class QuotaExceeded(GatewayProblem):
    """The owner already has as many living kernels as allowed."""

    status = 412
    problem = "quota-exceeded"


class InvalidUpload(GatewayProblem):
    """An uploaded file name or size was rejected."""

    status = 400
    problem = "invalid-api-params"


class KernelCreationFailed(GatewayProblem):
    """The kernel's driver process failed to start."""

    status = 500
    problem = "kernel-creation-failed"


class ServiceUnavailable(GatewayProblem):
    """The gateway cannot serve the request now, e.g. because it is shutting down."""

    status = 503
    problem = "service-unavailable"
