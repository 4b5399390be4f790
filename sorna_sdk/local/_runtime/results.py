"""What the runtime answers, independent of any wire dialect.

The HTTP package renders these: the Sorna v2 dialect as the 2017 server did (``status``,
``console``, ``options``, ``files``), Backend.AI with ``runId`` and ``exitCode`` as its
agents do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypedDict

__all__ = ["ConsoleEntry", "KernelState", "KernelStatus", "RunError", "RunResult", "RunStatus"]

RunStatus: TypeAlias = Literal[
    "finished",
    "continued",
    "waiting-input",
    "clean-finished",
    "build-finished",
    "exec-timeout",
    "interrupted",
]
#: ``[kind, data]``: kind is stdout, stderr, media, html, log or completion.
ConsoleEntry: TypeAlias = list[Any]
#: Where a kernel's current run stands.
KernelState: TypeAlias = Literal["idle", "running", "waiting-input", "between-steps", "dead"]


class RunError(TypedDict):
    """Why a run failed, as its language reports it (a driver's ``finished`` ``error``)."""

    name: str
    value: str
    traceback: list[str]


@dataclass(frozen=True)
class RunResult:
    """One answer of a run: what it printed since the last answer, and where it stands."""

    status: RunStatus
    console: list[ConsoleEntry] = field(default_factory=list[ConsoleEntry])
    #: ``waiting-input``: ``{"is_password": bool}``; a finished step: ``{"exitCode": N}``.
    options: dict[str, Any] | None = None
    #: Output files the run wrote (names relative to the kernel's output folder).
    files: list[str] = field(default_factory=list[str])
    #: The run this answer belongs to (one per query or batch; continuations share it).
    run_id: str = ""
    #: The exception (or error) that ended the run, when the language reports one.
    error: RunError | None = None
    #: Index, within the run's console items, of this answer's first item.
    offset: int = 0

    @property
    def exit_code(self) -> int | None:
        """The program's exit status once a run or step has ended (``None`` before)."""
        if self.status in ("continued", "waiting-input"):
            return None
        code = (self.options or {}).get("exitCode")
        if isinstance(code, int) and not isinstance(code, bool):
            return code
        return None if self.status == "exec-timeout" else 0


@dataclass(frozen=True)
class KernelStatus:
    """A kernel's figures at one moment (times in milliseconds, memory in KiB)."""

    kernel_id: str
    lang: str
    age_ms: int
    idle_ms: int
    queries: int
    exec_timeout_ms: int
    idle_timeout_ms: int
    memory_limit_kib: int
    memory_used_kib: int
    cpu_used_ms: int
    state: KernelState
    created_at: float  # seconds since the epoch
