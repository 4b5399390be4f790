"""Backend.AI answer bodies: sessions, results, listings and events as the real manager
(26.9) writes them, from the runtime's typed results.

Some info fields are Python-repr strings on the real server (``"{'cpu': Decimal('1')}"``);
they are written the same way here, so that a client parsing a real server parses this one.
"""

from __future__ import annotations

import json
import platform
import uuid
from datetime import datetime, timezone
from typing import Any, Final

from .._runtime.browse import Listing
from .._runtime.events import LifecycleEvent
from .._runtime.languages import available_languages
from .._runtime.results import KernelStatus, RunResult
from .runtime_api import KernelHandle

__all__ = [
    "GROUP_ID",
    "event_data",
    "info_body",
    "listing_body",
    "result_body",
    "session_id",
    "stream_frame",
    "user_id",
]

#: The one project ("group") of the local gateway, and the namespace of its user ids.
GROUP_ID: Final = uuid.UUID("2de2b969-1d04-48a6-af16-0bc8adb3c831")
_USERS: Final = uuid.UUID("f38dea23-50fa-42a0-b5ae-338f5f4693f4")
#: Exit status of an interrupted run, reported as ``finished`` (Backend.AI has no such status).
_INTERRUPTED_EXIT: Final = 130


def session_id(kernel_id: str) -> str:
    """A kernel id in Backend.AI's dashed UUID form."""
    try:
        return str(uuid.UUID(kernel_id))
    except ValueError:
        return kernel_id


def user_id(owner: str) -> str:
    """A stable user UUID for an access key (the local gateway has one user per keypair)."""
    return str(uuid.uuid5(_USERS, owner))


def result_body(result: RunResult, *, offset: bool = False) -> dict[str, Any]:
    """An execute answer's ``result``: ``runId``, ``status``, ``exitCode``, ... ``console``;
    ``error`` when the run failed with one, ``offset`` when the request asked (extensions)."""
    status, exit_code = _status(result)
    body: dict[str, Any] = {
        "runId": result.run_id or None,
        "status": status,
        "exitCode": exit_code,
        "options": result.options,
        "files": result.files,
        "console": result.console,
    }
    if offset:
        body["offset"] = result.offset
    if result.error is not None:
        body["error"] = dict(result.error)
    return body


def stream_frame(result: RunResult) -> dict[str, Any]:
    """A frame of the execute WebSocket (the real server sends no ``runId`` there)."""
    status, exit_code = _status(result)
    return {
        "status": status,
        "console": result.console,
        "exitCode": exit_code,
        "options": result.options,
        "files": result.files,
    }


def _status(result: RunResult) -> tuple[str, int | None]:
    if result.status == "interrupted":
        return "finished", _INTERRUPTED_EXIT
    return result.status, result.exit_code


def image_of(kernel: KernelHandle) -> str:
    """The image reference a session reports: as created, else its language's image."""
    if kernel.image:
        return kernel.image
    record = available_languages().get(kernel.lang)
    return record.images[0] if record is not None and record.images else kernel.lang


def info_body(kernel: KernelHandle, status: KernelStatus) -> dict[str, Any]:
    """``GET /session/{id}``: the keys of the real server's ``LegacySessionInfo``."""
    image = image_of(kernel)
    registry, _, _ = image.rpartition("/")
    slots = _slots(kernel, status)
    return {
        "age": status.age_ms,
        "domainName": "default",
        "groupId": str(GROUP_ID),
        "userId": user_id(kernel.owner),
        "lang": image,
        "image": image,
        "architecture": platform.machine() or "x86_64",
        "registry": registry.split("/", 1)[0] if registry else "",
        "tag": "",
        "containerId": kernel.kernel_id,
        "occupiedSlots": _decimal_repr(slots),
        "occupyingSlots": _decimal_repr(slots),
        "requestedSlots": _decimal_repr(slots),
        "occupiedShares": "{}",
        "environ": repr(dict(kernel.environ)),
        "resourceOpts": "{}",
        "status": "RUNNING",
        "statusInfo": None,
        "statusData": None,
        "creationTime": _iso(status.created_at),
        "terminationTime": None,
        "numQueriesExecuted": status.queries,
        "lastStat": last_stat(status),
        "idleChecks": {
            "idle_timeout": {
                "remaining": _remaining(status),
                "remaining_time_type": "expire_after",
                "extra": None,
            }
        },
    }


def last_stat(status: KernelStatus) -> dict[str, Any]:
    """Measured figures, shaped like an agent's stat (strings, as the real server sends)."""
    return {
        "cpu_used": {"current": str(status.cpu_used_ms), "capacity": None, "unit_hint": "msec"},
        "mem": {
            "current": str(status.memory_used_kib * 1024),
            "capacity": str(status.memory_limit_kib * 1024) if status.memory_limit_kib else None,
            "unit_hint": "bytes",
        },
    }


def _slots(kernel: KernelHandle, status: KernelStatus) -> dict[str, str]:
    slots = {"cpu": kernel.resources.get("cpu", "1")}
    slots["mem"] = str(status.memory_limit_kib * 1024)
    return slots


def _decimal_repr(slots: dict[str, str]) -> str:
    items = ", ".join(f"{name!r}: Decimal({value!r})" for name, value in slots.items())
    return "{" + items + "}"


def _remaining(status: KernelStatus) -> float | None:
    if not status.idle_timeout_ms:
        return None
    return max(0.0, (status.idle_timeout_ms - status.idle_ms) / 1000)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


def listing_body(listing: Listing) -> dict[str, Any]:
    """``GET /files``: the entries as a JSON *string*, as agents send them."""
    entries = [
        {
            "mode": item.mode,
            "size": item.size,
            "ctime": item.ctime,
            "mtime": item.mtime,
            "atime": item.atime,
            "filename": item.filename,
        }
        for item in listing.files
    ]
    return {"files": json.dumps(entries), "errors": listing.errors, "abspath": listing.abspath}


def event_data(event: LifecycleEvent, *, kernel: bool) -> dict[str, Any]:
    """The JSON data of a session (or, with ``kernel``, kernel) event."""
    data: dict[str, Any] = {
        "reason": event.reason,
        "sessionName": event.session_name,
        "ownerAccessKey": event.owner,
        "sessionId": session_id(event.kernel_id),
        "exitCode": event.exit_code,
    }
    if kernel:
        data.update(kernelId=session_id(event.kernel_id), clusterRole="main", clusterIdx=0)
    return data
