"""PTY stream frames (spec §6): JSON text messages, bytes carried as base64."""

from __future__ import annotations

import base64
import functools
from typing import Annotated, ClassVar, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "ClientFrame",
    "OutFrame",
    "PingFrame",
    "ResizeFrame",
    "RestartFrame",
    "ServerFrame",
    "StdinFrame",
    "decode_client_frame",
    "decode_server_frame",
]


class _Frame(BaseModel):
    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    def encode(self) -> str:
        """The frame as the JSON text message sent on the wire."""
        return self.model_dump_json()


class StdinFrame(_Frame):
    """Client → server: input bytes."""

    type: Literal["stdin"] = "stdin"
    """Always ``"stdin"``."""
    chars: str
    """The input bytes, base64-encoded (:attr:`payload` decodes them)."""

    @classmethod
    def from_bytes(cls, data: bytes) -> StdinFrame:
        """The frame that sends ``data``."""
        return cls(chars=base64.b64encode(data).decode("ascii"))

    @property
    def payload(self) -> bytes:
        """The input bytes (``chars`` decoded); ``binascii.Error`` if it is not base64."""
        return base64.b64decode(self.chars, validate=True)


class ResizeFrame(_Frame):
    """Client → server: terminal size."""

    type: Literal["resize"] = "resize"
    """Always ``"resize"``."""
    rows: int = Field(ge=1, le=65535)
    """The terminal's height, in rows (1 to 65535)."""
    cols: int = Field(ge=1, le=65535)
    """The terminal's width, in columns (1 to 65535)."""


class PingFrame(_Frame):
    """Client → server: keep-alive."""

    type: Literal["ping"] = "ping"
    """Always ``"ping"``."""


class RestartFrame(_Frame):
    """Client → server: restart the kernel's terminal."""

    type: Literal["restart"] = "restart"
    """Always ``"restart"``."""


class OutFrame(_Frame):
    """Server → client: terminal output bytes."""

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True, extra="allow", defer_build=True)

    type: Literal["out"] = "out"
    """Always ``"out"``."""
    data: str
    """The terminal output bytes (stdout and stderr merged), base64-encoded
    (:attr:`payload` decodes them)."""

    @classmethod
    def from_bytes(cls, data: bytes) -> OutFrame:
        """The frame that carries ``data``."""
        return cls(data=base64.b64encode(data).decode("ascii"))

    @property
    def payload(self) -> bytes:
        """The output bytes (``data`` decoded); ``binascii.Error`` if it is not base64."""
        return base64.b64decode(self.data, validate=True)


ClientFrame: TypeAlias = Annotated[
    StdinFrame | ResizeFrame | PingFrame | RestartFrame, Field(discriminator="type")
]
ServerFrame: TypeAlias = OutFrame


@functools.cache
def _client_frames() -> TypeAdapter[StdinFrame | ResizeFrame | PingFrame | RestartFrame]:
    # Built on first use: only the gateway decodes client frames, and not at import.
    return TypeAdapter(ClientFrame)


def decode_client_frame(text: str | bytes) -> StdinFrame | ResizeFrame | PingFrame | RestartFrame:
    """Parse a client → server message; raises ``pydantic.ValidationError`` on bad input."""
    return _client_frames().validate_json(text)


def decode_server_frame(text: str | bytes) -> OutFrame:
    """Parse a server → client message; raises ``pydantic.ValidationError`` on bad input."""
    return OutFrame.model_validate_json(text)
