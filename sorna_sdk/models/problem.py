"""RFC 7807 problem details, as the server sends them (spec §4)."""

from __future__ import annotations

from pydantic import Field

from ._base import SornaModel

__all__ = ["AgentDetails", "ProblemDetails"]


class AgentDetails(SornaModel):
    """The ``agent-details`` object of agent-side failures."""

    type: str | None = None
    title: str | None = None
    exception: str | None = None


class ProblemDetails(SornaModel):
    """An error body: branch on ``type``, never on ``title``."""

    type: str = "about:blank"
    title: str = ""
    agent_details: AgentDetails | None = Field(default=None, alias="agent-details")
