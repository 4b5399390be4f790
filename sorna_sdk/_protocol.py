"""Sans-IO description of one API exchange: what to send, whether it is safe to repeat, how to
read the answer. Dialects (:mod:`sorna_sdk._dialects`) build :class:`Call` objects; both session
fronts turn one into an HTTP exchange. Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from ._json import is_object
from .exceptions import APIResponseValidationError, APIStatusError, InvalidArgumentError

__all__ = [
    "Call",
    "ErrorMapper",
    "Files",
    "Response",
    "encode_json",
    "header",
    "json_model",
    "kernel_path_segment",
    "no_content",
    "short_reason",
    "unexpected_body",
]

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

    @property
    def content_type(self) -> str:
        """The response's ``Content-Type`` header (``""`` when absent)."""
        return header(self.headers, "Content-Type") or ""


#: Turns a non-2xx response into the dialect's exception.
ErrorMapper = Callable[[Response], APIStatusError]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request and how to read its answer."""

    method: str
    path: str
    parse: Callable[[Response], T]
    #: Maps an error response to an exception (the dialect's problem table).
    error: ErrorMapper
    #: Query string parameters, in order (repeated names allowed).
    params: Sequence[tuple[str, str]] = ()
    content: bytes | None = None
    content_type: str | None = None
    files: Files | None = None
    #: Sign the request (``False`` only for anonymous routes such as version negotiation).
    signed: bool = True
    #: Safe to send again after it may have reached the server.
    idempotent: bool = True
    #: Statuses that mean success when seen on a retry (a lost reply to a destroy
    #: leaves the kernel gone, so the repeat gets 404).
    done_on_retry: frozenset[int] = frozenset()
    #: Seconds added to the configured read timeout (a create that waits for scheduling).
    extra_timeout: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict[str, str])

    def handle(self, response: Response, *, attempt: int = 0) -> T:
        """Raise the mapped error for a non-2xx response, else parse it."""
        if attempt > 0 and response.status in self.done_on_retry:
            return self.parse(response)
        if not 200 <= response.status < 300:
            raise self.error(response)
        return self.parse(response)


def encode_json(body: Any) -> bytes:
    """Serialise a request body the way the reference client did (``json.dumps`` defaults)."""
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def json_model(
    model: type[M],
    key: str | None = None,
    *,
    prepare: Callable[[object], object] | None = None,
) -> Callable[[Response], M]:
    """A parser validating the JSON body (or its member ``key``) as ``model``.

    ``prepare`` may rewrite the decoded JSON first (a dialect's normalisation).
    """

    def parse(response: Response) -> M:
        try:
            data: object = json.loads(response.content)
            if key is not None:
                if not is_object(data) or key not in data:
                    raise ValueError(f"the response has no {key!r} member")
                data = data[key]
            if prepare is not None:
                data = prepare(data)
            return model.model_validate(data)
        except (ValueError, ValidationError) as exc:
            raise unexpected_body(response, model.__name__, exc) from exc

    return parse


def unexpected_body(response: Response, what: str, exc: Exception) -> APIResponseValidationError:
    """The error for a 2xx body that does not match the protocol."""
    return APIResponseValidationError(
        f"{response.method} {response.url}: unexpected response body for {what}: "
        f"{short_reason(exc)}",
        status=response.status,
        body=response.content,
    )


def no_content(response: Response) -> None:
    """A parser for answers whose body does not matter (204, or an acknowledgement)."""
    return None


def short_reason(exc: Exception) -> str:
    """An exception's message on one line, at most 300 characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:299] + "…"


def kernel_path_segment(kernel_id: str) -> str:
    """Percent-encode a kernel id for a path; refuse empty ids before any I/O."""
    if not isinstance(kernel_id, str) or not kernel_id.strip():
        raise InvalidArgumentError("kernel_id must be a non-empty string")
    return quote(kernel_id, safe="")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value from any mapping, ignoring the case of its name."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, item in headers.items():
        if key.lower() == lowered:
            return item
    return None
