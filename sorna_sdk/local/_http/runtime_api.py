"""What the HTTP layer needs of the runtime (``KernelRegistry`` and ``LocalKernel``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .._runtime.browse import Listing
from .._runtime.events import EventHub
from .._runtime.results import KernelState, KernelStatus, RunResult
from .._runtime.terminal import Terminal

__all__ = ["KernelHandle", "Kernels"]


class KernelHandle(Protocol):
    """One kernel."""

    kernel_id: str
    lang: str
    owner: str
    name: str
    image: str
    resources: dict[str, str]
    environ: dict[str, str]

    @property
    def state(self) -> KernelState: ...
    @property
    def run_id(self) -> str: ...
    @property
    def created_at(self) -> float: ...
    @property
    def collected_at(self) -> float: ...
    async def execute(
        self,
        mode: str,
        code: str,
        options: dict[str, Any] | None,
        *,
        eager: bool = False,
        offset: int | None = None,
    ) -> RunResult: ...
    async def restart(self) -> None: ...
    async def interrupt(self) -> None: ...
    def info(self) -> KernelStatus: ...
    async def upload(self, files: list[tuple[str, bytes]]) -> None: ...
    async def list_files(self, path: str) -> Listing: ...
    async def download(self, paths: Sequence[str]) -> list[bytes]: ...
    async def read_file(self, path: str) -> bytes: ...
    def logs(self) -> str: ...
    def touch(self) -> None: ...
    def terminal(self) -> Terminal: ...


class Kernels(Protocol):
    """The kernel registry."""

    @property
    def events(self) -> EventHub: ...

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
    async def get_or_create_named(
        self,
        owner: str,
        name: str,
        lang: str,
        *,
        reuse: bool = True,
        max_mem_kib: int = 0,
        max_kernels: int | None = None,
        environ: Mapping[str, str] | None = None,
        resources: Mapping[str, str] | None = None,
        kernel_id: str | None = None,
        image: str = "",
    ) -> tuple[KernelHandle, bool]: ...
    def get(self, owner: str, kernel_id: str) -> KernelHandle: ...
    def lookup(self, owner: str, ref: str) -> KernelHandle: ...
    def find_named(self, owner: str, name: str) -> KernelHandle | None: ...
    async def destroy(self, owner: str, kernel_id: str) -> None: ...
    def count(self, owner: str) -> int: ...
