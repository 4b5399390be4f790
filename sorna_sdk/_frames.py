"""Execute-stream frames as text: the start frame a client sends, the result frames it reads.

Kept apart from the WebSocket clients so that HTTP-only code paths do not load them.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from ._dialects import Dialect
from ._json import is_object
from .exceptions import StreamError
from .models import ExecuteRequest, ExecutionResult

__all__ = ["parse_frame", "start_frame"]


def start_frame(dialect: Dialect, request: ExecuteRequest) -> str:
    """The first frame of an execute stream for ``request``."""
    options = None
    if request.options is not None:
        options = request.options.to_wire()
    return dialect.encode_execute_start(request.code, request.mode, options)


def parse_frame(message: str | bytes) -> ExecutionResult:
    """A server frame as a result; :class:`StreamError` for an error frame or garbage."""
    try:
        data: object = json.loads(message)
    except ValueError:
        raise StreamError(f"unexpected frame from the server: {str(message)[:80]!r}") from None
    if is_object(data) and data.get("status") in ("error", "server-restarting"):
        raise StreamError(f"the server ended the execute stream: {data.get('msg') or data}")
    try:
        return ExecutionResult.model_validate(data)
    except ValidationError as exc:
        raise StreamError(f"unexpected frame from the server: {str(message)[:80]!r}") from exc
