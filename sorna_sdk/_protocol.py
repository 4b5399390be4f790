"""Sans-IO description of every v2 route: what to send, whether it is safe to repeat, how to parse.

Both session fronts turn a :class:`Call` into one HTTP exchange; nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from .exceptions import APIResponseValidationError, InvalidArgumentError, error_from_response
from .models import (
    AuthorizeResponse,
    CreateKernelRequest,
    ExecuteRequest,
    ExecutionResult,
    HelloResponse,
    KernelCreated,
    KernelInfo,
    Limits,
)

__all__ = ["Call", "Response", "V2Routes", "encode_json"]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: (field name, (file name, content)) pairs for multipart bodies.
Files = Sequence[tuple[str, tuple[str, bytes]]]


@dataclass(frozen=True)
class Response:
    """The parts of an HTTP response that parsing needs."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    method: str = ""
    url: str = ""


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request and how to read its answer."""

    method: str
    path: str
    parse: Callable[[Response], T]
    content: bytes | None = None
    content_type: str | None = None
    files: Files | None = None
    #: Safe to send again after it may have reached the server.
    idempotent: bool = True
    #: Statuses that mean success when seen on a retry (a lost reply to a destroy
    #: leaves the kernel gone, so the repeat gets 404).
    done_on_retry: frozenset[int] = frozenset()
    headers: Mapping[str, str] = field(default_factory=dict)

    def handle(self, response: Response, *, attempt: int = 0) -> T:
        """Raise the mapped error for a non-2xx response, else parse it."""
        if attempt > 0 and response.status in self.done_on_retry:
            return self.parse(response)
        if not 200 <= response.status < 300:
            raise error_from_response(
                response.status,
                response.content,
                response.headers,
                method=response.method,
                url=response.url,
            )
        return self.parse(response)


def encode_json(body: Any) -> bytes:
    """Serialise a request body the way the reference client did (``json.dumps`` defaults)."""
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _model(model: type[M], key: str | None = None) -> Callable[[Response], M]:
    def parse(response: Response) -> M:
        try:
            data = json.loads(response.content)
            if key is not None:
                if not isinstance(data, dict) or key not in data:
                    raise ValueError(f"the response has no {key!r} member")
                data = data[key]
            return model.model_validate(data)
        except (ValueError, ValidationError) as exc:
            raise APIResponseValidationError(
                f"{response.method} {response.url}: unexpected response body for "
                f"{model.__name__}: {_short(exc)}",
                status=response.status,
                body=response.content,
            ) from exc

    return parse


def _no_content(response: Response) -> None:
    return None


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:299] + "…"


def kernel_path_segment(kernel_id: str) -> str:
    """Percent-encode a kernel id for a path; refuse empty ids before any I/O."""
    if not isinstance(kernel_id, str) or not kernel_id.strip():
        raise InvalidArgumentError("kernel_id must be a non-empty string")
    return quote(kernel_id, safe="")


class V2Routes:
    """The routes of the Sorna ``v2.20170315`` dialect (spec §5)."""

    def __init__(self, major: str = "v2") -> None:
        self._prefix = f"/{major}"

    def hello(self) -> Call[HelloResponse]:
        return Call("GET", self._prefix, _model(HelloResponse))

    def authorize(self, echo: Any = None) -> Call[AuthorizeResponse]:
        return self._json("GET", "/authorize", {"echo": echo}, _model(AuthorizeResponse))

    def create(
        self, lang: str, token: str, *, max_mem: int, exec_timeout: int, mounts: Sequence[str]
    ) -> Call[KernelCreated]:
        body = CreateKernelRequest(
            lang=lang,
            client_session_token=token,
            limits=Limits(max_mem=max_mem, exec_timeout=exec_timeout),
            mounts=list(mounts),
        )
        # Get-or-create is keyed by (access key, token, lang): a repeat returns the same kernel.
        return self._json("POST", "/kernel/create", body.to_wire(), _model(KernelCreated))

    def info(self, kernel_id: str) -> Call[KernelInfo]:
        return Call("GET", self._kernel(kernel_id), _model(KernelInfo))

    def restart(self, kernel_id: str) -> Call[None]:
        return Call("PATCH", self._kernel(kernel_id), _no_content)

    def destroy(self, kernel_id: str) -> Call[None]:
        return Call("DELETE", self._kernel(kernel_id), _no_content, done_on_retry=frozenset({404}))

    def execute(self, kernel_id: str, request: ExecuteRequest) -> Call[ExecutionResult]:
        return Call(
            "POST",
            self._kernel(kernel_id),
            _model(ExecutionResult, "result"),
            content=encode_json(request.to_wire()),
            content_type="application/json",
            idempotent=False,
        )

    def upload(self, kernel_id: str, files: Sequence[tuple[str, bytes]]) -> Call[None]:
        parts = [("src", (name, data)) for name, data in files]
        return Call("POST", self._kernel(kernel_id) + "/upload", _no_content, files=parts)

    def pty_path(self, kernel_id: str) -> str:
        return f"{self._prefix}/stream/kernel/{kernel_path_segment(kernel_id)}/pty"

    def _kernel(self, kernel_id: str) -> str:
        return f"{self._prefix}/kernel/{kernel_path_segment(kernel_id)}"

    def _json(self, method: str, path: str, body: Any, parse: Callable[[Response], T]) -> Call[T]:
        return Call(
            method,
            self._prefix + path,
            parse,
            content=encode_json(body),
            content_type="application/json",
        )


def routes_for(version: str) -> V2Routes:
    """Pick the route set of a wire dialect by its version string."""
    major = version.split(".", 1)[0]
    if major != "v2":
        raise InvalidArgumentError(
            f"API version {version!r} is not supported yet; this SDK speaks v2.20170315"
        )
    return V2Routes(major)
