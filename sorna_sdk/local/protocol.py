"""Control-channel framing between the gateway and a driver: 4-byte big-endian length + UTF-8 JSON.

Every frame is an object ``{"t": kind, "d": data}``. The drivers carry their own copy of this
tiny codec because they run as ``-c`` sources and cannot import the SDK.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Final

__all__ = [
    "CONTROL_KINDS",
    "MAX_FRAME",
    "OUTPUT_KINDS",
    "SYNC_KIND",
    "FrameDecoder",
    "FrameError",
    "encode_frame",
]

#: Largest frame a peer may send: text comes in 64 KiB pieces, but one media item is one frame.
MAX_FRAME: Final = 256 * 1024 * 1024
#: Frames that become console items.
OUTPUT_KINDS: Final = frozenset({"stdout", "stderr", "media", "html", "log"})
#: Driver -> gateway: raw fd 1/2 output written so far belongs before the frames that follow.
SYNC_KIND: Final = "sync"
#: Frames that end a wait of ``execute``.
CONTROL_KINDS: Final = frozenset({"ready", "finished", "waiting-input", "completion"})

_HEADER: Final = struct.Struct(">I")


class FrameError(Exception):
    """The peer sent something that is not a valid frame."""


def encode_frame(kind: str, data: Any = None) -> bytes:
    """Encode one frame."""
    body = json.dumps({"t": kind, "d": data}).encode("utf-8")
    return _HEADER.pack(len(body)) + body


class FrameDecoder:
    """Incremental decoder: feed bytes, get complete frames as ``(kind, data)`` pairs."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[tuple[str, Any]]:
        self._buf += chunk
        frames: list[tuple[str, Any]] = []
        while len(self._buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buf)
            if size > MAX_FRAME:
                raise FrameError(f"frame of {size} bytes is too large")
            end = _HEADER.size + size
            if len(self._buf) < end:
                break
            try:
                obj = json.loads(bytes(self._buf[_HEADER.size : end]))
            except ValueError as exc:
                raise FrameError("frame is not JSON") from exc
            del self._buf[:end]
            if not isinstance(obj, dict) or not isinstance(obj.get("t"), str):
                raise FrameError("frame has no kind")
            frames.append((obj["t"], obj.get("d")))
        return frames
