"""Kernel handles: :class:`Kernel` (sync) and :class:`AsyncKernel` (async), same methods."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from ._protocol import kernel_path_segment
from ._run import InputSource, RunState
from .exceptions import InvalidArgumentError, KernelNotFoundError
from .models import (
    AuthorizeResponse,
    BatchOptions,
    BatchRequest,
    CompleteOptions,
    CompleteRequest,
    ExecMode,
    ExecuteRequest,
    ExecutionResult,
    KernelInfo,
    QueryRequest,
)
from .pty import StreamPty, SyncStreamPty
from .session import AsyncSession, Session, get_default_async_session, get_default_session

__all__ = ["AsyncKernel", "Kernel"]

TOKEN_MIN, TOKEN_MAX = 8, 80
StrPath = str | os.PathLike[str]


def _client_token(token: str | None) -> str:
    if token is None:
        return secrets.token_urlsafe(18)
    if not isinstance(token, str) or not TOKEN_MIN <= len(token) <= TOKEN_MAX:
        length = len(token) if isinstance(token, str) else type(token).__name__
        raise InvalidArgumentError(
            f"client_token must be {TOKEN_MIN} to {TOKEN_MAX} characters long, got {length}"
        )
    return token


def _check_create_args(lang: str, max_mem: int, exec_timeout: int) -> None:
    if not isinstance(lang, str) or not lang.strip():
        raise InvalidArgumentError("lang must be a non-empty string such as 'python3'")
    for name, value in (("max_mem", max_mem), ("exec_timeout", exec_timeout)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidArgumentError(f"{name} must be an integer >= 0, got {value!r}")


def _execute_request(
    code: str, mode: ExecMode | str, opts: Mapping[str, Any] | None
) -> ExecuteRequest:
    if not isinstance(code, str):
        raise InvalidArgumentError(f"code must be a string, got {type(code).__name__}")
    try:
        if mode == "query":
            if opts:
                raise InvalidArgumentError("query mode takes no opts")
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
    for raw in paths:
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


class _KernelBase:
    """State and helpers shared by both handles."""

    def __init__(
        self,
        kernel_id: str,
        *,
        lang: str | None = None,
        client_token: str | None = None,
        created: bool | None = None,
    ) -> None:
        kernel_path_segment(kernel_id)  # refuses empty ids before any I/O
        self.kernel_id = kernel_id
        self.lang = lang
        self.client_token = client_token
        #: Whether get_or_create started a new kernel (None if the server did not say).
        self.created = created

    def __repr__(self) -> str:
        lang = f" lang={self.lang!r}" if self.lang else ""
        return f"<{type(self).__name__} {self.kernel_id!r}{lang}>"


class Kernel(_KernelBase):
    """A kernel session on the server; ``Kernel(kernel_id)`` attaches to an existing one.

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
    ) -> None:
        super().__init__(kernel_id, lang=lang, client_token=client_token, created=created)
        self.session = session if session is not None else get_default_session()

    @classmethod
    def get_or_create(
        cls,
        lang: str,
        client_token: str | None = None,
        *,
        mounts: Sequence[str] = (),
        max_mem: int = 0,
        exec_timeout: int = 0,
        session: Session | None = None,
    ) -> Kernel:
        """Return the living kernel for (your key, ``client_token``, ``lang``), or start one.

        ``max_mem`` is in KiB and ``exec_timeout`` in seconds (0: server default).
        An omitted ``client_token`` is random, so the kernel is new.
        """
        token = _client_token(client_token)
        _check_create_args(lang, max_mem, exec_timeout)
        session = session if session is not None else get_default_session()
        call = session.routes.create(
            lang, token, max_mem=max_mem, exec_timeout=exec_timeout, mounts=mounts
        )
        reply = session.send(call)
        return cls(
            reply.kernel_id, session=session, lang=lang, client_token=token, created=reply.created
        )

    @classmethod
    def authorize(cls, echo: Any = None, *, session: Session | None = None) -> AuthorizeResponse:
        """Check the credentials against the server (``GET /v2/authorize``)."""
        session = session if session is not None else get_default_session()
        return session.authorize(echo)

    def execute(
        self, code: str = "", mode: ExecMode = "query", opts: Mapping[str, Any] | None = None
    ) -> ExecutionResult:
        """Run one execute call. ``code=""`` continues a ``continued`` run."""
        request = _execute_request(code, mode, opts)
        return self.session.send(self.session.routes.execute(self.kernel_id, request))

    def run(
        self,
        code: str,
        *,
        mode: ExecMode = "query",
        opts: Mapping[str, Any] | None = None,
        input: InputSource | None = None,
    ) -> ExecutionResult:
        """Execute until the program finishes and return one merged result.

        Follows ``continued`` and ``build-finished``, and answers
        ``waiting-input`` from ``input`` (a callback or an iterable of lines).
        """
        state = RunState(input)
        state.feed(self.execute(code, mode, opts))
        while not state.done:
            state.feed(self.execute(state.next_code(), mode, opts))
        return state.result()

    def get_info(self) -> KernelInfo:
        """Kernel information: age, queries executed, memory used, ..."""
        return self.session.send(self.session.routes.info(self.kernel_id))

    def restart(self) -> None:
        """Restart the kernel: same id, fresh state."""
        self.session.send(self.session.routes.restart(self.kernel_id))

    def destroy(self) -> None:
        """Destroy the kernel and free its resources."""
        self.session.send(self.session.routes.destroy(self.kernel_id))

    def upload(self, paths: Iterable[StrPath], *, base_dir: StrPath | None = None) -> None:
        """Upload files into the kernel's folder, named relative to ``base_dir`` (default: cwd)."""
        files = _read_uploads(paths, base_dir)
        self.session.send(self.session.routes.upload(self.kernel_id, files))

    def stream_pty(self, *, open_timeout: float | None = 10.0) -> SyncStreamPty:
        """Open the kernel's terminal: iterate for output, ``send()`` input, ``resize()``."""
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
    ) -> None:
        super().__init__(kernel_id, lang=lang, client_token=client_token, created=created)
        self.session = session if session is not None else get_default_async_session()

    @classmethod
    async def get_or_create(
        cls,
        lang: str,
        client_token: str | None = None,
        *,
        mounts: Sequence[str] = (),
        max_mem: int = 0,
        exec_timeout: int = 0,
        session: AsyncSession | None = None,
    ) -> AsyncKernel:
        """Return the living kernel for (your key, ``client_token``, ``lang``), or start one.

        ``max_mem`` is in KiB and ``exec_timeout`` in seconds (0: server default).
        An omitted ``client_token`` is random, so the kernel is new.
        """
        token = _client_token(client_token)
        _check_create_args(lang, max_mem, exec_timeout)
        session = session if session is not None else get_default_async_session()
        call = session.routes.create(
            lang, token, max_mem=max_mem, exec_timeout=exec_timeout, mounts=mounts
        )
        reply = await session.send(call)
        return cls(
            reply.kernel_id, session=session, lang=lang, client_token=token, created=reply.created
        )

    @classmethod
    async def authorize(
        cls, echo: Any = None, *, session: AsyncSession | None = None
    ) -> AuthorizeResponse:
        """Check the credentials against the server (``GET /v2/authorize``)."""
        session = session if session is not None else get_default_async_session()
        return await session.authorize(echo)

    async def execute(
        self, code: str = "", mode: ExecMode = "query", opts: Mapping[str, Any] | None = None
    ) -> ExecutionResult:
        """Run one execute call. ``code=""`` continues a ``continued`` run."""
        request = _execute_request(code, mode, opts)
        return await self.session.send(self.session.routes.execute(self.kernel_id, request))

    async def run(
        self,
        code: str,
        *,
        mode: ExecMode = "query",
        opts: Mapping[str, Any] | None = None,
        input: InputSource | None = None,
    ) -> ExecutionResult:
        """Execute until the program finishes and return one merged result.

        Follows ``continued`` and ``build-finished``, and answers
        ``waiting-input`` from ``input`` (a callback or an iterable of lines).
        """
        state = RunState(input)
        state.feed(await self.execute(code, mode, opts))
        while not state.done:
            state.feed(await self.execute(state.next_code(), mode, opts))
        return state.result()

    async def get_info(self) -> KernelInfo:
        """Kernel information: age, queries executed, memory used, ..."""
        return await self.session.send(self.session.routes.info(self.kernel_id))

    async def restart(self) -> None:
        """Restart the kernel: same id, fresh state."""
        await self.session.send(self.session.routes.restart(self.kernel_id))

    async def destroy(self) -> None:
        """Destroy the kernel and free its resources."""
        await self.session.send(self.session.routes.destroy(self.kernel_id))

    async def upload(self, paths: Iterable[StrPath], *, base_dir: StrPath | None = None) -> None:
        """Upload files into the kernel's folder, named relative to ``base_dir`` (default: cwd)."""
        files = _read_uploads(paths, base_dir)
        await self.session.send(self.session.routes.upload(self.kernel_id, files))

    async def stream_pty(self, *, open_timeout: float | None = 10.0) -> StreamPty:
        """Open the kernel's terminal: iterate for output, ``send()`` input, ``resize()``."""
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
