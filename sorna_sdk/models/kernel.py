"""Kernel lifecycle models: create request/response, kernel info, authorize (spec §5.1-§5.2)."""

from __future__ import annotations

from typing import Any, Literal, overload

from pydantic import Field

from ._base import RequestModel, SornaModel

__all__ = [
    "AuthorizeResponse",
    "CreateKernelRequest",
    "DestroyResult",
    "HelloResponse",
    "KernelCreated",
    "KernelInfo",
    "Limits",
    "SornaKernelInfo",
]


class Limits(RequestModel):
    """Resource limits of a new kernel; 0 means the server's default."""

    max_mem: int = Field(default=0, ge=0)
    """Memory limit in KiB (wire ``maxMem``); 0 means the server's default."""
    exec_timeout: int = Field(default=0, ge=0)
    """Execution time limit in seconds (wire ``execTimeout``); 0 means the server's default."""


class CreateKernelRequest(RequestModel):
    """Body of ``POST /v2/kernel/create``."""

    lang: str = Field(min_length=1)
    """The kernel's language, e.g. ``python3``."""
    client_session_token: str = Field(min_length=8, max_length=80)
    """The get-or-create key (wire ``clientSessionToken``), 8 to 80 characters;
    with the access key and ``lang`` it names the kernel."""
    limits: Limits = Field(default_factory=Limits)
    """Resource limits of the kernel; the server's defaults when left at 0."""
    mounts: list[str] = Field(default_factory=list)
    """Virtual folders to mount into the kernel, by name (empty for none)."""


class KernelCreated(SornaModel):
    """Response of a create: the kernel id, and whether it was new (when the server says)."""

    kernel_id: str
    """The kernel's id (wire ``kernelId``) to address it in later calls."""
    created: bool | None = None
    """Whether a new kernel was started (``False``: an existing one was returned);
    ``None`` when the server does not say (the 2017 Sorna server never does)."""


class KernelInfo(SornaModel):
    """What every server reports about a kernel: its language, age (ms), queries executed.

    ``get_info()`` returns a subclass per server family: :class:`SornaKernelInfo` from a
    Sorna v2 server, :class:`~sorna_sdk.models.SessionInfo` from Backend.AI. Every wire
    field stays readable through ``info['wireName']`` whichever it is.
    """

    lang: str
    """The kernel's language (Backend.AI: its image reference)."""
    age: int
    """Time since the kernel started, in ms."""
    num_queries_executed: int
    """How many execute calls the kernel has served (wire ``numQueriesExecuted``)."""

    @overload
    def __getitem__(self, key: Literal["lang"]) -> str: ...
    @overload
    def __getitem__(self, key: Literal["age", "numQueriesExecuted"]) -> int: ...
    @overload
    def __getitem__(self, key: str) -> Any: ...
    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key)


class SornaKernelInfo(KernelInfo):
    """Kernel information of a Sorna v2 server (spec §5.2). Durations in ms, memory in KiB."""

    query_timeout: int
    """Execution time limit of a query, in ms (wire ``queryTimeout``)."""
    idle_timeout: int
    """Idle time after which the server destroys the kernel, in ms (wire ``idleTimeout``)."""
    memory_limit: int
    """Memory limit of the kernel, in KiB (wire ``memoryLimit``)."""
    max_cpu_credit: int
    """CPU time the kernel may use, in ms (wire ``maxCpuCredit``; the local gateway sends 0)."""
    idle: int
    """Time since the kernel's last activity, in ms."""
    memory_used: int
    """Memory the kernel uses, in KiB (wire ``memoryUsed``)."""
    cpu_credit_used: int
    """CPU time the kernel has used, in ms (wire ``cpuCreditUsed``)."""

    @overload
    def __getitem__(self, key: Literal["lang"]) -> str: ...
    @overload
    def __getitem__(
        self,
        key: Literal[
            "age",
            "queryTimeout",
            "idleTimeout",
            "memoryLimit",
            "maxCpuCredit",
            "numQueriesExecuted",
            "idle",
            "memoryUsed",
            "cpuCreditUsed",
        ],
    ) -> int: ...
    @overload
    def __getitem__(self, key: str) -> Any: ...
    def __getitem__(self, key: str) -> Any:  # pyright: ignore[reportIncompatibleMethodOverride]
        # Each overload of KernelInfo's has a wider one here; mypy agrees, pyright does not.
        return super().__getitem__(key)


class HelloResponse(SornaModel):
    """The server's version answer (``GET /v2`` on Sorna, ``GET /`` on Backend.AI).

    ``manager`` is the Backend.AI manager's release (``None`` from Sorna servers).
    """

    version: str
    """The server's API version string, e.g. ``v2.20170315`` (Sorna) or ``v9.20250722``
    (Backend.AI)."""
    manager: str | None = None
    """The Backend.AI manager's release; ``None`` from Sorna servers."""


class DestroyResult(SornaModel):
    """What a Backend.AI destroy reported: the session's last ``stats``."""

    stats: dict[str, Any] | None = None
    """The session's last resource statistics (Backend.AI); ``None`` when the server sent none."""


class AuthorizeResponse(SornaModel):
    """Response of ``GET /v2/authorize``."""

    authorized: str
    """``"yes"`` when the request's signature was accepted."""
    echo: Any = None
    """The ``echo`` value of the request, sent back unchanged (``None`` if none was sent)."""
