"""File system work off the event loop, within caps, and never through kernel-planted links.

Covers ``files.py`` (uploads, the ``.output`` scan, removing a work dir) and ``batch.py``'s
planning: the upload-name corpus that used to give HTTP 500, a 100,000-file ``.output``
scanned while the loop keeps ticking, link loops, read-only and unsearchable trees.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sorna_sdk.local._runtime import batch, files
from sorna_sdk.local._runtime.batch import MAX_COMMAND_BYTES, plan, plan_batch
from sorna_sdk.local._runtime.errors import InvalidParameters, InvalidUpload
from sorna_sdk.local._runtime.files import (
    MAX_NAME_BYTES,
    MAX_NAME_PARTS,
    MAX_PART_BYTES,
    MAX_SCAN_DEPTH,
    MAX_SCAN_ENTRIES,
    OUTPUT_DIR,
    OutputSnapshot,
    compare_snapshots,
    delete_tree,
    new_files,
    remove_tree,
    scan_output,
    snapshot,
    store_uploads,
    upload_parts,
    write_uploads,
)
from sorna_sdk.local._runtime.registry import KernelRegistry

T = TypeVar("T")

BIG = 100_000
#: The loop may not go this long without running a 10 ms ticker.
MAX_STALL = 0.2
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# -- helpers ------------------------------------------------------------------------------


def _make_files(folder: Path, count: int, prefix: str = "f") -> None:
    """``count`` empty files, fast: one mknod (or open) per file relative to a folder fd."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(count):
            name = f"{prefix}{i:06d}"
            try:
                os.mknod(name, stat.S_IFREG | 0o644, dir_fd=fd)
            except (PermissionError, NotImplementedError):
                os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


@contextlib.contextmanager
def _fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A folder on tmpfs when there is one (100,000 files in about a second), else tmp_path."""
    shm = Path("/dev/shm")
    if sys.platform == "linux" and shm.is_dir() and os.access(shm, os.W_OK):
        path = Path(tempfile.mkdtemp(prefix="sorna-fs-test-", dir=shm))
        try:
            yield path
        finally:
            delete_tree(path)
    else:
        yield tmp_path


async def _max_stall(work: Awaitable[T]) -> tuple[T, float]:
    """Await ``work`` while a coroutine ticks every 10 ms; its result and the longest gap."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.02)  # the ticker is running before the work starts
    try:
        result = await work
    finally:
        done.set()
        await ticker
    return result, max(gaps)


def _gone(path: Path) -> bool:
    """Nothing at ``path``, not even a dangling link."""
    return not os.path.lexists(path)


def _tree(root: Path) -> list[str]:
    """Every path below ``root``, links not followed."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(found)


@pytest.fixture
def wd(tmp_path: Path) -> Path:
    """``tmp_path/kernels/k1`` (the work dir), with ``k2`` (another kernel) and ``outside``."""
    for name in ("kernels/k1/.output", "kernels/k2/.output", "outside"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "kernels/k2/secret.txt").write_text("k2's")
    (tmp_path / "outside/victim.txt").write_text("original")
    return (tmp_path / "kernels/k1").resolve()


def _plant(wd: Path) -> None:
    """What hostile kernel code leaves in its folder."""
    os.symlink("loop", wd / "loop")  # ln -s loop loop
    os.symlink("b", wd / "a")  # ln -s b a; ln -s a b
    os.symlink("a", wd / "b")
    os.symlink("/", wd / "root")
    os.symlink("../k2", wd / "other")  # another kernel's folder
    (wd / "d").mkdir()  # a folder, then replaced by a link
    (wd / "d").rmdir()
    os.symlink(wd.parent.parent / "outside", wd / "d")
    (wd / "sub").mkdir()
    os.symlink("../../../outside", wd / "sub" / "out")  # deeper down
    os.symlink(wd.parent.parent / "outside/victim.txt", wd / "victim.txt")
    os.symlink(wd.parent.parent / "outside/new.txt", wd / "dangling.txt")
    os.symlink("sub", wd / "inside")  # even a link that stays inside is not followed
    os.mkfifo(wd / "fifo")
    os.link(wd.parent.parent / "outside/victim.txt", wd / "hardlink.txt")
    (wd / "folder").mkdir()
    (wd / "file").write_text("mine")


def _outside(wd: Path) -> dict[str, list[str]]:
    base = wd.parent.parent
    return {"outside": _tree(base / "outside"), "k2": _tree(base / "kernels/k2")}


# -- upload names -------------------------------------------------------------------------

#: (name, why): refused by the name check alone, before the disk is touched.
BAD_NAMES = [
    ("x" * 256, "a 256-byte component"),
    ("é" * 128, "256 bytes in 128 characters"),
    ("a/" * 1100 + "f", "1,101 components"),
    ("/".join(["a"] * (MAX_NAME_PARTS + 1)), "65 components"),
    ("/".join(["p" * 200] * 21), "more than 4095 bytes"),
    ("/".join(["r" * 255] * 15 + ["r" * 256]), "4096 bytes"),
    ("x" * 100_000, "a 100 kB name"),
    ("", "empty"),
    (".", "only a dot"),
    ("./.", "only dots"),
    ("a/", "trailing slash"),
    ("a//b", "empty component"),
    ("../x", "parent"),
    ("a/../../x", "parent inside"),
    ("..\\x", "backslash parent"),
    ("a\\..\\..\\x", "backslash parents"),
    ("/etc/x", "absolute"),
    ("\\etc\\x", "backslash absolute"),
    ("//x", "double slash absolute"),
    ("nul\x00.txt", "NUL"),
    ("\ud800.txt", "lone surrogate"),
    ("\udcff.txt", "surrogate-escaped byte"),
]

#: (name, why): well-formed, refused because of what kernel code planted in its folder.
PLANTED = [
    ("loop/x", "ln -s loop loop"),
    ("loop", "ln -s loop loop, as the file itself"),
    ("a/x", "ln -s b a; ln -s a b"),
    ("b/x/y", "ln -s b a; ln -s a b"),
    ("root/tmp/sorna-pwned", "a link to /"),
    ("other/pwned.txt", "a link to another kernel's folder"),
    ("other/secret.txt", "overwriting another kernel's file"),
    ("d/pwned.txt", "a folder replaced by a link"),
    ("sub/out/pwned.txt", "a link deeper down"),
    ("victim.txt", "a link to a file outside"),
    ("dangling.txt", "a dangling link to outside"),
    ("inside/x", "a link inside the work dir"),
    ("fifo", "a FIFO (must not block)"),
    ("hardlink.txt", "a hard link to a file outside"),
    ("folder", "an existing folder"),
    ("file/x", "an existing file as a folder"),
]


@pytest.mark.parametrize(("name", "why"), BAD_NAMES, ids=[why for _, why in BAD_NAMES])
def test_bad_upload_names(wd: Path, name: str, why: str) -> None:
    with pytest.raises(InvalidUpload) as info:
        upload_parts(name)
    assert info.value.status == 400
    with pytest.raises(InvalidUpload):
        write_uploads(wd, [("ok.txt", b"x"), (name, b"x")], max_files=5, max_bytes=100)
    assert _tree(wd) == [".output"]
    assert len(info.value.title) < 400  # long names are shortened in the message


@pytest.mark.parametrize(("name", "why"), PLANTED, ids=[why for _, why in PLANTED])
async def test_planted_links_and_files(wd: Path, name: str, why: str) -> None:
    _plant(wd)
    before, inside = _outside(wd), _tree(wd)
    with pytest.raises(InvalidUpload) as info:
        await store_uploads(wd, [(name, b"pwned")], max_files=5, max_bytes=100)
    assert info.value.status == 400
    assert repr(name) in info.value.title
    assert str(wd.parent.parent) not in info.value.title  # no server path in the message
    assert _outside(wd) == before
    assert _tree(wd) == inside
    assert (wd.parent.parent / "outside/victim.txt").read_text() == "original"
    assert _gone(Path("/tmp/sorna-pwned"))


def test_planted_links_refuse_the_whole_request(wd: Path) -> None:
    _plant(wd)
    with pytest.raises(InvalidUpload, match="symbolic link"):
        write_uploads(wd, [("ok.txt", b"1"), ("d/x", b"2")], max_files=5, max_bytes=100)
    assert not (wd / "ok.txt").exists()


@pytest.mark.parametrize(
    "name",
    [
        "p" * MAX_PART_BYTES,
        "é" * (MAX_PART_BYTES // 2),
        "/".join(["a"] * MAX_NAME_PARTS),
        "/".join(["q" * 254] * 16),  # 4079 bytes
        "/".join(["r" * 255] * 15 + ["r" * 255]),  # exactly 4095 bytes
        "./a/./b.txt",
        "C:evil.txt",  # only a name on POSIX
        "a\\b\\c.txt",
        "new\nline.txt",
        ".output/result.txt",
    ],
)
def test_limit_names_are_written(wd: Path, name: str) -> None:
    assert len(name.encode()) <= MAX_NAME_BYTES
    write_uploads(wd, [(name, b"data")], max_files=5, max_bytes=100)
    assert _read(wd, upload_parts(name)) == b"data"


def _read(wd: Path, parts: tuple[str, ...]) -> bytes:
    """Read a file component by component (its absolute path may exceed PATH_MAX)."""
    fds = [os.open(wd, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        for part in parts[:-1]:
            fds.append(os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
        fds.append(os.open(parts[-1], os.O_RDONLY, dir_fd=fds[-1]))
        return os.read(fds[-1], 100)
    finally:
        for fd in fds:
            os.close(fd)


def test_overwrite_keeps_working(wd: Path) -> None:
    write_uploads(wd, [("a/b.txt", b"long content")], max_files=5, max_bytes=100)
    write_uploads(wd, [("a/b.txt", b"short")], max_files=5, max_bytes=100)
    assert (wd / "a/b.txt").read_bytes() == b"short"


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (errno.ENOSPC, "No space left on device"),
        (errno.EDQUOT, "Disk quota exceeded"),
        (errno.EIO, "Input/output error"),
    ],
)
def test_write_errors_are_invalid_uploads(
    wd: Path, monkeypatch: pytest.MonkeyPatch, code: int, text: str
) -> None:
    def fail(fd: int, data: Any) -> int:
        raise OSError(code, os.strerror(code), str(wd / "data.bin"))

    monkeypatch.setattr(os, "write", fail)
    with pytest.raises(InvalidUpload) as info:
        write_uploads(wd, [("data.bin", b"x")], max_files=5, max_bytes=100)
    assert "'data.bin'" in info.value.title
    assert os.strerror(code) in info.value.title
    assert str(wd) not in info.value.title


@pytest.mark.skipif(ROOT, reason="root ignores permissions")
def test_permission_denied_is_an_invalid_upload(wd: Path) -> None:
    (wd / "ro").mkdir()
    (wd / "ro").chmod(0o500)
    try:
        with pytest.raises(InvalidUpload, match="Permission denied"):
            write_uploads(wd, [("ro/sub/x.txt", b"1")], max_files=5, max_bytes=100)
    finally:
        (wd / "ro").chmod(0o700)


def test_missing_work_dir_is_an_invalid_upload(tmp_path: Path) -> None:
    with pytest.raises(InvalidUpload, match="not available"):
        write_uploads(tmp_path / "gone", [("x", b"1")], max_files=5, max_bytes=100)


async def test_store_uploads_runs_in_a_thread(wd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    real = files.write_uploads

    def spy(*args: Any, **kwargs: Any) -> None:
        threads.append(threading.current_thread())
        real(*args, **kwargs)

    monkeypatch.setattr(files, "write_uploads", spy)
    await store_uploads(wd, [("t.txt", b"1")], max_files=5, max_bytes=100)
    assert threads and threads[0] is not threading.main_thread()
    assert (wd / "t.txt").read_bytes() == b"1"


async def test_kernel_planted_links_through_a_real_kernel(
    registry: KernelRegistry, tmp_path: Path
) -> None:
    """The six names that gave HTTP 500, with the links made by kernel code itself."""
    k1, _ = await registry.get_or_create("owner", "token-fs-1", "python3")
    k2, _ = await registry.get_or_create("owner", "token-fs-2", "python3")
    outside = tmp_path / "outside"
    outside.mkdir()
    code = (
        "import os\n"
        "os.symlink('loop', 'loop')\n"
        "os.symlink('b', 'a'); os.symlink('a', 'b')\n"
        "os.symlink('/', 'root')\n"
        f"os.symlink({str(k2.workdir)!r}, 'other')\n"
        f"os.mkdir('d'); os.rmdir('d'); os.symlink({str(outside)!r}, 'd')\n"
        "print('planted')\n"
    )
    result = await k1.execute("query", code, None)
    assert result.console == [["stdout", "planted\n"]], result
    k2_before = _tree(k2.workdir)
    for name in [
        "x" * 256,
        "a/" * 1100 + "f",
        "loop/x",
        "a/x",
        "root/tmp/sorna-pwned",
        "other/pwned",
        "d/pwned",
    ]:
        with pytest.raises(InvalidUpload) as info:
            await k1.upload([(name, b"pwned")])
        assert info.value.status == 400
    assert _tree(k2.workdir) == k2_before
    assert list(outside.iterdir()) == []


# -- the .output scan ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A work dir whose ``.output`` holds 100,000 files (in a folder of its own)."""
    with _fast_tmp(tmp_path_factory.mktemp("big")) as base:
        wd = base / "k"
        (wd / OUTPUT_DIR / "many").mkdir(parents=True)
        _make_files(wd / OUTPUT_DIR / "many", BIG)
        yield wd


async def test_snapshot_of_100000_files_does_not_stall_the_loop(big_workdir: Path) -> None:
    # Even uncapped, the scan runs in a thread: the loop keeps ticking.
    full, stall = await _max_stall(snapshot(big_workdir, max_entries=2 * BIG))
    assert len(full.files) == BIG and not full.truncated
    assert stall < MAX_STALL
    # Capped (the default), the report is truncated, not an error.
    capped, stall = await _max_stall(snapshot(big_workdir))
    assert capped.truncated
    assert len(capped.files) < MAX_SCAN_ENTRIES
    assert stall < MAX_STALL
    changes = await new_files(big_workdir, capped)
    assert changes.truncated and changes.notice is not None
    assert len(changes.files) <= MAX_SCAN_ENTRIES


def test_capped_scan_is_quick(big_workdir: Path) -> None:
    started = time.monotonic()
    result = scan_output(big_workdir)
    assert time.monotonic() - started < 1.0
    assert result.truncated and len(result.files) == MAX_SCAN_ENTRIES - 1  # + the folder


def test_entry_cap_is_exact(tmp_path: Path) -> None:
    _make_files(_output(tmp_path), 10)
    assert not scan_output(tmp_path, max_entries=10).truncated
    assert len(scan_output(tmp_path, max_entries=10).files) == 10
    capped = scan_output(tmp_path, max_entries=9)
    assert capped.truncated and len(capped.files) == 9


def _output(wd: Path) -> Path:
    out = wd / OUTPUT_DIR
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_depth_cap(tmp_path: Path) -> None:
    folder = _output(tmp_path)
    for level in range(1, 41):
        (folder / f"f{level}").write_text("x")
        folder = folder / "d"
        folder.mkdir()
    result = scan_output(tmp_path)
    assert result.truncated
    depths = sorted(name.count("/") + 1 for name in result.files)
    assert depths == list(range(1, MAX_SCAN_DEPTH + 1))
    exact = scan_output(tmp_path, max_depth=45)
    assert not exact.truncated and len(exact.files) == 40


def test_links_loops_and_odd_entries_in_output(wd: Path) -> None:
    out = wd / OUTPUT_DIR
    (out / "real.txt").write_text("r")
    (out / "sub").mkdir()
    (out / "sub/deep.txt").write_text("d")
    os.symlink("loop", out / "loop")
    os.symlink("b", out / "a")
    os.symlink("a", out / "b")
    os.symlink("/", out / "root")
    os.symlink("..", out / "up")
    os.symlink(".", out / "self")
    os.symlink("../../k2", out / "other")
    os.symlink(wd.parent / "k2/secret.txt", out / "secret.txt")
    os.mkfifo(out / "fifo")
    (out / "locked").mkdir()
    (out / "locked/hidden.txt").write_text("h")
    (out / "locked").chmod(0)
    try:
        result = scan_output(wd)
    finally:
        (out / "locked").chmod(0o700)
    expected = {"real.txt", "sub/deep.txt"} | ({"locked/hidden.txt"} if ROOT else set())
    assert set(result.files) == expected
    assert not result.truncated


@pytest.mark.parametrize("kind", ["link to /", "link loop", "file", "missing", "link to k2"])
async def test_output_folder_itself_replaced(wd: Path, kind: str) -> None:
    out = wd / OUTPUT_DIR
    out.rmdir()
    if kind == "link to /":
        os.symlink("/", out)
    elif kind == "link loop":
        os.symlink(OUTPUT_DIR, out)
    elif kind == "file":
        out.write_text("x")
    elif kind == "link to k2":
        os.symlink("../k2/.output", out)
        (wd.parent / "k2/.output/theirs.txt").write_text("t")
    before = await snapshot(wd)
    assert before.files == {} and not before.truncated
    assert (await new_files(wd, before)).files == []


async def test_work_dir_itself_a_link(tmp_path: Path) -> None:
    (tmp_path / "real" / OUTPUT_DIR).mkdir(parents=True)
    (tmp_path / "real" / OUTPUT_DIR / "x.txt").write_text("x")
    os.symlink(tmp_path / "real", tmp_path / "wd")
    assert (await snapshot(tmp_path / "wd")).files == {}


def test_entries_vanishing_during_scans(tmp_path: Path) -> None:
    out = _output(tmp_path)
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            for i in range(200):
                with contextlib.suppress(OSError):
                    (out / f"d{i}").mkdir()
                    (out / f"d{i}/f").write_text("x")
            for i in range(200):
                shutil.rmtree(out / f"d{i}", ignore_errors=True)

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        deadline = time.monotonic() + 0.5
        scans = 0
        while time.monotonic() < deadline:
            result = scan_output(tmp_path)
            assert all(name.startswith("d") for name in result.files)
            scans += 1
    finally:
        stop.set()
        worker.join()
    assert scans > 1


def test_new_and_changed_files_are_reported(tmp_path: Path) -> None:
    out = _output(tmp_path)
    (out / "same.txt").write_text("s")
    (out / "changed.txt").write_text("c")
    before = scan_output(tmp_path)
    (out / "changed.txt").write_text("changed, longer")
    (out / "new").mkdir()
    (out / "new/file.txt").write_text("n")
    os.symlink("same.txt", out / "link.txt")
    changes = compare_snapshots(before, scan_output(tmp_path))
    assert changes.files == ["changed.txt", "new/file.txt"]
    assert not changes.truncated and changes.notice is None
    # The legacy dict form still works.
    assert files.new_output_files(tmp_path, files.output_snapshot(tmp_path)) == []


def test_truncated_before_reports_only_files_modified_since() -> None:
    started = 100 * 10**9
    before = OutputSnapshot(
        {"seen.txt": (1, 1), "seen-changed.txt": (1, 1)}, truncated=True, started_ns=started
    )
    after = OutputSnapshot(
        {
            "seen.txt": (1, 1),
            "old-unseen.txt": (5 * 10**9, 1),  # long before the run: probably just not reached
            "new.txt": (started + 1, 3),
            "seen-changed.txt": (2, 2),
        },
        truncated=True,
        started_ns=started + 10**9,
    )
    changes = compare_snapshots(before, after)
    assert changes.files == ["new.txt", "seen-changed.txt"]
    assert changes.truncated


@pytest.mark.skipif(sys.platform == "darwin", reason="APFS refuses names that are not UTF-8")
def test_names_that_are_not_utf8_are_reported_printably(tmp_path: Path) -> None:
    out = _output(tmp_path)
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.close(os.open(b"bad\xff.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    changes = compare_snapshots({}, scan_output(tmp_path))
    assert changes.files == ["bad\ufffd.txt"]
    changes.files[0].encode("utf-8")


# -- removing a work dir -----------------------------------------------------------------


def _hostile_tree(wd: Path, outside: Path) -> None:
    (wd / "ro").mkdir(parents=True)
    (wd / "ro/file.txt").write_text("x")
    (wd / "ro/file.txt").chmod(0o400)
    (wd / "ro/inner").mkdir()
    (wd / "ro/inner/f").write_text("x")
    (wd / "ro").chmod(0o500)  # no w: entries cannot be removed as is
    (wd / "nox/deeper").mkdir(parents=True)
    (wd / "nox/deeper/f").write_text("x")
    (wd / "nox").chmod(0o600)  # no x: cannot be entered
    (wd / "none/a").mkdir(parents=True)
    (wd / "none/a/f").write_text("x")
    (wd / "none/a").chmod(0)
    (wd / "none").chmod(0)
    os.symlink(outside, wd / "out")
    os.symlink(outside / "keep.txt", wd / "keep-link")
    os.symlink("loop", wd / "loop")
    os.mkfifo(wd / "fifo")
    (wd / "readonly.txt").write_text("x")
    (wd / "readonly.txt").chmod(0o444)


async def test_remove_tree_read_only_unsearchable_and_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "keep.txt").write_text("keep")
    (outside / "sub/keep.txt").write_text("keep")
    wd = tmp_path / "wd"
    _hostile_tree(wd, outside)
    wd.chmod(0o500)
    assert await remove_tree(wd) is True
    assert _gone(wd)
    assert _tree(outside) == ["keep.txt", "sub", "sub/keep.txt"]


async def test_remove_tree_on_a_link_removes_the_link_only(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    (tmp_path / "target/keep.txt").write_text("keep")
    os.symlink(tmp_path / "target", tmp_path / "link")
    assert await remove_tree(tmp_path / "link") is True
    assert _gone(tmp_path / "link")
    assert (tmp_path / "target/keep.txt").read_text() == "keep"


async def test_remove_tree_missing_and_file(tmp_path: Path) -> None:
    assert await remove_tree(tmp_path / "nothing") is True
    assert await remove_tree(tmp_path / "no/such/parent") is True
    (tmp_path / "f").write_text("x")
    assert await remove_tree(tmp_path / "f") is True
    assert not (tmp_path / "f").exists()


def test_remove_tree_deeper_than_recursion_and_fd_limits(tmp_path: Path) -> None:
    depth = 3000  # beyond sys.getrecursionlimit() and a 1024 fd limit
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(depth):
            os.mkdir("d", dir_fd=fd)
            if level % 100 == 0:
                os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o400, dir_fd=fd))
            sub = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = sub
    finally:
        os.close(fd)
    assert delete_tree(tmp_path / "d") is True
    assert not (tmp_path / "d").exists()


async def test_remove_big_tree_does_not_stall_the_loop(tmp_path: Path) -> None:
    with _fast_tmp(tmp_path) as base:
        wd = base / "k"
        for part in range(5):
            (wd / f"p{part}").mkdir(parents=True)
            _make_files(wd / f"p{part}", 10_000)
        gone, stall = await _max_stall(remove_tree(wd))
        assert gone and not wd.exists()
        assert stall < MAX_STALL


async def test_remove_tree_never_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(path: Any) -> bool:
        raise RuntimeError("bug")

    monkeypatch.setattr(files, "delete_tree", broken)
    assert await remove_tree(tmp_path) is False


# -- batch planning --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("none", None),
        ("makefile", "make"),
        ("link to makefile", "make"),
        ("link loop", None),
        ("link to /", None),
        ("folder", None),
        ("fifo", None),
        ("missing work dir", None),
    ],
)
async def test_plan_default_build_is_bounded(tmp_path: Path, setup: str, expected: str) -> None:
    wd = tmp_path / "wd"
    wd.mkdir()
    make = wd / "Makefile"
    if setup == "makefile":
        make.write_text("all:\n")
    elif setup == "link to makefile":
        (wd / "build.mk").write_text("all:\n")
        os.symlink("build.mk", make)
    elif setup == "link loop":
        os.symlink("Makefile", make)
    elif setup == "link to /":
        os.symlink("/", make)
    elif setup == "folder":
        make.mkdir()
    elif setup == "fifo":
        os.mkfifo(make)
    elif setup == "missing work dir":
        wd.rmdir()
    result = await plan("bash", wd, {"build": "*", "exec": "*"})
    assert result.build == expected
    assert result.exec == "bash main.sh"
    assert plan_batch("bash", wd, {"build": "*", "exec": "*"}) == result


async def test_plan_setup_py_and_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "setup.py").write_text("")
    threads: list[threading.Thread] = []
    real = batch._default_build

    def spy(lang: str, workdir: Path) -> str | None:
        threads.append(threading.current_thread())
        return real(lang, workdir)

    monkeypatch.setattr(batch, "_default_build", spy)
    result = await plan("python3", tmp_path, {"build": "*", "exec": "echo hi"})
    assert result.build is not None and result.build.endswith("setup.py build")
    assert result.exec == "echo hi"
    assert threads and threads[0] is not threading.main_thread()
    threads.clear()
    await plan("python3", tmp_path, {"build": "make", "exec": "*"})
    assert threads == []  # no "*" build: nothing to look up


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"build": "a\x00b"}, "NUL"),
        ({"exec": "x" * (MAX_COMMAND_BYTES + 1)}, "too long"),
        ({"exec": "é" * (MAX_COMMAND_BYTES // 2 + 1)}, "too long"),
        ({"exec": "\ud800"}, "Unicode"),
        ({"build": 3}, "string"),
        ({"buildLog": "yes"}, "boolean"),
    ],
)
async def test_plan_rejects(tmp_path: Path, options: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidParameters, match=needle):
        await plan("bash", tmp_path, options)
    with pytest.raises(InvalidParameters, match=needle):
        plan_batch("bash", tmp_path, options)


async def test_plan_accepts_the_longest_command(tmp_path: Path) -> None:
    command = "x" * MAX_COMMAND_BYTES
    assert (await plan("bash", tmp_path, {"exec": command})).exec == command
