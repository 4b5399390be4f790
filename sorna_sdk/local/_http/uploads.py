"""Multipart uploads (field ``src``, one part per file), read within the gateway's caps."""

from __future__ import annotations

import re
from typing import Final

from aiohttp import BodyPartReader, web

from .._runtime.errors import GatewayProblem
from .problems import HttpProblem, params_problem

__all__ = ["is_multipart", "read_uploads"]

_ABSOLUTE_FILENAME: Final = re.compile(r'filename="?[/\\]')
_FORM_ESCAPE: Final = re.compile(r"%(0[0-9A-Fa-f]|1[0-9A-Fa-f]|22)")


def is_multipart(content_type: str) -> bool:
    """Whether a Content-Type is ``multipart/form-data``."""
    return content_type.split(";", 1)[0].strip().lower() == "multipart/form-data"


def client_gone(request: web.Request) -> bool:
    """Whether the request's connection is closed or closing."""
    transport = request.transport
    return transport is None or transport.is_closing()


async def read_uploads(
    request: web.Request, *, max_files: int, max_bytes: int
) -> list[tuple[str, bytes]]:
    """The files of a multipart/form-data upload (a 400 for any other body)."""
    if not is_multipart(request.headers.get("Content-Type", "")):
        raise params_problem("an upload must be multipart/form-data")
    files: list[tuple[str, bytes]] = []
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise params_problem("nested multipart bodies are not supported")
            if part.name != "src" or not part.filename:
                raise params_problem("each file must be a field named src with a filename")
            if len(files) >= max_files:
                raise params_problem(f"at most {max_files} files per upload")
            files.append((_upload_name(part), await _read_part(part, max_bytes)))
    except (HttpProblem, GatewayProblem):
        raise
    except ConnectionError:
        if client_gone(request):
            raise
        raise params_problem("malformed multipart body") from None
    except Exception:
        # aiohttp's multipart parser raises assorted errors on broken bodies.
        raise params_problem("malformed multipart body") from None
    if not files:
        raise params_problem("no file in the upload (field src)")
    return files


def _upload_name(part: BodyPartReader) -> str:
    name = part.filename or ""
    raw = part.headers.get("Content-Disposition", "")
    # aiohttp strips the leading slashes of a quoted filename: refuse, don't relocate.
    if _ABSOLUTE_FILENAME.search(raw):
        raise params_problem(f"upload file name {'/' + name!r} must be relative")
    # Form encoders (WHATWG, httpx) percent-escape '"' and control characters in filenames.
    return _FORM_ESCAPE.sub(lambda m: chr(int(m[1], 16)), name)


async def _read_part(part: BodyPartReader, cap: int) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk():
        data += chunk
        if len(data) > cap:
            raise params_problem(f"{part.filename} is larger than {cap} bytes")
    return bytes(data)
