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
    """The service's name, e.g. ``jupyter``, ``sshd`` or ``ttyd``."""
    protocol: str | None = None
    """The service's protocol, e.g. ``http`` or ``tcp``; ``None`` when not sent."""
    ports: list[int] = Field(default_factory=list[int])
    """The service's ports; the host ports of a reused session (26.x), taken from ``host_ports``."""
    host_ports: list[int | None] | None = Field(default=None, alias="host_ports")
    """Host ports a reused session reports (26.x; wire ``host_ports``); ``None`` otherwise."""
    container_ports: list[int] | None = Field(default=None, alias="container_ports")
    """Container ports a reused session reports (26.x; wire ``container_ports``);
    ``None`` otherwise."""

    @model_validator(mode="after")
    def _ports_from_host_ports(self) -> ServicePort:
        if not self.ports and self.host_ports:
            object.__setattr__(self, "ports", [p for p in self.host_ports if p is not None])
        return self


class SessionCreated(SornaModel):
    """Answer of a Backend.AI create (``POST /session``; ``/kernel`` before v5)."""

    session_id: str | None = None
    """The session's id (wire ``sessionId``; a UUID since v5); ``None`` when not sent."""
    session_name: str | None = None
    """The session's name (wire ``sessionName``); ``None`` when the server did not send it."""
    kernel_id: str | None = None
    """The id before v5 (``/kernel`` routes called the session a kernel); ``None`` since."""
    status: CreateStatus | None = None
    """The session's status, or ``TIMEOUT`` when ``max_wait`` ran out first;
    ``PENDING`` when only enqueued. ``None`` when not sent."""
    service_ports: list[ServicePort] | None = None
    """The services the session exposes (wire ``servicePorts``); ``None`` when not sent."""
    created: bool | None = None
    """Whether a new session was started (``False``: an existing one was reused);
    ``None`` when the server does not say."""

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
    """The session's status, e.g. ``RUNNING``; ``None`` when not sent."""
    image: str | None = None
    """The session's image reference; ``None`` when not sent."""
    architecture: str | None = None
    """The image's CPU architecture, e.g. ``x86_64``; ``None`` when not sent."""
    registry: str | None = None
    """The registry the image comes from; ``None`` when not sent."""
    tag: str | None = None
    """The session's tag; ``None`` when it has none."""
    domain_name: str | None = None
    """The domain the session belongs to (wire ``domainName``); ``None`` when not sent."""
    group_id: str | None = None
    """The id of the session's group (project) (wire ``groupId``); ``None`` when not sent."""
    user_id: str | None = None
    """The id of the session's owner (wire ``userId``); ``None`` when not sent."""
    container_id: str | None = None
    """The id of the session's container (wire ``containerId``); ``None`` when not sent."""
    occupied_slots: Slots = None
    """Resources the session occupies, by slot name (``mem`` in bytes);
    ``None`` when not sent, the string when it cannot be decoded."""
    occupying_slots: Slots = None
    """Resources the session is occupying, by slot name (``mem`` in bytes);
    ``None`` when not sent, the string when it cannot be decoded."""
    requested_slots: Slots = None
    """Resources the session requested, by slot name (``mem`` in bytes);
    ``None`` when not sent, the string when it cannot be decoded."""
    occupied_shares: Slots = None
    """Occupied shares by slot name, as the server reports them;
    ``None`` when not sent, the string when it cannot be decoded."""
    environ: ReprMapping = None
    """The session's environment variables; ``None`` when not sent, the string when
    it cannot be decoded."""
    resource_opts: ReprMapping = None
    """Resource options, e.g. ``{"shmem": ...}`` (wire ``resourceOpts``); ``None`` when not sent."""
    status_info: Annotated[str | None, BeforeValidator(_none_repr)] = None
    """Why the session is in its status (wire ``statusInfo``); ``None`` when not set."""
    status_data: ReprMapping = None
    """Data about the status, e.g. an error's details (wire ``statusData``);
    ``None`` when not sent."""
    creation_time: Timestamp = None
    """When the session was created (wire ``creationTime``); the string when it is
    not an ISO 8601 timestamp, ``None`` when not sent."""
    termination_time: Timestamp = None
    """When the session ended (wire ``terminationTime``); ``None`` while it runs."""
    last_stat: ReprMapping = None
    """The session's last resource statistics (wire ``lastStat``); ``None`` when not sent."""
    idle_checks: ReprMapping = None
    """The results of the server's idle checks (wire ``idleChecks``); ``None`` when not sent."""


class FileEntry(SornaModel):
    """One entry of a session folder listing."""

    filename: str
    """The entry's name (no folder part)."""
    mode: str
    """``stat.filemode`` text, e.g. ``-rw-r--r--`` or ``drwxr-xr-x``."""
    size: int
    """The entry's size, in bytes."""
    ctime: float
    """Last status change, in seconds since the epoch."""
    mtime: float
    """Last modification, in seconds since the epoch."""
    atime: float
    """Last access, in seconds since the epoch."""

    @property
    def is_dir(self) -> bool:
        """Whether the entry is a directory."""
        return self.mode.startswith("d")


class FileList(SornaModel):
    """A folder listing: its entries, the absolute path listed, and any error text."""

    files: Annotated[list[FileEntry], BeforeValidator(_file_list)] = Field(
        default_factory=list[FileEntry]
    )
    """The folder's entries (decoded from the JSON string Backend.AI sends)."""
    abspath: str | None = None
    """The listed folder's absolute path in the session; ``None`` when not sent."""
    errors: str | None = None
    """Error text of the listing (e.g. a missing folder); ``None`` or empty when none."""


class Completions(SornaModel):
    """Code-completion candidates."""

    suggestions: list[str] = Field(default_factory=list)
    """The completion candidates, in the server's order."""
    status: str | None = None
    """The status the server reported with them; ``None`` when not sent."""
    error: str | None = None
    """Error text of the completion; ``None`` when there was none."""


class SessionEvent(SornaModel):
    """One lifecycle event of a session, from the server's event stream.

    ``event`` is the SSE event name: ``session_enqueued``, ``session_scheduled``,
    ``session_preparing``, ``session_pulling``, ``session_started``,
    ``session_terminating``, ``session_terminated``, ``session_success``,
    ``session_failure``, ``session_cancelled``, ``kernel_*`` ... (names a newer server
    adds come through as they are).
    """

    event: str
    """The SSE event name, e.g. ``session_started`` or ``kernel_terminated``."""
    session_id: str | None = None
    """The session's id (wire ``sessionId``); ``None`` when not sent."""
    session_name: str | None = None
    """The session's name (wire ``sessionName``); ``None`` when not sent."""
    owner_access_key: str | None = None
    """The access key owning the session (wire ``ownerAccessKey``); ``None`` when not sent."""
    reason: str | None = None
    """Why the event happened, as the server words it; ``None`` when not sent."""
    exit_code: int | None = None
    """The exit code (wire ``exitCode``). Often ``None``: servers up to 26.9 store it
    under a misspelt key."""
    kernel_id: str | None = None
    """The kernel's id (wire ``kernelId``); ``None`` when the event does not carry it."""
    cluster_role: str | None = None
    """The kernel's role in the cluster (wire ``clusterRole``); ``None`` when not sent."""
    cluster_idx: int | None = None
    """The kernel's index in the cluster (wire ``clusterIdx``); ``None`` when not sent."""
