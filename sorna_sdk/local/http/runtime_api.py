"""What the HTTP layer needs of the runtime (``KernelRegistry`` and ``LocalKernel``)."""

from __future__ import annotations

from typing import Any, Protocol

from ..runtime.results import KernelState, KernelStatus, RunResult
from ..runtime.terminal import Terminal

__all__ = ["KernelHandle", "Kernels"]


class KernelHandle(Protocol):
    """One kernel."""

    kernel_id: str
    lang: str

    @property
    def state(self) -> KernelState: ...
    @property
    def run_id(self) -> str: ...
    async def execute(self, mode: str, code: str, options: dict[str, Any] | None) -> RunResult: ...
    async def restart(self) -> None: ...
    async def interrupt(self) -> None: ...
    def info(self) -> KernelStatus: ...
    async def upload(self, files: list[tuple[str, bytes]]) -> None: ...
    def touch(self) -> None: ...
    def terminal(self) -> Terminal: ...


class Kernels(Protocol):
    """The kernel registry."""

    async def get_or_create(
        self,
        owner: str,
        token: str,
        lang: str,
        *,
        max_mem_kib: int = 0,
        exec_timeout: float = 0,
        max_kernels: int | None = None,
    ) -> tuple[KernelHandle, bool]: ...
    def get(self, owner: str, kernel_id: str) -> KernelHandle: ...
    async def destroy(self, owner: str, kernel_id: str) -> None: ...
    def count(self, owner: str) -> int: ...
