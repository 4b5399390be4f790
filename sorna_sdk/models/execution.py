"""Execution models: execute requests and the execution result (spec §5.3)."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, TypeAlias, overload

from pydantic import Field

from ._base import RequestModel, SornaModel

__all__ = [
    "BatchOptions",
    "BatchRequest",
    "CompleteOptions",
    "CompleteRequest",
    "ConsoleItem",
    "ConsoleKind",
    "ExecMode",
    "ExecuteRequest",
    "ExecutionResult",
    "ExecutionStatus",
    "QueryRequest",
]

ExecMode: TypeAlias = Literal["query", "batch", "complete"]
ExecutionStatus: TypeAlias = Literal[
    "finished", "continued", "waiting-input", "build-finished", "exec-timeout"
]
ConsoleKind: TypeAlias = Literal["stdout", "stderr", "media", "html", "log", "completion"]


class ConsoleItem(NamedTuple):
    """One console entry. Unpacks like the old pair: ``kind, data = item``.

    ``data`` is text for ``stdout``/``stderr``/``html``/``log``, a
    ``[mime_type, data]`` pair for ``media`` and a list of candidates for
    ``completion``.
    """

    type: ConsoleKind
    data: Any


class ExecutionResult(SornaModel):
    """The result of one execute call."""

    status: ExecutionStatus
    console: list[ConsoleItem] = Field(default_factory=list)
    options: dict[str, Any] | None = None
    files: list[Any] = Field(default_factory=list)

    @overload
    def __getitem__(self, key: Literal["console"]) -> list[list[Any]]: ...
    @overload
    def __getitem__(self, key: Literal["status"]) -> ExecutionStatus: ...
    @overload
    def __getitem__(self, key: Literal["options"]) -> dict[str, Any] | None: ...
    @overload
    def __getitem__(self, key: Literal["files"]) -> list[Any]: ...
    @overload
    def __getitem__(self, key: str) -> Any: ...
    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key)

    @property
    def stdout(self) -> str:
        """All ``stdout`` text of this result, joined."""
        return "".join(item.data for item in self.console if item.type == "stdout")

    @property
    def stderr(self) -> str:
        """All ``stderr`` text of this result, joined."""
        return "".join(item.data for item in self.console if item.type == "stderr")

    @property
    def is_password(self) -> bool:
        """Whether a ``waiting-input`` result asks for a hidden entry."""
        return bool((self.options or {}).get("is_password"))


class BatchOptions(RequestModel):
    """Build and exec commands of batch mode; ``"*"`` lets the server choose."""

    build: str | None = None
    #: Show the build's standard output (its standard error is always shown).
    build_log: bool = True
    exec: str | None = None


class CompleteOptions(RequestModel):
    """Cursor position for complete mode."""

    row: int = 0
    col: int = 0
    line: str = ""
    post: str = ""


class QueryRequest(RequestModel):
    """Run code, or continue / answer input with ``code``."""

    mode: Literal["query"] = "query"
    code: str


class BatchRequest(RequestModel):
    """Build and run uploaded files."""

    mode: Literal["batch"] = "batch"
    code: str = ""
    options: BatchOptions = Field(default_factory=BatchOptions)


class CompleteRequest(RequestModel):
    """Ask for completion candidates."""

    mode: Literal["complete"] = "complete"
    code: str
    options: CompleteOptions = Field(default_factory=CompleteOptions)


ExecuteRequest: TypeAlias = QueryRequest | BatchRequest | CompleteRequest
