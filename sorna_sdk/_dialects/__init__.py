"""Wire dialects: one module per API family, chosen by ``APIConfig.version``.

A dialect owns routes, request bodies, continuation rules, signing policy, response
models, the problem-type table, rate-limit headers, environment-variable names and PTY
framing (:class:`~sorna_sdk._dialects._base.Dialect`). Adding a family is a new module plus
one entry in :data:`FAMILIES`.
"""

from __future__ import annotations

from typing import Final

from ._base import (
    CreateReply,
    CreateSpec,
    Dialect,
    EventsTarget,
    PendingRun,
    StreamPath,
    parse_version,
)
from .backendai import BackendAI
from .sorna_v2 import SornaV2

__all__ = [
    "AUTO",
    "FAMILIES",
    "NEGOTIATING",
    "BackendAI",
    "CreateReply",
    "CreateSpec",
    "Dialect",
    "EventsTarget",
    "PendingRun",
    "SornaV2",
    "StreamPath",
    "dialect_for",
    "parse_version",
    "supported_versions",
]

#: ``APIConfig.version`` value asking for negotiation with the server (Backend.AI's ``GET /``).
AUTO: Final = "auto"
#: Every family, in the order the environment is searched (``BACKEND_*`` before ``SORNA_*``).
FAMILIES: Final[tuple[type[Dialect], ...]] = (BackendAI, SornaV2)
#: The family that ``version="auto"`` negotiates with.
NEGOTIATING: Final[type[Dialect]] = BackendAI


def supported_versions() -> tuple[str, ...]:
    """Every version ``APIConfig.version`` accepts besides ``"auto"``."""
    return tuple(version for family in reversed(FAMILIES) for version in family.versions())


def dialect_for(version: str) -> Dialect:
    """The dialect speaking ``version``; ``ValueError`` for one no family speaks."""
    for family in FAMILIES:
        if family.accepts(version):
            return family(version)
    raise ValueError(f"no dialect speaks API version {version!r}")
