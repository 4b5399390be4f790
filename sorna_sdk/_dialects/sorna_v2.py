"""The Sorna ``v2.20170315`` dialect (spec ``sorna-api-v2.md``): ``/v2/kernel`` routes, the
``Sorna`` signing scheme with the body hashed, and ``X-RateLimit-Reset`` in milliseconds.

The 2017 server keeps run state per kernel, so a continuation is simply the next execute
of the same mode: ``code=""`` continues, a line answers ``waiting-input``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Final, TypeVar

from .._json import is_object
from .._protocol import (
    Call,
    Response,
    encode_json,
    header,
    json_model,
    kernel_path_segment,
    no_content,
)
from ..auth import SORNA_SIGNING, SigningPolicy
from ..exceptions import APIStatusError, error_from_response
from ..models import (
    AuthorizeResponse,
    BatchRequest,
    CompleteOptions,
    CompleteRequest,
    Completions,
    CreateKernelRequest,
    DestroyResult,
    ExecuteRequest,
    ExecutionResult,
    HelloResponse,
    KernelCreated,
    KernelInfo,
    Limits,
    SornaKernelInfo,
)
from ._base import CreateReply, CreateSpec, Dialect, PendingRun, StreamPath, TokenRule

__all__ = ["SornaV2"]

T = TypeVar("T")

VERSION: Final = "v2.20170315"
_PREFIX: Final = "/v2"


def _v2_result(data: object) -> object:
    """The 2017 wire puts a failed query's exit status in ``options.exitCode``."""
    if not is_object(data) or data.get("exitCode") is not None:
        return data
    options = data.get("options")
    exit_code = options.get("exitCode") if is_object(options) else None
    return {**data, "exitCode": exit_code} if isinstance(exit_code, int) else data


def _created(response: Response) -> CreateReply:
    reply = json_model(KernelCreated)(response)
    return CreateReply(kernel_id=reply.kernel_id, created=reply.created, model=reply)


def _info(response: Response) -> KernelInfo:
    return json_model(SornaKernelInfo)(response)


def _completions(response: Response) -> Completions:
    result = json_model(ExecutionResult, "result", prepare=_v2_result)(response)
    suggestions: list[str] = []
    for item in result.console:
        if item.type == "completion" and isinstance(item.data, list):
            suggestions.extend(str(candidate) for candidate in item.data)
    return Completions(suggestions=suggestions, status=result.status)


class SornaV2(Dialect):
    """The 2017 Sorna API, as served by the embedded gateway."""

    family: ClassVar[str] = "Sorna"
    env_prefix: ClassVar[str] = "SORNA_"
    env_default_version: ClassVar[str] = VERSION

    @classmethod
    def accepts(cls, version: str) -> bool:
        return version == VERSION

    @classmethod
    def versions(cls) -> tuple[str, ...]:
        return (VERSION,)

    @property
    def signing(self) -> SigningPolicy:
        return SORNA_SIGNING

    @property
    def token_rule(self) -> TokenRule:
        return TokenRule(8, 80)

    def new_token(self) -> str:
        return secrets.token_urlsafe(18)

    def error(self, response: Response) -> APIStatusError:
        return error_from_response(
            response.status,
            response.content,
            response.headers,
            method=response.method,
            url=response.url,
            retry_after=self.retry_after(response.headers),
        )

    def retry_after(self, headers: Mapping[str, str]) -> float | None:
        # The 2017 server counted the reset in milliseconds.
        raw = header(headers, "X-RateLimit-Reset")
        try:
            return max(float(raw), 0.0) / 1000.0 if raw is not None else None
        except ValueError:
            return None

    def hello(self) -> Call[HelloResponse]:
        return self._call("GET", _PREFIX, json_model(HelloResponse))

    def authorize(self, echo: object = None) -> Call[AuthorizeResponse]:
        return self._json("GET", "/authorize", {"echo": echo}, json_model(AuthorizeResponse))

    def create(self, spec: CreateSpec) -> Call[CreateReply]:
        self._refuse_backendai_options(spec)
        body = CreateKernelRequest(
            lang=spec.lang,
            client_session_token=spec.token,
            limits=Limits(max_mem=spec.max_mem, exec_timeout=spec.exec_timeout),
            mounts=list(spec.mounts),
        )
        # Get-or-create is keyed by (access key, token, lang): a repeat returns the same kernel.
        return self._json("POST", "/kernel/create", body.to_wire(), _created)

    def info(self, kernel_id: str) -> Call[KernelInfo]:
        return self._call("GET", self._kernel(kernel_id), _info)

    def restart(self, kernel_id: str) -> Call[None]:
        return self._call("PATCH", self._kernel(kernel_id), no_content)

    def destroy(self, kernel_id: str, *, forced: bool = False) -> Call[DestroyResult | None]:
        return Call(
            "DELETE",
            self._kernel(kernel_id),
            no_content,
            self.error,
            done_on_retry=frozenset({404}),
        )

    def execute(
        self,
        kernel_id: str,
        request: ExecuteRequest,
        pending: PendingRun | None,
        *,
        eager: bool = False,
        offset: int | None = None,
    ) -> Call[ExecutionResult]:
        # The server holds the run: the next call of the same mode continues it.
        if isinstance(request, BatchRequest) and request.options.clean is not None:
            raise self.unsupported("a batch 'clean' step")
        body = request.to_wire()
        if eager:
            body["eager"] = True
        if offset is not None:
            body["offset"] = offset
        return Call(
            "POST",
            self._kernel(kernel_id),
            json_model(ExecutionResult, "result", prepare=_v2_result),
            self.error,
            content=encode_json(body),
            content_type="application/json",
            idempotent=False,
        )

    def complete(self, kernel_id: str, code: str, *, row: int, col: int) -> Call[Completions]:
        request = CompleteRequest(code=code, options=CompleteOptions(row=row, col=col))
        return Call(
            "POST",
            self._kernel(kernel_id),
            _completions,
            self.error,
            content=encode_json(request.to_wire()),
            content_type="application/json",
        )

    def interrupt(self, kernel_id: str) -> Call[None]:
        # An extension of the 2017 API, with Backend.AI's route shape.
        return self._call("POST", self._kernel(kernel_id) + "/interrupt", no_content)

    def upload(self, kernel_id: str, files: Sequence[tuple[str, bytes]]) -> Call[None]:
        parts = [("src", (name, data)) for name, data in files]
        return Call(
            "POST", self._kernel(kernel_id) + "/upload", no_content, self.error, files=parts
        )

    def pty_path(self, kernel_id: str) -> StreamPath:
        return StreamPath(f"{_PREFIX}/stream/kernel/{kernel_path_segment(kernel_id)}/pty")

    def live_stream_path(self, kernel_id: str) -> StreamPath | None:
        # An extension of the local gateway (the 2017 server answers 404: long-poll then).
        return StreamPath(f"{_PREFIX}/stream/kernel/{kernel_path_segment(kernel_id)}/execute")

    def _refuse_backendai_options(self, spec: CreateSpec) -> None:
        given = [
            name
            for name, value, default in (
                ("session_type", spec.session_type, None),
                ("enqueue_only", spec.enqueue_only, False),
                ("max_wait", spec.max_wait, None),
                ("reuse", spec.reuse, True),
                ("resources", spec.resources, None),
                ("environ", spec.environ, None),
                ("cluster_size", spec.cluster_size, 1),
                ("cluster_mode", spec.cluster_mode, "single-node"),
                ("resource_group", spec.resource_group, None),
                ("startup_command", spec.startup_command, None),
            )
            if value != default
        ]
        if given:
            raise self.unsupported(f"get_or_create({', '.join(given)}=...)")

    def _kernel(self, kernel_id: str) -> str:
        return f"{_PREFIX}/kernel/{kernel_path_segment(kernel_id)}"

    def _call(self, method: str, path: str, parse: Callable[[Response], T]) -> Call[T]:
        return Call(method, path, parse, self.error)

    def _json(self, method: str, path: str, body: Any, parse: Callable[[Response], T]) -> Call[T]:
        return Call(
            method,
            _PREFIX + path,
            parse,
            self.error,
            content=encode_json(body),
            content_type="application/json",
        )
