"""What the runtime adds for Backend.AI sessions: ids in both forms, names, lifecycle events,
the session environment, logs, batch steps and confined browsing of a kernel's folder."""

from __future__ import annotations

import asyncio
import io
import os
import tarfile
import uuid
from pathlib import Path

import pytest

from sorna_sdk.local._runtime import browse
from sorna_sdk.local._runtime.errors import (
    InvalidParameters,
    KernelCreationFailed,
    KernelNotFound,
    SessionExists,
)
from sorna_sdk.local._runtime.events import MAX_PENDING, EventHub
from sorna_sdk.local._runtime.kernel import LOG_CHARS
from sorna_sdk.local._runtime.registry import KernelRegistry

from .helpers import run, text

pytestmark = pytest.mark.timeout(60)


async def test_ids_are_uuids_found_dashed_or_not_and_by_name(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("ak", "my-session", "python3")
    assert uuid.UUID(kernel.kernel_id).hex == kernel.kernel_id
    dashed = str(uuid.UUID(kernel.kernel_id))
    assert registry.get("ak", dashed) is kernel
    assert registry.lookup("ak", "my-session") is kernel
    with pytest.raises(KernelNotFound):
        registry.lookup("someone-else", "my-session")
    await registry.destroy("ak", dashed)
    with pytest.raises(KernelNotFound):
        registry.lookup("ak", "my-session")


async def test_named_sessions_are_unique_per_owner(registry: KernelRegistry) -> None:
    kernel, created = await registry.get_or_create_named("ak", "named", "python")
    assert created
    again, created = await registry.get_or_create_named("ak", "named", "python3")
    assert (again, created) == (kernel, False)
    with pytest.raises(SessionExists) as clash:
        await registry.get_or_create_named("ak", "named", "python3", reuse=False)
    assert clash.value.existing_id == kernel.kernel_id
    with pytest.raises(InvalidParameters, match="another image"):
        await registry.get_or_create_named("ak", "named", "bash")
    other, created = await registry.get_or_create_named("bk", "named", "bash")
    assert created and other is not kernel


async def test_lifecycle_events_in_order(registry: KernelRegistry) -> None:
    sub = registry.events.subscribe("ak")
    other = registry.events.subscribe("bk")
    kernel, _ = await registry.get_or_create("ak", "watched", "python3")
    await registry.destroy("ak", kernel.kernel_id)
    names = [(await sub.get()) for _ in range(4)]
    assert [e.name for e in names if e is not None] == [
        "session_enqueued",
        "session_started",
        "session_terminating",
        "session_terminated",
    ]
    assert {(e.kernel_id, e.session_name) for e in names if e is not None} == {
        (kernel.kernel_id, "watched")
    }
    assert other._queue.empty()  # another owner's subscription sees nothing
    await registry.close()
    assert await sub.get() is None  # closing ends every subscription


async def test_a_failed_start_is_cancelled(
    registry: KernelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fail(*args: object) -> None:
        raise KernelCreationFailed("python3 kernel failed to start: no")

    monkeypatch.setattr(registry._launcher, "launch", fail)
    sub = registry.events.subscribe("ak")
    with pytest.raises(KernelCreationFailed):
        await registry.get_or_create("ak", "doomed", "python3")
    events = [await sub.get(), await sub.get()]
    assert [(e.name, e.session_name) for e in events if e is not None] == [
        ("session_enqueued", "doomed"),
        ("session_cancelled", "doomed"),
    ]
    assert events[1] is not None and "failed to start" in events[1].reason
    assert registry.count("ak") == 0


def test_a_slow_subscriber_loses_its_oldest_events() -> None:
    hub = EventHub()
    sub = hub.subscribe("ak")
    for index in range(MAX_PENDING + 10):
        hub.publish("session_started", kernel_id=str(index), owner="ak", session_name="s")
    assert sub.dropped == 9
    first = sub._queue.get_nowait()
    assert first is not None and first.kernel_id == "9"


async def test_environ_reaches_the_kernel_and_survives_restart(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create(
        "ak", "env", "python3", environ={"GREETING": "hej", "EMPTY": ""}
    )
    code = "import os\nprint(os.environ['GREETING'], repr(os.environ['EMPTY']))"
    assert text(await run(kernel, code)) == "hej ''\n"
    await kernel.restart()
    assert text(await run(kernel, code)) == "hej ''\n"
    bash, _ = await registry.get_or_create("ak", "env-b", "bash", environ={"GREETING": "hi"})
    assert text(await run(bash, "echo $GREETING")) == "hi\n"


async def test_logs_keep_the_newest_output(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("ak", "logs", "python3")
    await run(kernel, "print('first')")
    await run(kernel, "import sys\nprint('oops', file=sys.stderr)")
    assert kernel.logs() == "first\noops\n"
    await run(kernel, f"print('x' * {LOG_CHARS})")
    logs = kernel.logs()
    assert len(logs) == LOG_CHARS and logs.endswith("x\n") and "first" not in logs


async def test_batch_steps_run_in_order_and_a_failed_clean_stops(
    registry: KernelRegistry,
) -> None:
    kernel, _ = await registry.get_or_create("ak", "batch", "bash")
    opts = {"clean": "echo c", "build": "echo b", "exec": "echo e"}
    results = await run(kernel, "", "batch", opts)
    ends = [r for r in results if r.status != "continued"]
    assert [r.status for r in ends] == ["clean-finished"]
    while results[-1].status != "finished":
        results.append(await kernel.execute("query", "", None))
    assert [r.status for r in results if r.status != "continued"] == [
        "clean-finished",
        "build-finished",
        "finished",
    ]
    assert text(results) == "c\nb\ne\n"
    failed = await run(kernel, "", "batch", {"clean": "exit 3", "exec": "echo never"})
    assert failed[-1].status == "finished"
    assert "[clean failed: exit code 3]" in text(failed, "stderr")
    assert "never" not in text(failed)


# ---- browse ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("", ()),
        (".", ()),
        ("a/b", ("a", "b")),
        ("a/../b/./c/", ("b", "c")),
        ("/home/work", ()),
        ("/home/work/x", ("x",)),
    ],
)
def test_paths_are_read_below_the_work_folder(path: str, parts: tuple[str, ...]) -> None:
    assert browse.split_path(path) == parts


@pytest.mark.parametrize(
    "path", ["..", "a/../..", "/etc/passwd", "/home/workers", "a\x00", "x" * 256, "a/" * 2100]
)
def test_paths_that_leave_or_overflow_are_refused(path: str) -> None:
    with pytest.raises(InvalidParameters):
        browse.split_path(path)


def test_listing_archive_and_read_never_follow_links(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("data")
    secret = tmp_path.parent / f"secret-{uuid.uuid4().hex}"
    secret.write_text("root:x:0:0")
    (tmp_path / "d" / "link").symlink_to(secret)
    (tmp_path / "dirlink").symlink_to(tmp_path.parent)
    os.mkfifo(tmp_path / "d" / "fifo")

    listing = browse.list_dir(tmp_path, "d")
    assert [(f.filename, f.mode[0]) for f in listing.files] == [
        ("f.txt", "-"),
        ("fifo", "p"),
        ("link", "l"),
    ]
    assert browse.list_dir(tmp_path, "dirlink").files == []
    assert "link" in browse.list_dir(tmp_path, "dirlink").errors
    with tarfile.open(fileobj=io.BytesIO(browse.archive(tmp_path, "d"))) as tar:
        assert tar.getnames() == ["d", "d/f.txt"]
        member = tar.extractfile("d/f.txt")
        assert member is not None and member.read() == b"data"
    for path in ("d/link", "d/fifo", "dirlink/x", "d"):
        with pytest.raises(InvalidParameters):
            browse.read_file(tmp_path, path)
    assert browse.read_file(tmp_path, "/home/work/d/f.txt") == b"data"


def test_downloads_are_capped(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 2000)
    with pytest.raises(InvalidParameters, match="larger than 1000"):
        browse.read_file(tmp_path, "big", max_bytes=1000)
    with pytest.raises(InvalidParameters, match="at most"):
        browse.archive(tmp_path, "big", max_bytes=1000)


async def test_a_kernel_browses_its_own_folder(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("ak", "browse", "python3")
    await run(kernel, "open('out.txt', 'w').write('made')")
    listing, archives, data = await asyncio.gather(
        kernel.list_files("."), kernel.download(["out.txt"]), kernel.read_file("out.txt")
    )
    assert listing.abspath == "/home/work"
    assert "out.txt" in [f.filename for f in listing.files]
    assert data == b"made" and len(archives) == 1
    with pytest.raises(InvalidParameters):
        await kernel.download(["ok.txt", "../escape"])  # refused before anything is read
