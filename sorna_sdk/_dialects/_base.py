"""What a wire dialect is: one object owning everything that differs between API families.

The resource layer (``kernels.py``, ``pty.py``, ``session.py``) asks the session's dialect
for :class:`~sorna_sdk._protocol.Call` objects and paths, and never branches on a version.
Operations a dialect's API lacks raise :class:`~sorna_sdk.UnsupportedOperationError`
before anything is sent (the defaults below).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from .._protocol import Call, Response
from ..auth import SigningPolicy
from ..exceptions import APIStatusError, UnsupportedOperationError
from ..models import (
    AuthorizeResponse,
    Completions,
    CreateStatus,
    DestroyResult,
    ExecuteRequest,
    ExecutionResult,
    ExecutionStatus,
    FileList,
    HelloResponse,
    KernelInfo,
    ServicePort,
    SornaModel,
)
from ..models.pty import StdinFrame, decode_server_frame

__all__ = [
    "CreateReply",
    "CreateSpec",
    "Dialect",
    "EventsTarget",
    "PendingRun",
    "TokenRule",
    "Version",
    "parse_version",
]

#: ``(major, "YYYYMMDD")``: API versions order by this pair.
Version = tuple[int, str]


def parse_version(text: str) -> Version:
    """Split ``v9.20250722`` into ``(9, "20250722")``; ``ValueError`` if malformed."""
    if not isinstance(text, str) or not text.startswith("v") or "." not in text:
        raise ValueError(f"not an API version: {text!r}")
    major, _, date = text[1:].partition(".")
    if not major.isdigit() or len(date) != 8 or not date.isdigit():
        raise ValueError(f"not an API version: {text!r}")
    return int(major), date


@dataclass(frozen=True)
class TokenRule:
    """How long a client token (Backend.AI: session name) may be."""

    min_length: int
    max_length: int
    what: str = "client_token"


@dataclass(frozen=True)
class CreateSpec:
    """A get-or-create request, independent of the dialect that will encode it."""

    lang: str
    token: str
    mounts: Sequence[str] = ()
    max_mem: int = 0
    exec_timeout: int = 0
    session_type: str | None = None
    enqueue_only: bool = False
    max_wait: int | None = None
    reuse: bool = True
    resources: Mapping[str, str | int] | None = None
    environ: Mapping[str, str] | None = None
    cluster_size: int = 1
    cluster_mode: str = "single-node"
    resource_group: str | None = None
    startup_command: str | None = None
    domain: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class CreateReply:
    """What a create told the client, whatever the dialect."""

    kernel_id: str
    created: bool | None
    model: SornaModel
    status: CreateStatus | None = None
    service_ports: Sequence[ServicePort] = ()


@dataclass(frozen=True)
class PendingRun:
    """A run of this kernel handle that has not finished: how to continue it."""

    status: ExecutionStatus
    run_id: str | None


@dataclass(frozen=True)
class EventsTarget:
    """Whose lifecycle events to stream."""

    kernel_id: str
    name: str | None = None


@dataclass(frozen=True)
class StreamPath:
    """A WebSocket or SSE route: path plus query parameters."""

    path: str
    params: Sequence[tuple[str, str]] = field(default_factory=tuple)


class Dialect(ABC):
    """One API family at one version.

    Subclasses declare the versions they speak (:meth:`accepts`), how requests are
    signed, the routes and bodies, and how answers and errors are read.
    """

    #: Human name of the API family, used in messages.
    family: ClassVar[str]
    #: Environment-variable prefix of this family (``SORNA_``, ``BACKEND_``).
    env_prefix: ClassVar[str]
    #: Version to use when the endpoint was configured through this family's variables.
    env_default_version: ClassVar[str]
    #: Whether PTY output frames travel as binary WebSocket messages (JSON either way).
    pty_output_binary: ClassVar[bool] = False

    def __init__(self, version: str) -> None:
        if not self.accepts(version):
            raise ValueError(f"{self.family} does not speak {version!r}")
        self.version = version

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.version}>"

    @classmethod
    @abstractmethod
    def accepts(cls, version: str) -> bool:
        """Whether this family speaks ``version``."""

    @classmethod
    @abstractmethod
    def versions(cls) -> tuple[str, ...]:
        """The versions this family speaks, oldest first (for messages and docs)."""

    @classmethod
    def probe(cls) -> Call[HelloResponse]:
        """The anonymous request that tells a server's version (``version="auto"``)."""
        raise UnsupportedOperationError(f"{cls.family} servers cannot negotiate a version")

    @classmethod
    def negotiate(cls, server_version: str) -> str:
        """The version to speak with a server that reported ``server_version``.

        ``ValueError`` when there is none in common.
        """
        raise ValueError(f"{cls.family} servers cannot negotiate a version")

    # -- signing, tokens, errors -------------------------------------------------------

    @property
    @abstractmethod
    def signing(self) -> SigningPolicy:
        """Scheme, version header and body-hash rule of signed requests."""

    @property
    @abstractmethod
    def token_rule(self) -> TokenRule:
        """Length limits of client tokens (session names)."""

    @abstractmethod
    def new_token(self) -> str:
        """A fresh random client token, valid for this dialect."""

    def check_token(self, token: str) -> None:
        """Refuse a token the server would refuse (raises ``InvalidArgumentError``)."""
        from ..exceptions import InvalidArgumentError

        rule = self.token_rule
        if not isinstance(token, str) or not rule.min_length <= len(token) <= rule.max_length:
            length = len(token) if isinstance(token, str) else type(token).__name__
            raise InvalidArgumentError(
                f"{rule.what} must be {rule.min_length} to {rule.max_length} characters long "
                f"for {self.family}, got {length}"
            )

    @abstractmethod
    def error(self, response: Response) -> APIStatusError:
        """Map an error response to the exception tree."""

    @abstractmethod
    def retry_after(self, headers: Mapping[str, str]) -> float | None:
        """Seconds until the rate limit resets, from this dialect's headers."""

    # -- routes ------------------------------------------------------------------------

    @abstractmethod
    def hello(self) -> Call[HelloResponse]:
        """The server's version answer."""

    @abstractmethod
    def authorize(self, echo: object = None) -> Call[AuthorizeResponse]:
        """Check the credentials (the server echoes ``echo``)."""

    @abstractmethod
    def create(self, spec: CreateSpec) -> Call[CreateReply]:
        """Get or create a kernel (session)."""

    @abstractmethod
    def info(self, kernel_id: str) -> Call[KernelInfo]:
        """Kernel (session) information."""

    @abstractmethod
    def restart(self, kernel_id: str) -> Call[None]:
        """Restart the kernel."""

    @abstractmethod
    def destroy(self, kernel_id: str, *, forced: bool = False) -> Call[DestroyResult | None]:
        """Destroy the kernel."""

    @abstractmethod
    def execute(
        self,
        kernel_id: str,
        request: ExecuteRequest,
        pending: PendingRun | None,
        *,
        eager: bool = False,
        offset: int | None = None,
    ) -> Call[ExecutionResult]:
        """Run code, or continue ``pending`` (``request.code`` then answers input).

        ``eager`` and ``offset`` are the local gateway's extension keys (a real server
        ignores them): answer as soon as output is there; the caller already has the run's
        first ``offset`` console items (a continuation replays the rest).
        """

    @abstractmethod
    def upload(self, kernel_id: str, files: Sequence[tuple[str, bytes]]) -> Call[None]:
        """Upload files into the kernel's folder."""

    @abstractmethod
    def pty_path(self, kernel_id: str) -> StreamPath:
        """The PTY WebSocket route."""

    def complete(self, kernel_id: str, code: str, *, row: int, col: int) -> Call[Completions]:
        """Code completion."""
        raise self.unsupported("complete()")

    def interrupt(self, kernel_id: str) -> Call[None]:
        """Interrupt the running code."""
        raise self.unsupported("interrupt()")

    def list_files(self, kernel_id: str, path: str) -> Call[FileList]:
        """List a folder of the kernel."""
        raise self.unsupported("list_files()")

    def download(self, kernel_id: str, paths: Sequence[str]) -> Call[Response]:
        """Fetch files as the server packs them (read by ``sorna_sdk._archive``)."""
        raise self.unsupported("download()")

    def download_single(self, kernel_id: str, path: str) -> Call[bytes]:
        """Fetch one file's bytes."""
        raise self.unsupported("download_single()")

    def logs(self, kernel_id: str) -> Call[str]:
        """The kernel container's log."""
        raise self.unsupported("logs()")

    def execute_stream_path(self, kernel_id: str) -> StreamPath:
        """The execute WebSocket route."""
        raise self.unsupported("stream_execute()")

    def live_stream_path(self, kernel_id: str) -> StreamPath | None:
        """The execute WebSocket that live runs try first (``None``: long-poll over HTTP)."""
        try:
            return self.execute_stream_path(kernel_id)
        except UnsupportedOperationError:
            return None

    def events_path(self, target: EventsTarget) -> StreamPath:
        """The session-events (SSE) route."""
        raise self.unsupported("events()")

    # -- frames ------------------------------------------------------------------------

    def encode_pty_input(self, data: bytes) -> str:
        """A stdin frame as sent on the wire."""
        return StdinFrame.from_bytes(data).encode()

    def decode_pty_output(self, message: str | bytes) -> bytes:
        """Output bytes of one server frame (``ValueError`` on a malformed one)."""
        return decode_server_frame(message).payload

    def encode_execute_start(
        self, code: str, mode: str, options: Mapping[str, object] | None
    ) -> str:
        """The first frame of an execute stream."""
        return json.dumps({"code": code, "mode": mode, "options": dict(options or {})})

    def encode_execute_resume(self, run_id: str, offset: int) -> str:
        """The first frame of a stream that resumes run ``run_id`` from its ``offset``-th item."""
        return json.dumps({"mode": "continue", "runId": run_id, "offset": offset})

    # -- helpers -----------------------------------------------------------------------

    def unsupported(self, what: str, *, since: str | None = None) -> UnsupportedOperationError:
        """The error for an operation this API version lacks (``since``: the first that has it)."""
        needs = (
            f"API {since} or newer" if since else "a Backend.AI server (API v4.20181215 or newer)"
        )
        return UnsupportedOperationError(
            f"{what} is not part of the {self.family} API {self.version}; it needs {needs}"
        )
