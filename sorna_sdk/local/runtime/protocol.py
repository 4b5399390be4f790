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
    "FrameTooLarge",
    "encode_frame",
]

#: Largest frame a peer may send by default (the gateway passes ``max_media_bytes`` instead):
#: text comes in 64 KiB pieces, but one media item is one frame.
MAX_FRAME: Final = 256 * 1024 * 1024
#: Frames that become console items.
OUTPUT_KINDS: Final = frozenset({"stdout", "stderr", "media", "html", "log"})
#: Driver -> gateway: raw fd 1/2 output written so far belongs before the frames that follow.
SYNC_KIND: Final = "sync"
#: Frames that end a wait of ``execute``.
CONTROL_KINDS: Final = frozenset({"ready", "finished", "waiting-input", "completion"})

_HEADER: Final = struct.Struct(">I")


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
    """Encode one frame."""
    body = json.dumps({"t": kind, "d": data}).encode("utf-8")
    return _HEADER.pack(len(body)) + body


class FrameDecoder:
    """Incremental decoder: feed bytes, get complete frames as ``(kind, data)`` pairs.

    A length above ``max_frame`` raises :class:`FrameTooLarge` as soon as the header arrives,
    so the body is never buffered. After any :class:`FrameError` the decoder stays broken.
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
            while len(buf) - pos >= _HEADER.size:
                (size,) = _HEADER.unpack_from(buf, pos)
                if size > self.max_frame:
                    raise FrameTooLarge(size, self.max_frame)
                end = pos + _HEADER.size + size
                if len(buf) < end:
                    break
                try:
                    obj = json.loads(bytes(buf[pos + _HEADER.size : end]))
                except ValueError as exc:
                    raise FrameError("frame is not JSON") from exc
                if not isinstance(obj, dict) or not isinstance(obj.get("t"), str):
                    raise FrameError("frame has no kind")
                frames.append((obj["t"], obj.get("d")))
                pos = end
        except FrameError as exc:
            exc.frames = frames
            self._broken = exc
            buf.clear()
            raise
        del buf[:pos]
        return frames
