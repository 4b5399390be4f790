"""Execution models: execute requests and the execution result (spec §5.3)."""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, TypeAlias, cast, overload

from pydantic import (
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    SerializerFunctionWrapHandler,
    model_serializer,
    with_config,
)
from typing_extensions import Self, TypedDict

from ._base import RequestModel, SornaModel
from ._errors import derive_error

__all__ = [
    "BatchOptions",
    "BatchOptionsDict",
    "BatchRequest",
    "CompleteOptions",
    "CompleteOptionsDict",
    "CompleteRequest",
    "CompletionItem",
    "ConsoleItem",
    "ConsoleKind",
    "ExecMode",
    "ExecuteRequest",
    "ExecutionResult",
    "ExecutionStatus",
    "FigureFormat",
    "MediaItem",
    "QueryOptions",
    "QueryRequest",
    "ResultFile",
    "ResultItem",
    "ResultOptions",
    "RunError",
    "TERMINAL_STATUSES",
    "TextItem",
    "TextKind",
    "WireConsoleData",
    "console_item",
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
ConsoleKind: TypeAlias = Literal["stdout", "stderr", "media", "html", "log", "completion", "result"]
#: Formats in which a python3 kernel of the local gateway sends matplotlib figures.
FigureFormat: TypeAlias = Literal["png", "svg"]
#: MIME types of a bundle, richest first (what :attr:`ConsoleItem.mime_type` picks).
_RICHEST = ("image/png", "image/jpeg", "image/svg+xml", "text/html", "text/plain")
#: The kinds of :class:`TextItem`: the program's streams, notes of the server, HTML.
TextKind: TypeAlias = Literal["stdout", "stderr", "log", "html"]
_TEXT_KINDS: dict[str, TextKind] = {
    "stdout": "stdout",
    "stderr": "stderr",
    "log": "log",
    "html": "html",
}


def _is_binary(mime: str) -> bool:
    return not (mime.startswith("text/") or mime.endswith(("+xml", "/json", "/javascript")))


class _MediaPair(tuple[str, str]):
    """``(mime_type, payload)`` that also equals the wire's ``[mime_type, payload]`` list."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list):
            return list(self) == other
        return super().__eq__(other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return super().__hash__()


class _ConsoleItemBase:
    """What every console item offers, whatever its kind (see :data:`ConsoleItem`).

    The items are named tuples ``(type, data)``: they unpack (``kind, data = item``), index,
    compare and hash as the pair, and serialize as one (``json.dumps(result.console)``).
    """

    __slots__ = ()

    def _pair(self) -> tuple[ConsoleKind, object]:
        # Every subclass is also a ``(type, data)`` named tuple (this base comes first in
        # its bases, so that the comparisons below take precedence over tuple's).
        return cast("tuple[ConsoleKind, object]", self)

    def __eq__(self, other: object) -> bool:
        # Equal to the pair, whether a tuple or the wire's list (``["stdout", "hi\n"]``).
        if not isinstance(other, (tuple, list)):
            return NotImplemented
        pair = cast("Sequence[object]", other)
        kind, data = self._pair()
        return len(pair) == 2 and kind == pair[0] and data == pair[1]

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(tuple(self._pair()))

    @property
    def bundle(self) -> dict[str, str]:
        """The item as ``{mime_type: payload}`` (binary payloads base64-encoded); empty for a
        completion."""
        kind, data = self._pair()
        if isinstance(data, tuple):  # media: (mime_type, payload)
            mime, payload = cast("tuple[str, str]", data)
            return {mime: payload}
        if isinstance(data, dict):  # result: a MIME bundle
            return dict(cast("dict[str, str]", data))
        if isinstance(data, str):
            return {"text/html" if kind == "html" else "text/plain": data}
        return {}  # completion

    @property
    def mime_type(self) -> str | None:
        """``image/png``, ``image/svg+xml``, ``text/html``, ``text/plain``...; the richest of
        a ``result`` bundle; ``None`` for completions."""
        bundle = self.bundle
        for mime in _RICHEST:
            if mime in bundle:
                return mime
        return next(iter(bundle), None)

    @property
    def payload(self) -> str | None:
        """The content of :attr:`mime_type` as sent: base64 text for binary types."""
        mime = self.mime_type
        return self.bundle[mime] if mime is not None else None

    @property
    def text(self) -> str:
        """The item as text: the output itself, a bundle's ``text/plain``, an SVG or HTML;
        ``""`` for binary media and completions."""
        bundle = self.bundle
        if "text/plain" in bundle:
            return bundle["text/plain"]
        payload = self.payload
        mime = self.mime_type
        if payload is None or mime is None or _is_binary(mime):
            return ""
        return payload

    @property
    def is_image(self) -> bool:
        """Whether the item carries an image (``media`` or a ``result`` with one)."""
        return any(mime.startswith("image/") for mime in self.bundle)

    def bytes(self, mime_type: str | None = None) -> builtins.bytes:
        """The content of ``mime_type`` (default :attr:`mime_type`) as bytes: base64 decoded
        for binary types (``image/png``), UTF-8 for text ones (``image/svg+xml``)."""
        bundle = self.bundle
        mime = mime_type if mime_type is not None else self.mime_type
        if mime is None or mime not in bundle:
            raise ValueError(f"the {self._pair()[0]} item has no {mime_type or 'content'}")
        payload = bundle[mime]
        if not _is_binary(mime):
            return payload.encode("utf-8")
        try:
            return base64.b64decode(payload, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"the {mime} payload is not base64: {exc}") from exc

    def save(self, path: str | os.PathLike[str], mime_type: str | None = None) -> Path:
        """Write :meth:`bytes` to ``path`` and return it."""
        target = Path(path)
        target.write_bytes(self.bytes(mime_type))
        return target


class _TextPair(NamedTuple):
    type: TextKind
    """Which output: ``stdout``, ``stderr``, ``log`` (a note of the server) or ``html``."""
    data: str
    """The text (HTML markup for ``html``)."""


class TextItem(_ConsoleItemBase, _TextPair):
    """Program output as text: ``stdout``, ``stderr``, ``log`` or ``html``
    (``TextItem("stdout", "hi\\n")``)."""

    __slots__ = ()


class _MediaFields(NamedTuple):
    type: Literal["media"]
    """Always ``"media"``."""
    data: tuple[str, str]
    """``(mime_type, payload)``; the payload is base64 for binary types (``image/png``).
    Equal to the wire's ``[mime_type, payload]`` list as well."""


class MediaItem(_ConsoleItemBase, _MediaFields):
    """A rich output such as an image: ``data`` is ``(mime_type, payload)``
    (``MediaItem("media", ("image/svg+xml", "<svg/>"))``)."""

    __slots__ = ()

    def __new__(cls, type: Literal["media"], data: tuple[str, str]) -> Self:
        return super().__new__(cls, type, _MediaPair(data))


class _CompletionFields(NamedTuple):
    type: Literal["completion"]
    """Always ``"completion"``."""
    data: list[str]
    """The completion candidates, in the server's order."""


class CompletionItem(_ConsoleItemBase, _CompletionFields):
    """The candidates of complete mode (``CompletionItem("completion", ["import "])``)."""

    __slots__ = ()


class _ResultFields(NamedTuple):
    type: Literal["result"]
    """Always ``"result"``."""
    data: dict[str, str]
    """``{mime_type: payload}``: ``text/plain`` always, ``image/png``, ``text/html``..."""


class ResultItem(_ConsoleItemBase, _ResultFields):
    """The value of the last expression (``run(last_value=True)``) as a MIME bundle."""

    __slots__ = ()


#: One console entry; ``item.type`` tells the kind and so the type of ``item.data``:
#: ``str`` for :class:`TextItem` (``stdout``, ``stderr``, ``log``, ``html``), a
#: ``(mime_type, payload)`` pair for :class:`MediaItem`, a list of candidates for
#: :class:`CompletionItem`, a MIME bundle for :class:`ResultItem`. Each is a named tuple
#: ``(type, data)``: it unpacks like the old pair (``kind, data = item``), equals it
#: (``item == ("stdout", "hi\n")``) and ``json.dumps`` writes it as the wire does.
#: ``isinstance(x, ConsoleItem)`` works; :func:`console_item` builds one from a wire pair.
ConsoleItem: TypeAlias = TextItem | MediaItem | CompletionItem | ResultItem


def console_item(kind: str, data: object) -> ConsoleItem:
    """The item of a wire pair (``"stdout", "hi\\n"``); ``ValueError`` names what is wrong."""
    text_kind = _TEXT_KINDS.get(kind)
    if text_kind is not None:
        if isinstance(data, str):
            return TextItem(text_kind, data)
        raise ValueError(f"{kind} data must be a string, got {type(data).__name__}")
    if kind == "media":
        if isinstance(data, (list, tuple)):
            pair = cast("Sequence[object]", data)
            if len(pair) == 2 and isinstance(pair[0], str) and isinstance(pair[1], str):
                return MediaItem("media", (pair[0], pair[1]))
        raise ValueError("media data must be a [mime_type, payload] pair of strings")
    if kind == "completion":
        if isinstance(data, list):
            candidates = cast("list[object]", data)
            if all(isinstance(candidate, str) for candidate in candidates):
                return CompletionItem("completion", cast("list[str]", list(candidates)))
        raise ValueError("completion data must be a list of strings")
    if kind == "result":
        if isinstance(data, dict):
            bundle = cast("dict[object, object]", data)
            return ResultItem(
                "result",
                {
                    str(mime): value if isinstance(value, str) else json.dumps(value)
                    for mime, value in bundle.items()
                },
            )
        raise ValueError("result data must be a MIME bundle (an object)")
    raise ValueError(f"unknown console item kind {kind!r}")


def _item_from_wire(value: object) -> ConsoleItem:
    if isinstance(value, _ConsoleItemBase):
        return cast("ConsoleItem", value)
    if isinstance(value, (list, tuple)):
        pair = cast("Sequence[object]", value)
        if len(pair) == 2 and isinstance(pair[0], str):
            return console_item(pair[0], pair[1])
    raise ValueError("a console item is a [kind, data] pair")


def _item_to_wire(item: ConsoleItem) -> list[WireConsoleData]:
    if item.type == "result":
        return [item.type, dict(item.data)]
    if item.type == "media" or item.type == "completion":
        return [item.type, list(item.data)]
    return [item.type, item.data]


#: ``list[ConsoleItem]`` as pydantic reads and writes it: wire pairs, one function call each.
_WireItem = Annotated[
    ConsoleItem,
    PlainValidator(_item_from_wire),
    PlainSerializer(_item_to_wire, return_type=list[object]),
]


class RunError(SornaModel):
    """Why a run failed: the exception's ``name`` and ``value`` and its ``traceback`` lines.

    Sent by the local gateway (real exception data for python3; node's Error name, message
    and stack; ``LuaError`` and the message); derived from stderr otherwise
    (:attr:`ExecutionResult.error`).
    """

    name: str
    """The exception's name, e.g. ``ZeroDivisionError`` or ``NonZeroExit``."""
    value: str = ""
    """The exception's message; empty when it has none."""
    traceback: list[str] = Field(default_factory=list)
    """The traceback's lines; empty when unknown."""

    def __str__(self) -> str:
        return f"{self.name}: {self.value}" if self.value else self.name


@with_config(ConfigDict(extra="allow"))
class ResultOptions(TypedDict, total=False):
    """``options`` of a result: what the SDK reads, plus whatever else the server sent
    (kept, as on the wire)."""

    is_password: bool
    """``waiting-input``: the program asks for a hidden entry (``getpass``)."""
    exitCode: int | None
    """The program's exit status where Sorna v2 servers send it (failed queries, the local
    gateway's finished steps; :attr:`ExecutionResult.exit_code` has it too); ``None`` if the
    server sent ``null``."""


#: An element of a wire pair ``[kind, data]`` of ``result["console"]``: the kind, or the data
#: (text; a ``[mime_type, payload]`` or candidate list; a MIME bundle).
WireConsoleData: TypeAlias = str | list[str] | dict[str, str]
#: An entry of ``files``: a file name (Sorna), or a server's description of one.
ResultFile: TypeAlias = str | dict[str, object]


class ExecutionResult(SornaModel):
    """The result of one execute call.

    ``run_id`` names the run on servers that track runs (Backend.AI); ``exit_code`` is
    the program's exit status once a run has finished (``None`` when the server did not
    say). ``offset`` (local gateway) is the index, within the run, of this answer's first
    console item. The same shape comes back from every dialect.
    """

    status: ExecutionStatus
    """Where the run stands: ``finished``, ``continued`` (call again with ``code=""``),
    ``waiting-input`` (send a line), ``build-finished``, ``exec-timeout``..."""
    console: list[_WireItem] = Field(default_factory=list[ConsoleItem])
    """The output of this answer, in order; ``item.type`` tells the type of ``item.data``."""
    options: ResultOptions | None = None
    """Server data about the answer: ``is_password`` when waiting for input, ``exitCode``,
    and any other key the server sent; ``None`` when it sent none."""
    files: list[ResultFile] = Field(default_factory=list[ResultFile])
    """Output files the run produced, by name (a server may describe one as an object);
    empty when it reports none."""
    run_id: str | None = None
    """The run's id on servers that track runs (Backend.AI, local gateway)."""
    exit_code: int | None = None
    """The program's exit status once the run is over; ``None`` if the server did not say."""
    offset: int | None = None
    """Local gateway: the index within the run of this answer's first console item."""
    reported_error: RunError | None = Field(default=None, alias="error")
    """The ``error`` the server sent (local gateway); :attr:`error` also derives one."""

    @overload
    def __getitem__(self, key: Literal["console"]) -> list[list[WireConsoleData]]: ...
    @overload
    def __getitem__(self, key: Literal["status"]) -> ExecutionStatus: ...
    @overload
    def __getitem__(self, key: Literal["options"]) -> ResultOptions | None: ...
    @overload
    def __getitem__(self, key: Literal["files"]) -> list[ResultFile]: ...
    @overload
    def __getitem__(self, key: Literal["runId"]) -> str | None: ...
    @overload
    def __getitem__(self, key: Literal["exitCode", "offset"]) -> int | None: ...
    @overload
    def __getitem__(self, key: Literal["error"]) -> dict[str, str | list[str]] | None: ...
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

    @property
    def error(self) -> RunError | None:
        """Why the run failed, ``None`` if it did not (or is not over).

        The server's ``error`` when it sent one; otherwise derived from the exit code and
        stderr (ANSI codes stripped): a Python traceback's last line, a node ``Error:``
        line, a Lua message, else ``NonZeroExit`` with the last stderr line.
        """
        if self.reported_error is not None:
            return self.reported_error
        if self.status == "exec-timeout":
            return RunError(
                name="ExecTimeout", value="the run exceeded the kernel's execution time limit"
            )
        if not self.done:
            return None
        derived = derive_error(self.stderr, self.exit_code)
        if derived is None:
            if self.status == "interrupted":
                return RunError(name="KeyboardInterrupt", value="the run was interrupted")
            return None
        name, value, traceback = derived
        return RunError(name=name, value=value, traceback=traceback)

    @property
    def images(self) -> list[ConsoleItem]:
        """The items carrying images (``media`` and ``result`` ones), in order."""
        return [item for item in self.console if item.is_image]

    @property
    def html(self) -> list[str]:
        """The HTML outputs (``html`` items, ``text/html`` media and results), in order."""
        return [
            item.bundle["text/html"]
            for item in self.console
            if item.type in ("html", "media", "result") and "text/html" in item.bundle
        ]

    @property
    def last_value(self) -> ConsoleItem | None:
        """The ``result`` item (value of the last expression, ``run(last_value=True)``)."""
        return next((item for item in reversed(self.console) if item.type == "result"), None)

    def raise_for_error(self) -> ExecutionResult:
        """Raise :class:`~sorna_sdk.ProgramError` if the run failed; else return ``self``."""
        error = self.error
        if error is not None:
            from ..exceptions import ProgramError

            raise ProgramError(self, error)
        return self


class BatchOptions(RequestModel):
    """Build and exec commands of batch mode; ``"*"`` lets the server choose.

    ``clean`` (a command run before the build) exists on Backend.AI only.
    """

    clean: str | None = None
    """A command run before the build (Backend.AI only); ``None`` skips it (not sent)."""
    build: str | None = None
    """The build command; ``"*"`` lets the server choose, ``None`` skips the build."""
    build_log: bool = True
    """Show the build's standard output (its standard error is always shown;
    wire ``buildLog``)."""
    exec: str | None = None
    """The command that runs the program; ``"*"`` lets the server choose."""

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
    """The cursor's line (0-based)."""
    col: int = 0
    """The cursor's column (0-based)."""
    line: str = ""
    """The text of the cursor's line."""
    post: str = ""
    """The text after the cursor."""


class BatchOptionsDict(TypedDict, total=False):
    """``opts`` of batch mode as a dict: ``kern.run("", mode="batch", opts={"build": "*"})``.

    The fields of :class:`BatchOptions`, by attribute or wire name; an unknown key is a
    type error (and :class:`~sorna_sdk.InvalidArgumentError` at run time).
    """

    clean: str | None
    """A command run before the build (Backend.AI only)."""
    build: str | None
    """The build command; ``"*"`` lets the server choose, ``None`` skips the build."""
    build_log: bool
    """Show the build's standard output (its standard error is always shown)."""
    buildLog: bool
    """The wire name of ``build_log``."""
    exec: str | None
    """The command that runs the program; ``"*"`` lets the server choose."""


class CompleteOptionsDict(TypedDict, total=False):
    """``opts`` of complete mode as a dict: the fields of :class:`CompleteOptions`."""

    row: int
    """The cursor's line (0-based)."""
    col: int
    """The cursor's column (0-based)."""
    line: str
    """The text of the cursor's line."""
    post: str
    """The text after the cursor."""


class QueryOptions(RequestModel):
    """Extensions of a query (local gateway, python3): the last expression's value as a
    ``result`` item, and the formats of matplotlib figures."""

    last_value: bool | None = None
    """Send the last expression's value as a ``result`` item (local gateway,
    python3); ``None`` leaves it out of the body."""
    figure_formats: list[FigureFormat] | None = None
    """The formats of matplotlib figures (wire ``figureFormats``; local gateway,
    python3); ``None`` leaves it out of the body."""

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None}


class QueryRequest(RequestModel):
    """Run code, or continue / answer input with ``code``."""

    mode: Literal["query"] = "query"
    """Always ``"query"``."""
    code: str
    """The source to run; ``""`` to continue a run, or the input line on ``waiting-input``."""
    options: QueryOptions | None = None
    """Query extensions (local gateway); ``None`` keeps the plain ``{mode, code}`` body."""

    @model_serializer(mode="wrap")
    def _drop_unset_options(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A plain query keeps the 2017 body: {"mode", "code"}.
        data: dict[str, Any] = handler(self)
        if not data.get("options"):
            data.pop("options", None)
        return data


class BatchRequest(RequestModel):
    """Build and run uploaded files."""

    mode: Literal["batch"] = "batch"
    """Always ``"batch"``."""
    code: str = ""
    """Empty for batch mode: the uploaded files are built and run."""
    options: BatchOptions = Field(default_factory=BatchOptions)
    """The build and exec commands."""


class CompleteRequest(RequestModel):
    """Ask for completion candidates."""

    mode: Literal["complete"] = "complete"
    """Always ``"complete"``."""
    code: str
    """The source to complete."""
    options: CompleteOptions = Field(default_factory=CompleteOptions)
    """The cursor position."""


ExecuteRequest: TypeAlias = QueryRequest | BatchRequest | CompleteRequest
