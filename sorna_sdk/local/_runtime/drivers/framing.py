"""The control-channel frame codec and its constants, shared by the gateway and the Python
driver (stdlib only).

A frame is a 4-byte big-endian length, then that many bytes of UTF-8 JSON: an object
``{"t": kind, "d": data}``. The messages themselves are described in
:mod:`sorna_sdk.local._runtime.protocol`, which re-exports this codec for the gateway.

This file is the one Python copy of the codec. The gateway imports it as a module; the Python
driver runs as a ``python -c`` source and cannot import the SDK (under the sandbox only the
interpreter's files and this folder are visible), so it loads this file by its path, which
the gateway passes as the driver's first argument (``languages.py``). Keep it stdlib-only and
free of anything that needs the module to be registered in ``sys.modules`` (dataclasses,
pickling). A driver in another language carries its own codec and must pass the same
conformance test (``tests/local/test_driver_conformance.py``).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import Any, Final, cast

__all__ = [
    "HEADER",
    "MAX_FRAME",
    "SIGINT_EXIT",
    "TEXT_CHUNK",
    "FrameDecoder",
    "FrameError",
    "FrameTooLarge",
    "encode_frame",
    "text_chunks",
]

#: Largest frame a peer may send by default (the gateway passes ``max_media_bytes`` instead):
#: text comes in pieces of at most ``TEXT_CHUNK`` characters, but one media item is one frame.
MAX_FRAME: Final = 256 * 1024 * 1024
#: Characters of stdout/stderr text in one frame, at most.
TEXT_CHUNK: Final = 64 * 1024
#: ``exitCode`` of a run that SIGINT ended (as a shell reports it).
SIGINT_EXIT: Final = 130
#: The length prefix: 4 bytes, big-endian, unsigned.
HEADER: Final = struct.Struct(">I")


class FrameError(Exception):
    """The peer sent something that is not a valid frame.

    ``frames`` are the valid frames decoded before the bad one, from the same ``feed``.
    """

    def __init__(self, message: str, frames: list[tuple[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.frames: list[tuple[str, Any]] = frames or []


class FrameTooLarge(FrameError):
    """A frame's length header is above the decoder's limit (refused before its body)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes is too large (the limit is {limit})")
        self.size = size
        self.limit = limit


def encode_frame(kind: str, data: Any = None) -> bytes:
    """Encode one frame (``data`` must be JSON-serialisable; ``None`` is sent as ``null``)."""
    body = json.dumps({"t": kind, "d": data}).encode("utf-8")
    return HEADER.pack(len(body)) + body


def text_chunks(text: str, size: int = TEXT_CHUNK) -> Iterator[str]:
    """``text`` in consecutive pieces of at most ``size`` characters (nothing for ``""``)."""
    for start in range(0, len(text), size):
        yield text[start : start + size]


class FrameDecoder:
    """Incremental decoder: feed bytes, get complete frames as ``(kind, data)`` pairs.

    A length above ``max_frame`` raises :class:`FrameTooLarge` as soon as the header arrives,
    so the body is never buffered. A body that is not a JSON object with a string ``t``
    raises :class:`FrameError`. After any :class:`FrameError` the decoder stays broken.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._broken: FrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for a frame that is not complete yet."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[tuple[str, Any]]:
        if self._broken is not None:
            raise FrameError(str(self._broken))
        buf = self._buf
        buf += chunk
        frames: list[tuple[str, Any]] = []
        pos = 0
        try:
            while len(buf) - pos >= HEADER.size:
                (size,) = HEADER.unpack_from(buf, pos)
                if size > self.max_frame:
                    raise FrameTooLarge(size, self.max_frame)
                end = pos + HEADER.size + size
                if len(buf) < end:
                    break
                try:
                    obj = json.loads(bytes(buf[pos + HEADER.size : end]))
                except ValueError as exc:
                    raise FrameError("frame is not JSON") from exc
                if not isinstance(obj, dict):
                    raise FrameError("frame has no kind")
                frame = cast("dict[str, object]", obj)  # JSON object keys are strings
                kind = frame.get("t")
                if not isinstance(kind, str):
                    raise FrameError("frame has no kind")
                frames.append((kind, frame.get("d")))
                pos = end
        except FrameError as exc:
            exc.frames = frames
            self._broken = exc
            buf.clear()
            raise
        del buf[:pos]
        return frames
