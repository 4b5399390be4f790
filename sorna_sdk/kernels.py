"""Kernel handles: :class:`Kernel` (sync) and :class:`AsyncKernel` (async), same methods.

Every method asks the session's dialect for the call to make (``lambda api: ...``), so one
code path serves Sorna v2 and Backend.AI alike. On Backend.AI a kernel is a compute
session and ``lang`` is its image reference (``python``, ``python:3.11-debian12``, ...).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, overload

from pydantic import ValidationError

from ._dialects import CreateReply, CreateSpec, EventsTarget, PendingRun
from ._protocol import Response, kernel_path_segment
from ._run import InputSource, RunState
from .exceptions import (
    APIResponseValidationError,
    InvalidArgumentError,
    KernelNotFoundError,
    SornaError,
)
from .models import (
    AuthorizeResponse,
    BatchOptions,
    BatchOptionsDict,
    BatchRequest,
    CompleteOptions,
    CompleteOptionsDict,
    CompleteRequest,
    Completions,
    CreateStatus,
    DestroyResult,
    ExecMode,
    ExecuteRequest,
    ExecutionResult,
    FigureFormat,
    FileList,
    KernelInfo,
    QueryOptions,
    QueryRequest,
    ServicePort,
    SessionType,
)
from .session import AsyncSession, Session, get_default_async_session, get_default_session

if TYPE_CHECKING:
    # The WebSocket stack, SSE events, live runs and the tar reader load on first use.
    from .events import EventStream, SyncEventStream
    from .execute_stream import ExecuteStream, SyncExecuteStream
    from .live import AsyncLiveRun, AsyncOutputCallback, LiveRun, LiveTransport, OutputCallback
    from .pty import StreamPty, SyncStreamPty

__all__ = ["AsyncKernel", "ClusterMode", "Kernel"]

P = ParamSpec("P")
R = TypeVar("R")
StrPath = str | os.PathLike[str]
#: What ``opts=`` may be, by mode: nothing for query; a dict or model for batch and complete.
ExecOpts = BatchOptionsDict | CompleteOptionsDict | BatchOptions | CompleteOptions
ClusterMode = Literal["single-node", "multi-node"]
#: Upper bound of what one download() may write (all files together).
DOWNLOAD_LIMIT = 1 << 30
#: Longest time a handle spends collecting the end of a run it interrupted (seconds).
COLLECT_LIMIT = 30.0


def _check_lang(lang: str | None, image: str | None) -> str:
    if lang is not None and image is not None:
        raise InvalidArgumentError("pass lang or image (the same thing on Backend.AI), not both")
    chosen = lang if lang is not None else image
    if not isinstance(chosen, str) or not chosen.strip():
        raise InvalidArgumentError(
            "lang must be a non-empty string such as 'python3' (Sorna) or an image "
            "reference such as 'python:3.11-debian12' (Backend.AI)"
        )
    return chosen


def _check_limits(max_mem: int, exec_timeout: int, max_wait: int | None, size: int) -> None:
    for name, value in (("max_mem", max_mem), ("exec_timeout", exec_timeout)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidArgumentError(f"{name} must be an integer >= 0, got {value!r}")
    if max_wait is not None and (
        not isinstance(max_wait, int) or isinstance(max_wait, bool) or max_wait < 0
    ):
        raise InvalidArgumentError(f"max_wait must be an integer >= 0 (seconds), got {max_wait!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise InvalidArgumentError(f"cluster_size must be an integer >= 1, got {size!r}")


def _with_token(spec: CreateSpec, token: str) -> CreateSpec:
    return replace(spec, token=token)


def _execute_request(
    code: str,
    mode: ExecMode | str,
    opts: Mapping[str, Any] | ExecOpts | None,
    *,
    last_value: bool = False,
    figure_formats: Sequence[FigureFormat] | None = None,
) -> ExecuteRequest:
    if not isinstance(code, str):
        raise InvalidArgumentError(f"code must be a string, got {type(code).__name__}")
    if (last_value or figure_formats is not None) and mode != "query":
        raise InvalidArgumentError("last_value and figure_formats are options of query mode")
    try:
        if mode == "query":
            if opts:
                raise InvalidArgumentError("query mode takes no opts")
            if last_value or figure_formats is not None:
                options = QueryOptions(
                    last_value=True if last_value else None,
                    figure_formats=list(figure_formats) if figure_formats is not None else None,
                )
                return QueryRequest(code=code, options=options)
            return QueryRequest(code=code)
        if mode == "batch":
            return BatchRequest(code=code, options=BatchOptions.model_validate(opts or {}))
        if mode == "complete":
            return CompleteRequest(code=code, options=CompleteOptions.model_validate(opts or {}))
    except ValidationError as exc:
        raise InvalidArgumentError(f"invalid opts for {mode} mode: {exc}") from exc
    raise InvalidArgumentError(f"mode must be 'query', 'batch' or 'complete', got {mode!r}")


def _read_uploads(paths: Iterable[StrPath], base_dir: StrPath | None) -> list[tuple[str, bytes]]:
    """Read files, naming each by its path relative to ``base_dir`` (default: cwd)."""
    base = Path(base_dir if base_dir is not None else os.getcwd()).resolve()
    files: list[tuple[str, bytes]] = []
    for raw in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
        path = Path(raw)
        full = (path if path.is_absolute() else base / path).resolve()
        try:
            relative = full.relative_to(base)
        except ValueError:
            raise InvalidArgumentError(
                f"{raw!s} is outside {base}; pass base_dir= to name it relative to another folder"
            ) from None
        if not full.is_file():
            raise InvalidArgumentError(f"{raw!s} is not a readable file")
        files.append((str(PurePosixPath(*relative.parts)), full.read_bytes()))
    if not files:
        raise InvalidArgumentError("upload() needs at least one file")
    return files


def _download_paths(paths: str | Sequence[str]) -> list[str]:
    names = [paths] if isinstance(paths, str) else list(paths)
    if not names or not all(isinstance(name, str) and name.strip() for name in names):
        raise InvalidArgumentError("download() needs one or more non-empty paths")
    return names


def _check_path(path: str, what: str = "path") -> str:
    if not isinstance(path, str) or not path.strip():
        raise InvalidArgumentError(f"{what} must be a non-empty string")
    return path


async def _to_thread(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    import asyncio  # loaded by async use only: a sync program never pays for it

    return await asyncio.to_thread(func, *args, **kwargs)


def _extract(response: Response, dest: StrPath, max_bytes: int) -> list[Path]:
    """Unpack a download answer (multipart/mixed of tar archives) under ``dest``."""
    from ._archive import ArchiveError, ExtractLimits, extract_tar, split_multipart_mixed

    target = Path(dest)
    target.mkdir(parents=True, exist_ok=True)
    try:
        written: list[Path] = []
        limit = max_bytes
        for part in split_multipart_mixed(response.content_type, response.content):
            paths = extract_tar(part, target, limits=ExtractLimits(max_bytes=limit))
            written.extend(paths)
            limit -= sum(path.stat().st_size for path in paths if path.is_file())
        return written
    except ArchiveError as exc:
        raise APIResponseValidationError(
            f"{response.method} {response.url}: the download could not be unpacked: {exc}",
            status=response.status,
            body=response.content[:1024],
        ) from exc


class _KernelBase:
    """State and helpers shared by both handles."""

    def __init__(
        self,
        kernel_id: str,
        *,
        lang: str | None = None,
        client_token: str | None = None,
        created: bool | None = None,
        status: CreateStatus | None = None,
        service_ports: Sequence[ServicePort] = (),
    ) -> None:
        kernel_path_segment(kernel_id)  # refuses empty ids before any I/O
        self.kernel_id: str = kernel_id
        """How the server addresses the kernel (Backend.AI v5+: the session's UUID)."""
        self.lang: str | None = lang
        """The kernel's language (Backend.AI: its image reference), when known."""
        self.client_token: str | None = client_token
        """The token it was created with (Backend.AI: the session name)."""
        self.created: bool | None = created
        """Whether get_or_create started a new kernel (``None`` if the server did not say)."""
        self.status: CreateStatus | None = status
        """The session's status when created (Backend.AI; ``None`` from Sorna servers)."""
        self.service_ports: tuple[ServicePort, ...] = tuple(service_ports)
        """Services the session exposes (Backend.AI)."""
        self._pending: PendingRun | None = None
        #: A run this handle interrupted (deadline, a left stream) whose end is not collected.
        self._unfinished: PendingRun | None = None

    def __repr__(self) -> str:
        lang = f" lang={self.lang!r}" if self.lang else ""
        status = f" status={self.status}" if self.status else ""
        return f"<{type(self).__name__} {self.kernel_id!r}{lang}{status}>"

    def _track(self, result: ExecutionResult) -> ExecutionResult:
        """Remember an unfinished run so that the next execute continues it."""
        if result.done:
            self._pending = None
        else:
            run_id = result.run_id or (self._pending.run_id if self._pending else None)
            self._pending = PendingRun(status=result.status, run_id=run_id)
        return result

    def _leave_unfinished(self, run_id: str | None) -> None:
        """Remember an interrupted run: its end is collected before the next call."""
        self._pending = None
        self._unfinished = PendingRun(status="continued", run_id=run_id)

    def _events_target(self) -> EventsTarget:
        return EventsTarget(kernel_id=self.kernel_id, name=self.client_token)

    @staticmethod
    def _spec(
        lang: str | None,
        image: str | None,
        *,
        mounts: Sequence[str],
        max_mem: int,
        exec_timeout: int,
        session_type: SessionType | None,
        enqueue_only: bool,
        max_wait: int | None,
        reuse: bool,
        resources: Mapping[str, str | int] | None,
        environ: Mapping[str, str] | None,
        cluster_size: int,
        cluster_mode: ClusterMode,
        resource_group: str | None,
        domain: str | None,
        group: str | None,
    ) -> CreateSpec:
        _check_limits(max_mem, exec_timeout, max_wait, cluster_size)
        return CreateSpec(
            lang=_check_lang(lang, image),
            token="",
            mounts=tuple(mounts),
            max_mem=max_mem,
            exec_timeout=exec_timeout,
            session_type=session_type,
            enqueue_only=enqueue_only,
            max_wait=max_wait,
            reuse=reuse,
            resources=resources,
            environ=environ,
            cluster_size=cluster_size,
            cluster_mode=cluster_mode,
            resource_group=resource_group,
            domain=domain,
            group=group,
        )


def _handle_args(reply: CreateReply) -> dict[str, Any]:
    return {
        "created": reply.created,
        "status": reply.status,
        "service_ports": reply.service_ports,
    }


class Kernel(_KernelBase):
    """A kernel (Backend.AI: a compute session); ``Kernel(kernel_id)`` attaches to one.

    Use as a context manager to destroy the kernel on exit.
    """

    def __init__(
        self,
        kernel_id: str,
        *,
        session: Session | None = None,
        lang: str | None = None,
        client_token: str | None = None,
        created: bool | None = None,
        status: CreateStatus | None = None,
        service_ports: Sequence[ServicePort] = (),
    ) -> None:
        super().__init__(
            kernel_id,
            lang=lang,
            client_token=client_token,
            created=created,
            status=status,
            service_ports=service_ports,
        )
        self.session: Session = session if session is not None else get_default_session()
        """The session this handle sends its calls through."""

    @classmethod
    def get_or_create(
        cls,
        lang: str | None = None,
        client_token: str | None = None,
        *,
        image: str | None = None,
        mounts: Sequence[str] = (),
        max_mem: int = 0,
        exec_timeout: int = 0,
        session_type: SessionType | None = None,
        enqueue_only: bool = False,
        max_wait: int | None = None,
        reuse: bool = True,
        resources: Mapping[str, str | int] | None = None,
        environ: Mapping[str, str] | None = None,
        cluster_size: int = 1,
        cluster_mode: ClusterMode = "single-node",
        resource_group: str | None = None,
        session: Session | None = None,
    ) -> Kernel:
        """Return the living kernel for (your key, ``client_token``, ``lang``), or start one.

        Sorna: ``max_mem`` is in KiB and ``exec_timeout`` in seconds (0: server default).
        Backend.AI: ``lang`` (or ``image``) is the image reference, ``client_token`` the
        session name (4-64 characters), and the other keywords are the session's options
        (``max_wait`` in seconds; ``reuse=False`` raises ``SessionAlreadyExistsError`` if
        the name is taken). An omitted ``client_token`` is random, so the kernel is new.
        """
        session = session if session is not None else get_default_session()
        spec = cls._spec(
            lang,
            image,
            mounts=mounts,
            max_mem=max_mem,
            exec_timeout=exec_timeout,
            session_type=session_type,
            enqueue_only=enqueue_only,
            max_wait=max_wait,
            reuse=reuse,
            resources=resources,
            environ=environ,
            cluster_size=cluster_size,
            cluster_mode=cluster_mode,
            resource_group=resource_group,
            domain=session.config.domain,
            group=session.config.group,
        )
        api = session.dialect()
        token = client_token if client_token is not None else api.new_token()
        api.check_token(token)
        reply: CreateReply = session.exchange(api.create(_with_token(spec, token)))
        return cls(
            reply.kernel_id, session=session, lang=spec.lang, client_token=token,
            **_handle_args(reply),
        )  # fmt: skip

    @classmethod
    def authorize(cls, echo: Any = None, *, session: Session | None = None) -> AuthorizeResponse:
        """Check the credentials against the server."""
        session = session if session is not None else get_default_session()
        return session.authorize(echo)

    @overload
    def execute(
        self,
        code: str = "",
        mode: Literal["query"] = "query",
        opts: None = None,
        *,
        timeout: float | None = None,
    ) -> ExecutionResult: ...
    @overload
    def execute(
        self,
        code: str,
        mode: Literal["batch"],
        opts: BatchOptionsDict | BatchOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> ExecutionResult: ...
    @overload
    def execute(
        self,
        code: str = "",
        *,
        mode: Literal["batch"],
        opts: BatchOptionsDict | BatchOptions | None = None,
        timeout: float | None = None,
    ) -> ExecutionResult: ...
    @overload
    def execute(
        self,
        code: str,
        mode: Literal["complete"],
        opts: CompleteOptionsDict | CompleteOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> ExecutionResult: ...
    @overload
    def execute(
        self,
        code: str = "",
        *,
        mode: Literal["complete"],
        opts: CompleteOptionsDict | CompleteOptions | None = None,
        timeout: float | None = None,
    ) -> ExecutionResult: ...
    def execute(
        self,
        code: str = "",
        mode: ExecMode = "query",
        opts: ExecOpts | None = None,
        *,
        timeout: float | None = None,
    ) -> ExecutionResult:
        """Run one execute call. While a run is unfinished, ``code=""`` continues it and a
        line of text answers ``waiting-input``.

        ``opts`` is typed by ``mode``: none for query (the default),
        :class:`~sorna_sdk.models.BatchOptionsDict` (or :class:`~sorna_sdk.models.BatchOptions`)
        for batch, :class:`~sorna_sdk.models.CompleteOptionsDict` (or
        :class:`~sorna_sdk.models.CompleteOptions`) for complete; an unknown key is a type error.

        ``timeout``: seconds for this call; on expiry the run is interrupted and
        :class:`~sorna_sdk.ExecutionTimeoutError` raised.
        """
        return self._execute(_execute_request(code, mode, opts), timeout)

    def _execute(self, request: ExecuteRequest, timeout: float | None = None) -> ExecutionResult:
        self._collect_unfinished()
        pending = self._pending
        if timeout is not None:
            from .live import execute_within

            return self._track(execute_within(self, request, pending, timeout))
        result = self.session.send(lambda api: api.execute(self.kernel_id, request, pending))
        return self._track(result)

    @overload
    def run(
        self,
        code: str,
        *,
        mode: Literal["query"] = "query",
        opts: None = None,
        input: InputSource | None = None,
        on_output: OutputCallback | None = None,
        timeout: float | None = None,
        last_value: bool = False,
        figure_formats: Sequence[FigureFormat] | None = None,
        transport: LiveTransport = "auto",
    ) -> ExecutionResult: ...
    @overload
    def run(
        self,
        code: str,
        *,
        mode: Literal["batch"],
        opts: BatchOptionsDict | BatchOptions | None = None,
        input: InputSource | None = None,
        on_output: OutputCallback | None = None,
        timeout: float | None = None,
        last_value: Literal[False] = False,
        figure_formats: None = None,
        transport: LiveTransport = "auto",
    ) -> ExecutionResult: ...
    @overload
    def run(
        self,
        code: str,
        *,
        mode: Literal["complete"],
        opts: CompleteOptionsDict | CompleteOptions | None = None,
        input: InputSource | None = None,
        on_output: OutputCallback | None = None,
        timeout: float | None = None,
        last_value: Literal[False] = False,
        figure_formats: None = None,
        transport: LiveTransport = "auto",
    ) -> ExecutionResult: ...
    def run(
        self,
        code: str,
        *,
        mode: ExecMode = "query",
        opts: ExecOpts | None = None,
        input: InputSource | None = None,
        on_output: OutputCallback | None = None,
        timeout: float | None = None,
        last_value: bool = False,
        figure_formats: Sequence[FigureFormat] | None = None,
        transport: LiveTransport = "auto",
    ) -> ExecutionResult:
        """Execute until the program finishes and return one merged result.

        Follows ``continued``, ``build-finished`` and ``clean-finished``, and answers
        ``waiting-input`` from ``input``: a callback given the waiting result, an iterable of
        lines, or a ``str`` read as typed text, one line per prompt (``input="Bob"`` answers
        one prompt with ``Bob``, not three with ``B``, ``o``, ``b``). ``opts`` is typed by
        ``mode``: none for query, :class:`~sorna_sdk.models.BatchOptionsDict` (or
        :class:`~sorna_sdk.models.BatchOptions`) for batch,
        :class:`~sorna_sdk.models.CompleteOptionsDict` for complete.
        ``on_output(item)`` is called with each console item as it arrives; ``timeout`` is
        a wall-clock deadline for the whole run (:class:`~sorna_sdk.ExecutionTimeoutError`);
        ``last_value`` adds the last expression's value as a ``result`` item and
        ``figure_formats`` picks the formats of matplotlib figures (local gateway).
        """
        request = _execute_request(
            code, mode, opts, last_value=last_value, figure_formats=figure_formats
        )
        plain = not (isinstance(request, QueryRequest) and request.options is not None)
        if request.mode == "complete" or (on_output is None and timeout is None and plain):
            return self._poll(code, mode, opts, input)
        from .live import LiveRun, OutputEvent

        with LiveRun(self, request, input=input, timeout=timeout, transport=transport) as live:
            for event in live:
                if on_output is not None and isinstance(event, OutputEvent):
                    on_output(event.item)
        return live.result_or_raise()

    def stream(
        self,
        code: str,
        *,
        mode: ExecMode = "query",
        opts: Mapping[str, Any] | None = None,
        input: InputSource | None = None,
        timeout: float | None = None,
        last_value: bool = False,
        figure_formats: Sequence[FigureFormat] | None = None,
        transport: LiveTransport = "auto",
    ) -> LiveRun:
        """Start a run and iterate its events as they happen: :class:`~sorna_sdk.OutputEvent`
        per console item, :class:`~sorna_sdk.InputRequest` (``.reply(text)``), then one
        :class:`~sorna_sdk.ResultEvent`. Use as a context manager; nothing is sent before
        the first ``next()``."""
        request = _execute_request(
            code, mode, opts, last_value=last_value, figure_formats=figure_formats
        )
        from .live import LiveRun

        return LiveRun(self, request, input=input, timeout=timeout, transport=transport)

    def _poll(
        self,
        code: str,
        mode: ExecMode,
        opts: ExecOpts | None,
        input: InputSource | None,
    ) -> ExecutionResult:
        state = RunState(input)
        state.feed(self._execute(_execute_request(code, mode, opts)))
        while not state.done:
            state.feed(self._execute(_execute_request(state.next_code(), mode, opts)))
        return state.result()

    def _collect_unfinished(self) -> None:
        """Collect the end of a run this handle interrupted, so the kernel takes new code."""
        unfinished, self._unfinished = self._unfinished, None
        if unfinished is None:
            return
        request = QueryRequest(code="")
        until = time.monotonic() + COLLECT_LIMIT
        interrupted_again = False
        while time.monotonic() < until:
            try:
                result = self.session.send(
                    lambda api: api.execute(self.kernel_id, request, unfinished)
                )
                if result.done:
                    return
                if result.status == "waiting-input" and not interrupted_again:
                    interrupted_again = True
                    self.interrupt()
            except SornaError:
                return  # nothing to collect (or the kernel is gone): the next call will tell

    def complete(self, code: str, *, row: int = 0, col: int = 0) -> Completions:
        """Completion candidates for ``code`` at (``row``, ``col``)."""
        return self.session.send(lambda api: api.complete(self.kernel_id, code, row=row, col=col))

    def interrupt(self) -> None:
        """Interrupt the program running in the kernel; its run ends (``interrupted`` on the
        local gateway, ``finished`` with a KeyboardInterrupt on Backend.AI)."""
        self.session.send(lambda api: api.interrupt(self.kernel_id))

    def get_info(self) -> KernelInfo:
        """Kernel information: age, queries executed, status, resources, ..."""
        return self.session.send(lambda api: api.info(self.kernel_id))

    def restart(self) -> None:
        """Restart the kernel: same id, fresh state."""
        self.session.send(lambda api: api.restart(self.kernel_id))
        self._pending = None

    def destroy(self, *, forced: bool = False) -> DestroyResult | None:
        """Destroy the kernel and free its resources.

        Returns the server's last statistics of the session (Backend.AI), or ``None``
        when the server reports none (Sorna). ``forced``: Backend.AI's force flag.
        """
        result = self.session.send(lambda api: api.destroy(self.kernel_id, forced=forced))
        self._pending = None
        return result

    def upload(self, paths: Iterable[StrPath], *, base_dir: StrPath | None = None) -> None:
        """Upload files into the kernel's folder, named relative to ``base_dir`` (default: cwd)."""
        files = _read_uploads(paths, base_dir)
        self.session.send(lambda api: api.upload(self.kernel_id, files))

    def list_files(self, path: str = ".") -> FileList:
        """List a folder of the kernel (relative to its home folder) (Backend.AI)."""
        folder = _check_path(path)
        return self.session.send(lambda api: api.list_files(self.kernel_id, folder))

    def download(
        self, paths: str | Sequence[str], dest: StrPath = ".", *, max_bytes: int = DOWNLOAD_LIMIT
    ) -> list[Path]:
        """Download files or folders into ``dest``; return the paths written (Backend.AI).

        Archives are unpacked safely: nothing lands outside ``dest``, no link points out
        of it, and at most ``max_bytes`` are written.
        """
        names = _download_paths(paths)
        response = self.session.send(lambda api: api.download(self.kernel_id, names))
        return _extract(response, dest, max_bytes)

    def download_single(self, path: str) -> bytes:
        """One file's content (Backend.AI)."""
        name = _check_path(path)
        return self.session.send(lambda api: api.download_single(self.kernel_id, name))

    def logs(self) -> str:
        """The kernel container's log (Backend.AI)."""
        return self.session.send(lambda api: api.logs(self.kernel_id))

    def events(self, *, reconnect: bool = True) -> SyncEventStream:
        """The session's lifecycle events as typed models, until the server closes (Backend.AI).

        Use as a context manager and iterate; a dropped stream is re-opened (re-signed).
        """
        from .events import SyncEventStream

        return SyncEventStream(self.session, self._events_target(), reconnect=reconnect)

    def stream_execute(
        self,
        code: str,
        *,
        mode: ExecMode = "query",
        opts: Mapping[str, Any] | None = None,
        open_timeout: float | None = 10.0,
    ) -> SyncExecuteStream:
        """Run code over the execute WebSocket; iterate for results as they come (Backend.AI)."""
        request = _execute_request(code, mode, opts)
        from .execute_stream import SyncExecuteStream

        return SyncExecuteStream.connect(
            self.session, self.kernel_id, request, open_timeout=open_timeout
        )

    def stream_pty(self, *, open_timeout: float | None = 10.0) -> SyncStreamPty:
        """Open the kernel's terminal: iterate for output, ``send()`` input, ``resize()``."""
        from .pty import SyncStreamPty

        return SyncStreamPty.connect(self.session, self.kernel_id, open_timeout=open_timeout)

    def __enter__(self) -> Kernel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # An exec timeout (or the idle reaper) may have destroyed the kernel already.
        with contextlib.suppress(KernelNotFoundError):
            self.destroy()


class AsyncKernel(_KernelBase):
    """The asynchronous twin of :class:`Kernel`: the same methods, as coroutines."""

    def __init__(
        self,
        kernel_id: str,
        *,
        session: AsyncSession | None = None,
        lang: str | None = None,
        client_token: str | None = None,
        created: bool | None = None,
        status: CreateStatus | None = None,
        service_ports: Sequence[ServicePort] = (),
    ) -> None:
        super().__init__(
            kernel_id,
            lang=lang,
            client_token=client_token,
            created=created,
            status=status,
            service_ports=service_ports,
        )
        self.session: AsyncSession = session if session is not None else get_default_async_session()
        """The session this handle sends its calls through."""

    @classmethod
    async def get_or_create(
        cls,
        lang: str | None = None,
        client_token: str | None = None,
        *,
        image: str | None = None,
        mounts: Sequence[str] = (),
        max_mem: int = 0,
        exec_timeout: int = 0,
        session_type: SessionType | None = None,
        enqueue_only: bool = False,
        max_wait: int | None = None,
        reuse: bool = True,
        resources: Mapping[str, str | int] | None = None,
        environ: Mapping[str, str] | None = None,
        cluster_size: int = 1,
        cluster_mode: ClusterMode = "single-node",
        resource_group: str | None = None,
        session: AsyncSession | None = None,
    ) -> AsyncKernel:
        """Return the living kernel for (your key, ``client_token``, ``lang``), or start one.

        Sorna: ``max_mem`` is in KiB and ``exec_timeout`` in seconds (0: server default).
        Backend.AI: ``lang`` (or ``image``) is the image reference, ``client_token`` the
        session name (4-64 characters), and the other keywords are the session's options
        (``max_wait`` in seconds; ``reuse=False`` raises ``SessionAlreadyExistsError`` if
        the name is taken). An omitted ``client_token`` is random, so the kernel is new.
        """
        session = session if session is not None else get_default_async_session()
        spec = cls._spec(
            lang,
            image,
            mounts=mounts,
            max_mem=max_mem,
            exec_timeout=exec_timeout,
            session_type=session_type,
            enqueue_only=enqueue_only,
            max_wait=max_wait,
            reuse=reuse,
            resources=resources,
            environ=environ,
            cluster_size=cluster_size,
            cluster_mode=cluster_mode,
            resource_group=resource_group,
            domain=session.config.domain,
            group=session.config.group,
        )
        api = await session.dialect()
        token = client_token if client_token is not None else api.new_token()
        api.check_token(token)
        reply: CreateReply = await session.exchange(api.create(_with_token(spec, token)))
        return cls(
            reply.kernel_id, session=session, lang=spec.lang, client_token=token,
            **_handle_args(reply),
        )  # fmt: skip

    @classmethod
    async def authorize(
        cls, echo: Any = None, *, session: AsyncSession | None = None
    ) -> AuthorizeResponse:
        """Check the credentials against the server."""
        session = session if session is not None else get_default_async_session()
        return await session.authorize(echo)

    @overload
    async def execute(
        self,
        code: str = "",
        mode: Literal["query"] = "query",
        opts: None = None,
        *,
        timeout: float | None = None,
    ) -> ExecutionResult: ...
    @overload
    async def execute(
        self,
        code: str,
        mode: Literal["batch"],
        opts: BatchOptionsDict | BatchOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> ExecutionResult: ...
    @overload
    async def execute(
        self,
        code: str = "",
        *,
        mode: Literal["batch"],
        opts: BatchOptionsDict | BatchOptions | None = None,
        timeout: float | None = None,
    ) -> ExecutionResult: ...
    @overload
    async def execute(
        self,
        code: str,
        mode: Literal["complete"],
        opts: CompleteOptionsDict | CompleteOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> ExecutionResult: ...
    @overload
    async def execute(
        self,
        code: str = "",
        *,
        mode: Literal["complete"],
        opts: CompleteOptionsDict | CompleteOptions | None = None,
        timeout: float | None = None,
    ) -> ExecutionResult: ...
    async def execute(
        self,
        code: str = "",
        mode: ExecMode = "query",
        opts: ExecOpts | None = None,
        *,
        timeout: float | None = None,
    ) -> ExecutionResult:
        """Run one execute call. While a run is unfinished, ``code=""`` continues it and a
        line of text answers ``waiting-input``.

        ``opts`` is typed by ``mode``: none for query (the default),
        :class:`~sorna_sdk.models.BatchOptionsDict` (or :class:`~sorna_sdk.models.BatchOptions`)
        for batch, :class:`~sorna_sdk.models.CompleteOptionsDict` (or
        :class:`~sorna_sdk.models.CompleteOptions`) for complete; an unknown key is a type error.

        ``timeout``: seconds for this call; on expiry the run is interrupted and
        :class:`~sorna_sdk.ExecutionTimeoutError` raised.
        """
        return await self._execute(_execute_request(code, mode, opts), timeout)

    async def _execute(
        self, request: ExecuteRequest, timeout: float | None = None
    ) -> ExecutionResult:
        await self._collect_unfinished()
        pending = self._pending
        if timeout is not None:
            from .live import execute_within_async

            return self._track(await execute_within_async(self, request, pending, timeout))
        result = await self.session.send(lambda api: api.execute(self.kernel_id, request, pending))
        return self._track(result)

    @overload
    async def run(
        self,
        code: str,
        *,
        mode: Literal["query"] = "query",
        opts: None = None,
        input: InputSource | None = None,
        on_output: AsyncOutputCallback | None = None,
        timeout: float | None = None,
        last_value: bool = False,
        figure_formats: Sequence[FigureFormat] | None = None,
        transport: LiveTransport = "auto",
    ) -> ExecutionResult: ...
    @overload
    async def run(
        self,
        code: str,
        *,
        mode: Literal["batch"],
        opts: BatchOptionsDict | BatchOptions | None = None,
        input: InputSource | None = None,
        on_output: AsyncOutputCallback | None = None,
        timeout: float | None = None,
        last_value: Literal[False] = False,
        figure_formats: None = None,
        transport: LiveTransport = "auto",
    ) -> ExecutionResult: ...
    @overload
    async def run(
        self,
        code: str,
        *,
        mode: Literal["complete"],
        opts: CompleteOptionsDict | CompleteOptions | None = None,
        input: InputSource | None = None,
        on_output: AsyncOutputCallback | None = None,
        timeout: float | None = None,
        last_value: Literal[False] = False,
        figure_formats: None = None,
        transport: LiveTransport = "auto",
    ) -> ExecutionResult: ...
    async def run(
        self,
        code: str,
        *,
        mode: ExecMode = "query",
        opts: ExecOpts | None = None,
        input: InputSource | None = None,
        on_output: AsyncOutputCallback | None = None,
        timeout: float | None = None,
        last_value: bool = False,
        figure_formats: Sequence[FigureFormat] | None = None,
        transport: LiveTransport = "auto",
    ) -> ExecutionResult:
        """Execute until the program finishes and return one merged result.

        Follows ``continued``, ``build-finished`` and ``clean-finished``, and answers
        ``waiting-input`` from ``input``: a callback given the waiting result, an iterable of
        lines, or a ``str`` read as typed text, one line per prompt (``input="Bob"`` answers
        one prompt with ``Bob``, not three with ``B``, ``o``, ``b``). ``opts`` is typed by
        ``mode``: none for query, :class:`~sorna_sdk.models.BatchOptionsDict` (or
        :class:`~sorna_sdk.models.BatchOptions`) for batch,
        :class:`~sorna_sdk.models.CompleteOptionsDict` for complete.
        ``on_output(item)`` is called (an async one awaited) with each console item as it
        arrives; ``timeout`` is a wall-clock deadline for the whole run
        (:class:`~sorna_sdk.ExecutionTimeoutError`); ``last_value`` adds the last
        expression's value as a ``result`` item and ``figure_formats`` picks the formats of
        matplotlib figures (local gateway).
        """
        request = _execute_request(
            code, mode, opts, last_value=last_value, figure_formats=figure_formats
        )
        plain = not (isinstance(request, QueryRequest) and request.options is not None)
        if request.mode == "complete" or (on_output is None and timeout is None and plain):
            return await self._poll(code, mode, opts, input)
        from .live import AsyncLiveRun, OutputEvent, call_output

        live = AsyncLiveRun(self, request, input=input, timeout=timeout, transport=transport)
        async with live:
            async for event in live:
                if on_output is not None and isinstance(event, OutputEvent):
                    await call_output(on_output, event.item)
        return await live.result_or_raise()

    def stream(
        self,
        code: str,
        *,
        mode: ExecMode = "query",
        opts: Mapping[str, Any] | None = None,
        input: InputSource | None = None,
        timeout: float | None = None,
        last_value: bool = False,
        figure_formats: Sequence[FigureFormat] | None = None,
        transport: LiveTransport = "auto",
    ) -> AsyncLiveRun:
        """Start a run and iterate its events as they happen (``async for``):
        :class:`~sorna_sdk.OutputEvent` per console item, :class:`~sorna_sdk.InputRequest`
        (``.reply(text)``), then one :class:`~sorna_sdk.ResultEvent`. Use as an async
        context manager; nothing is sent before the first ``__anext__``."""
        request = _execute_request(
            code, mode, opts, last_value=last_value, figure_formats=figure_formats
        )
        from .live import AsyncLiveRun

        return AsyncLiveRun(self, request, input=input, timeout=timeout, transport=transport)

    async def _poll(
        self,
        code: str,
        mode: ExecMode,
        opts: ExecOpts | None,
        input: InputSource | None,
    ) -> ExecutionResult:
        state = RunState(input)
        state.feed(await self._execute(_execute_request(code, mode, opts)))
        while not state.done:
            state.feed(await self._execute(_execute_request(state.next_code(), mode, opts)))
        return state.result()

    async def _collect_unfinished(self) -> None:
        """Collect the end of a run this handle interrupted, so the kernel takes new code."""
        unfinished, self._unfinished = self._unfinished, None
        if unfinished is None:
            return
        request = QueryRequest(code="")
        until = time.monotonic() + COLLECT_LIMIT
        interrupted_again = False
        while time.monotonic() < until:
            try:
                result = await self.session.send(
                    lambda api: api.execute(self.kernel_id, request, unfinished)
                )
                if result.done:
                    return
                if result.status == "waiting-input" and not interrupted_again:
                    interrupted_again = True
                    await self.interrupt()
            except SornaError:
                return  # nothing to collect (or the kernel is gone): the next call will tell

    async def complete(self, code: str, *, row: int = 0, col: int = 0) -> Completions:
        """Completion candidates for ``code`` at (``row``, ``col``)."""
        return await self.session.send(
            lambda api: api.complete(self.kernel_id, code, row=row, col=col)
        )

    async def interrupt(self) -> None:
        """Interrupt the program running in the kernel; its run ends (``interrupted`` on the
        local gateway, ``finished`` with a KeyboardInterrupt on Backend.AI)."""
        await self.session.send(lambda api: api.interrupt(self.kernel_id))

    async def get_info(self) -> KernelInfo:
        """Kernel information: age, queries executed, status, resources, ..."""
        return await self.session.send(lambda api: api.info(self.kernel_id))

    async def restart(self) -> None:
        """Restart the kernel: same id, fresh state."""
        await self.session.send(lambda api: api.restart(self.kernel_id))
        self._pending = None

    async def destroy(self, *, forced: bool = False) -> DestroyResult | None:
        """Destroy the kernel and free its resources.

        Returns the server's last statistics of the session (Backend.AI), or ``None``
        when the server reports none (Sorna). ``forced``: Backend.AI's force flag.
        """
        result = await self.session.send(lambda api: api.destroy(self.kernel_id, forced=forced))
        self._pending = None
        return result

    async def upload(self, paths: Iterable[StrPath], *, base_dir: StrPath | None = None) -> None:
        """Upload files into the kernel's folder, named relative to ``base_dir`` (default: cwd)."""
        files = await _to_thread(_read_uploads, paths, base_dir)
        await self.session.send(lambda api: api.upload(self.kernel_id, files))

    async def list_files(self, path: str = ".") -> FileList:
        """List a folder of the kernel (relative to its home folder) (Backend.AI)."""
        folder = _check_path(path)
        return await self.session.send(lambda api: api.list_files(self.kernel_id, folder))

    async def download(
        self, paths: str | Sequence[str], dest: StrPath = ".", *, max_bytes: int = DOWNLOAD_LIMIT
    ) -> list[Path]:
        """Download files or folders into ``dest``; return the paths written (Backend.AI).

        Archives are unpacked safely: nothing lands outside ``dest``, no link points out
        of it, and at most ``max_bytes`` are written.
        """
        names = _download_paths(paths)
        response = await self.session.send(lambda api: api.download(self.kernel_id, names))
        return await _to_thread(_extract, response, dest, max_bytes)

    async def download_single(self, path: str) -> bytes:
        """One file's content (Backend.AI)."""
        name = _check_path(path)
        return await self.session.send(lambda api: api.download_single(self.kernel_id, name))

    async def logs(self) -> str:
        """The kernel container's log (Backend.AI)."""
        return await self.session.send(lambda api: api.logs(self.kernel_id))

    def events(self, *, reconnect: bool = True) -> EventStream:
        """The session's lifecycle events as typed models, until the server closes (Backend.AI).

        Use as an async context manager and iterate; a dropped stream is re-opened (re-signed).
        """
        from .events import EventStream

        return EventStream(self.session, self._events_target(), reconnect=reconnect)

    async def stream_execute(
        self,
        code: str,
        *,
        mode: ExecMode = "query",
        opts: Mapping[str, Any] | None = None,
        open_timeout: float | None = 10.0,
    ) -> ExecuteStream:
        """Run code over the execute WebSocket; iterate for results as they come (Backend.AI)."""
        request = _execute_request(code, mode, opts)
        from .execute_stream import ExecuteStream

        return await ExecuteStream.connect(
            self.session, self.kernel_id, request, open_timeout=open_timeout
        )

    async def stream_pty(self, *, open_timeout: float | None = 10.0) -> StreamPty:
        """Open the kernel's terminal: iterate for output, ``send()`` input, ``resize()``."""
        from .pty import StreamPty

        return await StreamPty.connect(self.session, self.kernel_id, open_timeout=open_timeout)

    async def __aenter__(self) -> AsyncKernel:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # An exec timeout (or the idle reaper) may have destroyed the kernel already.
        with contextlib.suppress(KernelNotFoundError):
            await self.destroy()
