"""Kernel lifecycle models: create request/response, kernel info, authorize (spec §5.1-§5.2)."""

from __future__ import annotations

from typing import Any, Literal, overload

from pydantic import Field

from ._base import RequestModel, SornaModel

__all__ = [
    "AuthorizeResponse",
    "CreateKernelRequest",
    "HelloResponse",
    "KernelCreated",
    "KernelInfo",
    "Limits",
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
    """Kernel information (spec §5.2). Durations are in milliseconds, memory in KiB."""

    lang: str
    age: int
    query_timeout: int
    idle_timeout: int
    memory_limit: int
    max_cpu_credit: int
    num_queries_executed: int
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
    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key)


class HelloResponse(SornaModel):
    """Response of ``GET /v2``."""

    version: str


class AuthorizeResponse(SornaModel):
    """Response of ``GET /v2/authorize``."""

    authorized: str
    echo: Any = None
