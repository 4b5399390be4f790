"""RFC 7807 problem details, as the server sends them (spec §4)."""

from __future__ import annotations

from pydantic import Field

from ._base import SornaModel

__all__ = ["AgentDetails", "ProblemDetails"]


class AgentDetails(SornaModel):
    """The ``agent-details`` object of agent-side failures."""

    type: str | None = None
    """The agent-side error's type; ``None`` when the server did not send it."""
    title: str | None = None
    """A human-readable summary of the agent-side error; ``None`` when not sent."""
    exception: str | None = None
    """The agent's exception text; ``None`` when not sent."""


class ProblemDetails(SornaModel):
    """An error body: branch on ``type``, never on ``title``."""

    type: str = "about:blank"
    """The problem type URI (e.g. ``https://api.sorna.io/probs/kernel-not-found``);
    branch on this. ``about:blank`` when the body has none."""
    title: str = ""
    """A human-readable summary; may be reworded, so never branch on it."""
    agent_details: AgentDetails | None = Field(default=None, alias="agent-details")
    """Details of an agent-side failure (wire ``agent-details``); ``None`` for other errors."""
