"""Models of what Backend.AI adds: sessions, their files, completions and events.

Servers send some info fields as Python-repr strings (``"{'cpu': Decimal('1.0')}"``) and
the file list as a JSON string inside JSON; validators decode both, and keep the string
when it cannot be read, so a server quirk never turns into a validation error.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, TypeAlias, cast

from pydantic import BeforeValidator, Field, JsonValue, model_validator

from ._base import SornaModel
from ._pyrepr import parse_repr
from .kernel import KernelInfo

__all__ = [
    "Completions",
    "CreateStatus",
    "FileEntry",
    "FileList",
    "ResourceSlots",
    "ServicePort",
    "SessionCreated",
    "SessionEvent",
    "SessionInfo",
    "SessionStatus",
    "SessionType",
]

SessionStatus: TypeAlias = Literal[
    "PENDING",
    "SCHEDULED",
    "PREPARING",
    "PULLING",
    "PREPARED",
    "CREATING",
    "RUNNING",
    "RESTARTING",
    "RUNNING_DEGRADED",
    "DEPRIORITIZING",
    "RESERVED",
    "PREEMPTED",
    "RESCHEDULING",
    "TERMINATING",
    "TERMINATED",
    "ERROR",
    "CANCELLED",
]
#: A create's status: a session status, or ``TIMEOUT`` when ``max_wait`` ran out first.
CreateStatus: TypeAlias = SessionStatus | Literal["TIMEOUT"]
SessionType: TypeAlias = Literal["interactive", "batch", "inference", "system"]
#: Resource amounts by slot name (``cpu``, ``mem`` in bytes, ``cuda.device``, ...).
ResourceSlots: TypeAlias = dict[str, Decimal]


def _from_repr(value: Any) -> Any:
    """Decode a Python-repr or JSON string into data; leave anything else alone."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        pass
    try:
        return parse_repr(value)
    except ValueError:
        return value


def _slots(value: Any) -> Any:
    decoded = _from_repr(value)
    if not isinstance(decoded, dict):
        return decoded
    try:
        slots = cast("dict[object, object]", decoded)
        return {str(key): Decimal(str(amount)) for key, amount in slots.items()}
    except (InvalidOperation, ValueError):
        return value


def _mapping(value: Any) -> Any:
    decoded = _from_repr(value)
    if isinstance(decoded, dict):
        return _jsonable(decoded)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        mapping = cast("dict[object, object]", value)
        return {key: _jsonable(item) for key, item in mapping.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in cast("list[object]", value)]
    return value


def _none_repr(value: Any) -> Any:
    return None if value == "None" else value


def _file_list(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


Slots = Annotated[ResourceSlots | str | None, BeforeValidator(_slots)]
ReprMapping = Annotated[dict[str, JsonValue] | str | None, BeforeValidator(_mapping)]
Timestamp = Annotated[datetime | str | None, Field(union_mode="left_to_right")]


class ServicePort(SornaModel):
    """One service a session exposes (``jupyter``, ``sshd``, ``ttyd``, ...).

    New sessions report ``ports``; a reused one reports ``host_ports`` and
    ``container_ports`` instead (26.x), in which case ``ports`` are the host ports.
    """

    name: str
    protocol: str | None = None
    ports: list[int] = Field(default_factory=list[int])
    host_ports: list[int | None] | None = Field(default=None, alias="host_ports")
    container_ports: list[int] | None = Field(default=None, alias="container_ports")

    @model_validator(mode="after")
    def _ports_from_host_ports(self) -> ServicePort:
        if not self.ports and self.host_ports:
            object.__setattr__(self, "ports", [p for p in self.host_ports if p is not None])
        return self


class SessionCreated(SornaModel):
    """Answer of a Backend.AI create (``POST /session``; ``/kernel`` before v5)."""

    session_id: str | None = None
    session_name: str | None = None
    #: The id before v5 (``/kernel`` routes called the session a kernel).
    kernel_id: str | None = None
    status: CreateStatus | None = None
    service_ports: list[ServicePort] | None = None
    created: bool | None = None

    @property
    def reference(self) -> str | None:
        """How to address the session in later calls: its id, else its name."""
        return self.session_id or self.kernel_id or self.session_name


class SessionInfo(KernelInfo):
    """A Backend.AI session's information (``GET /session/{id}``).

    Slot fields are :data:`ResourceSlots`; fields the server sends as Python-repr
    strings are decoded, and kept as the string when they cannot be.
    """

    status: SessionStatus | None = None
    image: str | None = None
    architecture: str | None = None
    registry: str | None = None
    tag: str | None = None
    domain_name: str | None = None
    group_id: str | None = None
    user_id: str | None = None
    container_id: str | None = None
    occupied_slots: Slots = None
    occupying_slots: Slots = None
    requested_slots: Slots = None
    occupied_shares: Slots = None
    environ: ReprMapping = None
    resource_opts: ReprMapping = None
    status_info: Annotated[str | None, BeforeValidator(_none_repr)] = None
    status_data: ReprMapping = None
    creation_time: Timestamp = None
    termination_time: Timestamp = None
    last_stat: ReprMapping = None
    idle_checks: ReprMapping = None


class FileEntry(SornaModel):
    """One entry of a session folder listing."""

    filename: str
    #: ``stat.filemode`` text, e.g. ``-rw-r--r--`` or ``drwxr-xr-x``.
    mode: str
    size: int
    ctime: float
    mtime: float
    atime: float

    @property
    def is_dir(self) -> bool:
        """Whether the entry is a directory."""
        return self.mode.startswith("d")


class FileList(SornaModel):
    """A folder listing: its entries, the absolute path listed, and any error text."""

    files: Annotated[list[FileEntry], BeforeValidator(_file_list)] = Field(
        default_factory=list[FileEntry]
    )
    abspath: str | None = None
    errors: str | None = None


class Completions(SornaModel):
    """Code-completion candidates."""

    suggestions: list[str] = Field(default_factory=list)
    status: str | None = None
    error: str | None = None


class SessionEvent(SornaModel):
    """One lifecycle event of a session, from the server's event stream.

    ``event`` is the SSE event name: ``session_enqueued``, ``session_scheduled``,
    ``session_preparing``, ``session_pulling``, ``session_started``,
    ``session_terminating``, ``session_terminated``, ``session_success``,
    ``session_failure``, ``session_cancelled``, ``kernel_*`` ... (names a newer server
    adds come through as they are).
    """

    event: str
    session_id: str | None = None
    session_name: str | None = None
    owner_access_key: str | None = None
    reason: str | None = None
    #: Often ``None``: servers up to 26.9 store it under a misspelt key.
    exit_code: int | None = None
    kernel_id: str | None = None
    cluster_role: str | None = None
    cluster_idx: int | None = None
