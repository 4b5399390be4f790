"""Execution models: execute requests and the execution result (spec §5.3)."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, TypeAlias, overload

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

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
    "TERMINAL_STATUSES",
]

ExecMode: TypeAlias = Literal["query", "batch", "complete"]
ExecutionStatus: TypeAlias = Literal[
    "finished",
    "continued",
    "waiting-input",
    "build-finished",
    "clean-finished",
    "exec-timeout",
    "interrupted",
]
#: Statuses after which the run is over (no continuation follows).
TERMINAL_STATUSES: frozenset[ExecutionStatus] = frozenset(
    {"finished", "exec-timeout", "interrupted"}
)
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
    """The result of one execute call.

    ``run_id`` names the run on servers that track runs (Backend.AI); ``exit_code`` is
    the program's exit status once a run has finished (``None`` when the server did not
    say). The same shape comes back from every dialect.
    """

    status: ExecutionStatus
    console: list[ConsoleItem] = Field(default_factory=list)
    options: dict[str, Any] | None = None
    files: list[Any] = Field(default_factory=list)
    run_id: str | None = None
    exit_code: int | None = None

    @overload
    def __getitem__(self, key: Literal["console"]) -> list[list[Any]]: ...
    @overload
    def __getitem__(self, key: Literal["status"]) -> ExecutionStatus: ...
    @overload
    def __getitem__(self, key: Literal["options"]) -> dict[str, Any] | None: ...
    @overload
    def __getitem__(self, key: Literal["files"]) -> list[Any]: ...
    @overload
    def __getitem__(self, key: Literal["runId"]) -> str | None: ...
    @overload
    def __getitem__(self, key: Literal["exitCode"]) -> int | None: ...
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
    def done(self) -> bool:
        """Whether the run is over (``finished``, ``exec-timeout`` or ``interrupted``)."""
        return self.status in TERMINAL_STATUSES

    @property
    def is_password(self) -> bool:
        """Whether a ``waiting-input`` result asks for a hidden entry."""
        return bool((self.options or {}).get("is_password"))


class BatchOptions(RequestModel):
    """Build and exec commands of batch mode; ``"*"`` lets the server choose.

    ``clean`` (a command run before the build) exists on Backend.AI only.
    """

    clean: str | None = None
    build: str | None = None
    #: Show the build's standard output (its standard error is always shown).
    build_log: bool = True
    exec: str | None = None

    @model_serializer(mode="wrap")
    def _drop_unset_clean(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Sorna v2 has no clean step, so its bodies keep their 2017 shape.
        data: dict[str, Any] = handler(self)
        if data.get("clean") is None:
            data.pop("clean", None)
        return data


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
