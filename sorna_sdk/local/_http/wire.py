"""What differs between the two dialects the gateway serves, at the HTTP level.

A request's dialect follows from its path: ``/v2/...`` (and the 2017 server's ``/v1/...``)
is Sorna, everything else Backend.AI. Each dialect spells problems, rate-limit headers and
the version header its own way; routes live in :mod:`.sorna_v2` and :mod:`.backendai`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ..._dialects import BackendAI
from ..._problems import BACKENDAI_BASE, SORNA_BASE, Problem, Spelling, by_name
from .ratelimit import RATE_LIMIT_WINDOW, RateState

__all__ = ["BACKENDAI", "SORNA", "WireDialect", "dialect_of"]

#: Path prefixes of the Sorna dialect (the 2017 server answered /v1 with the same routes).
SORNA_PREFIXES: Final = ("/v2", "/v1")


@dataclass(frozen=True)
class WireDialect:
    """How one dialect writes problems, rate limits and versions."""

    name: Literal["sorna", "backendai"]
    base: str
    #: Signatures of this dialect hash the body (Sorna) or the empty string (Backend.AI).
    hash_body: bool

    def spelling(self, problem: Problem) -> Spelling:
        """The problem as this dialect writes it (its nearest meaning if it has none)."""
        own = problem.sorna if self.name == "sorna" else problem.backendai
        if own is not None:
            return own
        fallback = by_name(
            "invalid-api-params" if problem.name != "instance-not-found" else "url-not-found"
        )
        spelling = fallback.sorna if self.name == "sorna" else fallback.backendai
        assert spelling is not None
        return spelling

    def problem_body(
        self,
        problem: Problem,
        detail: str | None,
        title: str | None,
        data: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The JSON body of an error answer.

        Sorna puts the detail in the title (``"Bad request. (Unsupported API version.)"``)
        or uses ``title`` as it is; Backend.AI keeps its title and puts the detail in ``msg``.
        """
        spelling = self.spelling(problem)
        if self.name == "sorna":
            text = title or (f"{spelling.title} ({detail})" if detail else spelling.title)
            return {"type": spelling.type_uri(self.base), "title": text}
        body: dict[str, Any] = {
            "type": spelling.type_uri(self.base),
            "title": spelling.title,
            "error_code": spelling.error_code,
        }
        message = title or detail
        if message:
            body["msg"] = message
        if data is not None:
            body["data"] = dict(data)
        return body

    def rate_headers(self, rate: RateState) -> dict[str, str]:
        """``X-RateLimit-*``: the reset in milliseconds (Sorna) or seconds plus the window."""
        headers = rate.headers()
        if self.name == "backendai":
            headers["X-RateLimit-Reset"] = str(max(0, round(rate.reset_ms / 1000)))
            headers["X-RateLimit-Window"] = str(int(RATE_LIMIT_WINDOW))
        return headers

    def accepts_version(self, value: str) -> bool:
        """Whether a version header value belongs to this dialect."""
        if self.name == "sorna":
            # "v2.20170315", or just "v2"; v1 too, as /v1 serves the same routes.
            return value.split(".", 1)[0] in ("v1", "v2")
        return value in BackendAI.versions()


SORNA: Final = WireDialect("sorna", SORNA_BASE, hash_body=True)
BACKENDAI: Final = WireDialect("backendai", BACKENDAI_BASE, hash_body=False)


def dialect_of(path: str, headers: Mapping[str, str]) -> WireDialect:
    """The dialect of a request: by its path, else by its version header.

    ``/v2/...`` and ``/v1/...`` are Sorna; another path is Sorna too when the request says
    it speaks a Sorna version (so that ``GET /foo`` signed for v2 gets the 2017 server's
    400), and Backend.AI otherwise.
    """
    if any(path == prefix or path.startswith(prefix + "/") for prefix in SORNA_PREFIXES):
        return SORNA
    version = headers.get("X-BackendAI-Version") or headers.get("X-Sorna-Version") or ""
    if version.split(".", 1)[0] in ("v1", "v2", "v3"):
        return SORNA
    return BACKENDAI
