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

    max_mem: int = Field(default=0, ge=0, description="KiB")
    exec_timeout: int = Field(default=0, ge=0, description="seconds")


class CreateKernelRequest(RequestModel):
    """Body of ``POST /v2/kernel/create``."""

    lang: str = Field(min_length=1)
    client_session_token: str = Field(min_length=8, max_length=80)
    limits: Limits = Field(default_factory=Limits)
    mounts: list[str] = Field(default_factory=list)


class KernelCreated(SornaModel):
    """Response of a create: the kernel id, and whether it was new (when the server says)."""

    kernel_id: str
    created: bool | None = None


class KernelInfo(SornaModel):
    """What every server reports about a kernel: its language, age (ms), queries executed.

    ``get_info()`` returns a subclass per server family: :class:`SornaKernelInfo` from a
    Sorna v2 server, :class:`~sorna_sdk.models.SessionInfo` from Backend.AI. Every wire
    field stays readable through ``info['wireName']`` whichever it is.
    """

    lang: str
    age: int
    num_queries_executed: int

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
    idle_timeout: int
    memory_limit: int
    max_cpu_credit: int
    idle: int
    memory_used: int
    cpu_credit_used: int

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
    manager: str | None = None


class DestroyResult(SornaModel):
    """What a Backend.AI destroy reported: the session's last ``stats``."""

    stats: dict[str, Any] | None = None


class AuthorizeResponse(SornaModel):
    """Response of ``GET /v2/authorize``."""

    authorized: str
    echo: Any = None
