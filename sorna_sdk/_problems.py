"""Every problem type of both wire dialects, written once.

The client maps them to exception classes (:mod:`sorna_sdk.exceptions`,
:mod:`sorna_sdk._dialects.backendai`); the local gateway raises them and renders them in the
dialect of each request (``sorna_sdk.local._http.problems``). A :class:`Problem` names one
meaning; each dialect says how it spells that meaning on the wire (status, type slug, and
for Backend.AI the ``error_code``), or that it has no such problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "BACKENDAI_BASE",
    "CLIENT_ONLY",
    "PROBLEMS",
    "SORNA_BASE",
    "Problem",
    "Spelling",
    "by_name",
]

SORNA_BASE: Final = "https://api.sorna.io/probs/"
BACKENDAI_BASE: Final = "https://api.backend.ai/probs/"


@dataclass(frozen=True)
class Spelling:
    """How one dialect writes a problem: status, type slug, title (and Backend.AI's code)."""

    status: int
    slug: str
    title: str
    error_code: str | None = None

    def type_uri(self, base: str) -> str:
        """The full problem type URI under ``base``."""
        return base + self.slug


@dataclass(frozen=True)
class Problem:
    """One meaning, spelt by each dialect that has it."""

    name: str
    sorna: Spelling | None
    backendai: Spelling | None

    @property
    def sorna_type(self) -> str | None:
        """The Sorna v2 type URI (``None`` where the 2017 API has no such problem)."""
        return self.sorna.type_uri(SORNA_BASE) if self.sorna is not None else None

    @property
    def backendai_type(self) -> str | None:
        """The Backend.AI type URI (``None`` where Backend.AI has no such problem)."""
        return self.backendai.type_uri(BACKENDAI_BASE) if self.backendai is not None else None


def _p(name: str, sorna: Spelling | None, backendai: Spelling | None) -> Problem:
    return Problem(name, sorna, backendai)


_AUTH_TITLE = "Missing or invalid authorization parameters."
_PARAMS_TITLE = "Missing or invalid API parameters."
_MISMATCH = "Credential/signature mismatch."

#: What the local gateway raises (and the client understands), in both dialects.
PROBLEMS: Final[tuple[Problem, ...]] = (
    _p(
        "bad-request",
        Spelling(400, "generic-bad-request", "Bad request."),
        Spelling(400, "generic-bad-request", "Bad request.", "backendai_generic_bad-request"),
    ),
    _p(
        "invalid-auth-params",
        Spelling(400, "invalid-auth-params", _AUTH_TITLE),
        Spelling(400, "invalid-auth-params", _AUTH_TITLE, "user_auth_invalid-parameters"),
    ),
    _p(
        "invalid-api-params",
        Spelling(400, "invalid-api-params", _PARAMS_TITLE),
        Spelling(400, "invalid-api-params", _PARAMS_TITLE, "api_generic_invalid-parameters"),
    ),
    _p(
        "auth-failed",
        Spelling(401, "auth-failed", _MISMATCH),
        Spelling(401, "auth-failed", _MISMATCH, "user_auth_unauthorized"),
    ),
    _p(
        "url-not-found",
        Spelling(404, "generic-not-found", "Unknown URL path."),
        Spelling(404, "url-not-found", "Unknown URL path.", "api_read_not-found"),
    ),
    _p(
        "kernel-not-found",
        Spelling(404, "kernel-not-found", "No such kernel."),
        Spelling(404, "object-not-found", "No such session.", "session_read_not-found"),
    ),
    _p(
        "image-not-found",
        None,
        Spelling(404, "object-not-found", "No such environment image.", "image_read_not-found"),
    ),
    _p("instance-not-found", Spelling(404, "instance-not-found", "No such instance."), None),
    _p(
        "method-not-allowed",
        Spelling(405, "generic-bad-request", "Bad request. (Method not allowed.)"),
        Spelling(405, "method-not-allowed", "HTTP Method Not Allowed.", "api_access_forbidden"),
    ),
    _p(
        "kernel-busy",
        Spelling(409, "kernel-busy", "The kernel is running another program."),
        Spelling(
            409,
            "invalid-kernel-status",
            "The session is running another program.",
            "kernel_execute_conflict",
        ),
    ),
    _p(
        "session-already-exists",
        None,
        Spelling(
            400,
            "session-already-exists",
            "The session already exists but you requested not to reuse existing one.",
            "session_create_already-exists",
        ),
    ),
    _p(
        "quota-exceeded",
        Spelling(412, "quota-exceeded", "You have reached your resource limit."),
        Spelling(
            400, "quota-exceeded", "You have reached your resource limit.", "session_create_quota"
        ),
    ),
    _p(
        "request-too-large",
        Spelling(413, "generic-bad-request", "Bad request. (Request body too large.)"),
        Spelling(413, "generic-bad-request", "Request body too large.", "api_parsing_too-large"),
    ),
    _p(
        "rate-limit-exceeded",
        Spelling(429, "rate-limit-exceeded", "You have reached your API query rate limit."),
        Spelling(429, "rate-limit-exceeded", "Rate limit exceeded.", "api_access_unavailable"),
    ),
    _p(
        "internal-server-error",
        Spelling(500, "internal-server-error", "Internal server error."),
        Spelling(
            500,
            "internal-server-error",
            "Internal server error.",
            "backendai_generic_internal-error",
        ),
    ),
    _p(
        "kernel-creation-failed",
        Spelling(500, "kernel-creation-failed", "Kernel creation failed."),
        Spelling(500, "kernel-creation-failed", "Kernel creation failed.", "kernel_create_failure"),
    ),
    _p(
        "kernel-destruction-failed",
        Spelling(500, "kernel-destruction-failed", "Kernel destruction failed."),
        Spelling(
            500,
            "kernel-destruction-failed",
            "Kernel destruction failed.",
            "kernel_terminate_failure",
        ),
    ),
    _p(
        "kernel-restart-failed",
        Spelling(500, "kernel-restart-failed", "Kernel restart failed."),
        Spelling(500, "kernel-restart-failed", "Kernel restart failed.", "kernel_restart_failure"),
    ),
    _p(
        "kernel-execution-failed",
        Spelling(500, "kernel-execution-failed", "Executing user code failed."),
        Spelling(
            500, "kernel-execution-failed", "Executing user code failed.", "kernel_execute_failure"
        ),
    ),
    _p(
        "service-unavailable",
        Spelling(503, "service-unavailable", "Service unavailable."),
        Spelling(
            503, "service-unavailable", "Service unavailable.", "backendai_generic_unavailable"
        ),
    ),
    _p(
        "instance-not-available",
        Spelling(503, "instance-not-available", "There is no available instance."),
        Spelling(
            503,
            "instance-not-available",
            "There is no available instance.",
            "agent_access_unavailable",
        ),
    ),
    _p(
        "not-implemented",
        Spelling(503, "not-implemented", "This API query is not implemented."),
        Spelling(
            501, "not-implemented", "This API is not implemented.", "api_generic_not-implemented"
        ),
    ),
)

#: Backend.AI problem slugs the client understands but the local gateway never raises.
CLIENT_ONLY: Final[dict[str, tuple[str, ...]]] = {
    "invalid-api-params": ("invalid-parameters", "schema-validation-failed",
                           "incomplete-session-spec", "invalid-kernel-config"),
    "kernel-not-found": ("entity-not-found", "too-many-sessions-matched"),
    "permission-denied": ("generic-forbidden", "forbidden", "permission-denied",
                          "keypair-forbidden"),
    "insufficient-privilege": ("insufficient-privilege", "not-enough-permission"),
    "invalid-kernel-status": ("kernel-not-ready", "invalid-kernel-status",
                              "session-invalid-state"),
    "internal-server-error": ("invalid-session-data",),
    "service-unavailable": ("server-frozen", "agent-connection-unavailable"),
    "scheduling-failed": ("scheduling-failed", "scheduling-validation-failed",
                          "no-available-agents", "no-agents-in-resource-group",
                          "no-compatible-agents", "agent-selection-failed",
                          "no-available-scaling-group"),
}  # fmt: skip

_BY_NAME: Final = {problem.name: problem for problem in PROBLEMS}


def by_name(name: str) -> Problem:
    """The problem called ``name`` (``KeyError`` for an unknown one)."""
    return _BY_NAME[name]
