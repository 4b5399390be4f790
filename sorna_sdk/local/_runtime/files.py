"""File system work on a kernel's work dir: uploads, the ``.output`` report, removing the dir.

Everything here may meet a tree that kernel code has shaped on purpose: symbolic links to ``/``
or to another kernel's folder, loops, 100,000 files, read-only files, folders without ``x``.
So:

* The blocking functions (``write_uploads``, ``scan_output``, ``delete_tree``) never follow a
  symbolic link below the work dir: each path component is opened relative to its parent's
  file descriptor with ``O_NOFOLLOW``. Their ``async`` twins (``store_uploads``, ``snapshot``,
  ``new_files``, ``remove_tree``) run them in a thread, so the event loop never waits on the
  disk.
* A scan of ``.output`` looks at most at ``MAX_SCAN_ENTRIES`` entries and ``MAX_SCAN_DEPTH``
  levels; beyond that the report is truncated (``truncated=True``), never an error.
* Upload names are checked before anything is touched (see ``upload_parts`` for the rules);
  every refusal and every ``OSError`` while writing is an ``InvalidUpload`` (HTTP 400) naming
  the upload, never the server's path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sorna_sdk.local._runtime.errors import InvalidUpload

__all__ = [
    "EMPTY_SNAPSHOT",
    "MAX_NAME_BYTES",
    "MAX_NAME_PARTS",
    "MAX_PART_BYTES",
    "MAX_SCAN_DEPTH",
    "MAX_SCAN_ENTRIES",
    "OUTPUT_DIR",
    "OutputChanges",
    "OutputSnapshot",
    "Snapshot",
    "compare_snapshots",
    "delete_tree",
    "new_files",
    "new_output_files",
    "output_snapshot",
    "remove_tree",
    "scan_output",
    "snapshot",
    "store_uploads",
    "upload_parts",
    "write_uploads",
]

log: logging.Logger = logging.getLogger(__name__)

OUTPUT_DIR: Final = ".output"

#: Entries (files, folders, links, anything) one scan of ``.output`` looks at, at most.
MAX_SCAN_ENTRIES: Final = 10_000
#: Path components of a reported output file, at most (deeper folders are not scanned).
MAX_SCAN_DEPTH: Final = 32
#: Bytes (UTF-8) of a whole upload name, at most: PATH_MAX less the NUL, so that kernel code
#: can still open it relative to its folder.
MAX_NAME_BYTES: Final = 4095
#: Bytes (UTF-8) of one component of an upload name, at most (NAME_MAX).
MAX_PART_BYTES: Final = 255
#: Components of an upload name (``a/b/c`` has 3), at most.
MAX_NAME_PARTS: Final = 64

#: Legacy form of a snapshot: relative path -> (mtime_ns, size).
Snapshot = dict[str, tuple[int, int]]

_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
#: Open a folder, refusing a symbolic link in the last component.
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
#: Open (or create) an upload's file: no link, and no waiting on a FIFO planted under its name.
_FILE_FLAGS: Final = (
    os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | _CLOEXEC
)
#: A file missing from a truncated ``before`` scan is reported only if it was modified after
#: that scan began, less this much (file time stamps come from a coarser clock).
_MTIME_SLACK_NS: Final = 1_000_000_000
#: Passes over a tree to remove (a second one catches what appeared during the first).
_REMOVE_PASSES: Final = 2


# -- the .output report ---------------------------------------------------------------------


@dataclass(frozen=True)
class OutputSnapshot:
    """Regular files under ``.output``: relative POSIX path -> (mtime_ns, size).

    ``truncated`` says the scan stopped at ``MAX_SCAN_ENTRIES`` or ``MAX_SCAN_DEPTH``;
    ``started_ns`` is the wall clock (``time.time_ns()``) when it began.
    """

    files: Mapping[str, tuple[int, int]] = field(default_factory=dict[str, tuple[int, int]])
    truncated: bool = False
    started_ns: int = 0


#: What to compare with when no scan was made.
EMPTY_SNAPSHOT: Final = OutputSnapshot()


@dataclass(frozen=True)
class OutputChanges:
    """Files in ``.output`` that are new or changed; ``truncated``: the list may be incomplete."""

    files: list[str]
    truncated: bool

    @property
    def notice(self) -> str | None:
        """A console line saying the list is incomplete, or None."""
        if not self.truncated:
            return None
        return (
            f"[output files list truncated: {OUTPUT_DIR} has more than {MAX_SCAN_ENTRIES} "
            f"entries or is deeper than {MAX_SCAN_DEPTH} levels]\n"
        )


class _Scan:
    def __init__(self, max_entries: int, max_depth: int) -> None:
        self.max_entries = max_entries
        self.max_depth = max_depth
        self.seen = 0
        self.truncated = False
        self.found: dict[str, tuple[int, int]] = {}

    def walk(self, dir_fd: int, prefix: str, depth: int) -> None:
        """Scan the open folder ``dir_fd``; its files have ``depth`` path components."""
        subdirs: list[str] = []
        try:
            with os.scandir(dir_fd) as entries:
                for entry in entries:
                    if self.seen >= self.max_entries:
                        self.truncated = True
                        break
                    self.seen += 1
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            subdirs.append(entry.name)
                            continue
                        if not entry.is_file(follow_symlinks=False):
                            continue  # links, FIFOs, sockets: not output files
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue  # vanished or unreadable meanwhile
                    self.found[prefix + entry.name] = (info.st_mtime_ns, info.st_size)
        except OSError:
            pass  # no permission to list, or the folder vanished: what was seen stays
        for name in subdirs:
            if depth >= self.max_depth or self.seen >= self.max_entries:
                self.truncated = True
                return
            try:
                sub = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            except OSError:
                continue  # replaced by a link or a file, vanished, or no permission
            try:
                self.walk(sub, f"{prefix}{name}/", depth + 1)
            finally:
                os.close(sub)


def scan_output(
    workdir: Path, *, max_entries: int = MAX_SCAN_ENTRIES, max_depth: int = MAX_SCAN_DEPTH
) -> OutputSnapshot:
    """Blocking: the regular files under ``workdir/.output``, within the caps.

    Never follows a symbolic link (``.output`` itself included) and never raises ``OSError``:
    entries that vanish or cannot be read are left out.
    """
    started = time.time_ns()
    scan = _Scan(max_entries, max_depth)
    try:
        root = os.open(workdir, _DIR_FLAGS)
    except OSError:
        return OutputSnapshot({}, False, started)
    try:
        out = os.open(OUTPUT_DIR, _DIR_FLAGS, dir_fd=root)
    except OSError:
        return OutputSnapshot({}, False, started)
    finally:
        os.close(root)
    try:
        scan.walk(out, "", 1)
    finally:
        os.close(out)
    return OutputSnapshot(scan.found, scan.truncated, started)


def compare_snapshots(before: OutputSnapshot | Snapshot, after: OutputSnapshot) -> OutputChanges:
    """Sorted names in ``after`` that are new or changed since ``before``.

    If ``before`` was truncated, a name it lacks counts as new only if the file was modified
    after ``before`` was taken (it may just be an old file that scan did not reach). Names that
    are not valid UTF-8 are reported with U+FFFD in place of the bad bytes.
    """
    if isinstance(before, OutputSnapshot):
        old, partial, since = before.files, before.truncated, before.started_ns - _MTIME_SLACK_NS
    else:
        old, partial, since = before, False, 0
    names: list[str] = []
    for name, sig in after.files.items():
        prev = old.get(name)
        if prev == sig or (prev is None and partial and sig[0] < since):
            continue
        names.append(_printable(name))
    return OutputChanges(sorted(names), partial or after.truncated)


def output_snapshot(workdir: Path) -> Snapshot:
    """Blocking, legacy: ``scan_output(workdir).files`` as a dict (capped, no truncation flag)."""
    return dict(scan_output(workdir).files)


def new_output_files(workdir: Path, before: OutputSnapshot | Snapshot) -> list[str]:
    """Blocking, legacy: names of files in ``.output`` that are new or changed since ``before``."""
    return compare_snapshots(before, scan_output(workdir)).files


async def snapshot(
    workdir: Path, *, max_entries: int = MAX_SCAN_ENTRIES, max_depth: int = MAX_SCAN_DEPTH
) -> OutputSnapshot:
    """``scan_output`` in a thread: take it before a run starts."""
    return await asyncio.to_thread(
        scan_output, workdir, max_entries=max_entries, max_depth=max_depth
    )


async def new_files(workdir: Path, before: OutputSnapshot | Snapshot) -> OutputChanges:
    """Scan again in a thread and compare with ``before`` (the snapshot taken before the run)."""
    return compare_snapshots(before, await snapshot(workdir))


def _printable(name: str) -> str:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return name


# -- uploads ------------------------------------------------------------------------------


def _label(name: str) -> str:
    """``repr(name)``, shortened for names too long to quote in full."""
    return repr(name) if len(name) <= 120 else repr(name[:60]) + f"... ({len(name)} characters)"


def upload_parts(name: str) -> tuple[str, ...]:
    """The path components of the upload name ``name``; raises ``InvalidUpload``.

    Rules: a non-empty ``str`` without NUL and without surrogates; ``\\`` counts as ``/``; it
    is relative; no component is empty (``a//b``, ``a/``) or ``..``; ``.`` components are
    dropped and something must remain; at most ``MAX_NAME_BYTES`` bytes in all, at most
    ``MAX_NAME_PARTS`` components, each at most ``MAX_PART_BYTES`` bytes (UTF-8).
    """
    if not isinstance(name, str) or not name:
        raise InvalidUpload(f"invalid upload file name {name!r}")
    if "\x00" in name:
        raise InvalidUpload(f"invalid upload file name {_label(name)}: it contains NUL")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidUpload(f"upload file name {_label(name)} is not valid Unicode") from None
    if size > MAX_NAME_BYTES:
        raise InvalidUpload(
            f"upload file name {_label(name)} is too long: {size} bytes (at most {MAX_NAME_BYTES})"
        )
    posix = name.replace("\\", "/")
    if posix.startswith("/"):
        raise InvalidUpload(f"upload file name {_label(name)} must be relative")
    raw = posix.split("/")
    if "" in raw or ".." in raw:
        raise InvalidUpload(f"upload file name {_label(name)} has an empty or '..' part")
    parts = tuple(part for part in raw if part != ".")
    if not parts:
        raise InvalidUpload(f"upload file name {_label(name)} has an empty or '..' part")
    if len(parts) > MAX_NAME_PARTS:
        raise InvalidUpload(
            f"upload file name {_label(name)} is too deep: {len(parts)} parts "
            f"(at most {MAX_NAME_PARTS})"
        )
    for part in parts:
        if len(part.encode("utf-8")) > MAX_PART_BYTES:
            raise InvalidUpload(
                f"upload file name {_label(name)} has a part longer than "
                f"{MAX_PART_BYTES} bytes: {_label(part)}"
            )
    return parts


@dataclass(frozen=True)
class _Upload:
    name: str
    parts: tuple[str, ...]
    data: bytes

    def sub(self, count: int) -> str:
        """The first ``count`` components, as a relative name for messages."""
        return "/".join(self.parts[:count])


def write_uploads(
    workdir: Path, files: Sequence[tuple[str, bytes]], *, max_files: int, max_bytes: int
) -> None:
    """Blocking: check every file, then write them; raises ``InvalidUpload``.

    Nothing is written unless all names pass and none conflicts with another or with what
    exists; nothing is ever written outside ``workdir`` or through a symbolic link. Missing
    folders are created. A write that fails half-way (``ENOSPC``) may leave earlier files of
    the request, and the failed file partly written.
    """
    if len(files) > max_files:
        raise InvalidUpload(f"too many files: {len(files)} (at most {max_files})")
    uploads: list[_Upload] = []
    for name, data in files:
        parts = upload_parts(name)
        if len(data) > max_bytes:
            raise InvalidUpload(
                f"upload {_label(name)} is too big: {len(data)} bytes (at most {max_bytes})"
            )
        uploads.append(_Upload(name, parts, data))
    _check_each_other(uploads)
    try:
        root = os.open(workdir, _DIR_FLAGS)
    except OSError as exc:
        raise InvalidUpload(
            f"cannot write uploads: the kernel's folder is not available ({_why(exc)})"
        ) from None
    try:
        for upload in uploads:
            _check_existing(root, upload)
        for upload in uploads:
            _write(root, upload)
    finally:
        os.close(root)


async def store_uploads(
    workdir: Path, files: Sequence[tuple[str, bytes]], *, max_files: int, max_bytes: int
) -> None:
    """``write_uploads`` in a thread."""
    await asyncio.to_thread(
        write_uploads, workdir, list(files), max_files=max_files, max_bytes=max_bytes
    )


def _why(exc: OSError) -> str:
    # strerror never holds a path; str(exc) may hold the server's absolute one.
    return exc.strerror or type(exc).__name__


def _check_each_other(uploads: Sequence[_Upload]) -> None:
    """A name that is also a parent folder of another name of the same request."""
    names = {upload.parts: upload.name for upload in uploads}
    for upload in uploads:
        for count in range(1, len(upload.parts)):
            other = names.get(upload.parts[:count])
            if other is not None:
                raise InvalidUpload(
                    f"upload {_label(other)} conflicts with {_label(upload.name)}: "
                    "a file cannot be a folder"
                )


def _refusal(dir_fd: int, upload: _Upload, count: int, exc: OSError) -> InvalidUpload:
    """Why component ``count`` (1-based) of ``upload`` could not be opened as a folder."""
    sub = upload.sub(count)
    try:
        info = os.stat(upload.parts[count - 1], dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return InvalidUpload(f"cannot write upload {_label(upload.name)}: {_why(exc)}")
    if stat.S_ISLNK(info.st_mode):
        return InvalidUpload(
            f"upload file name {_label(upload.name)} goes through the symbolic link "
            f"{_label(sub)}, which may lead outside the work dir"
        )
    if not stat.S_ISDIR(info.st_mode):
        return InvalidUpload(
            f"upload {_label(upload.name)} conflicts with the existing file {_label(sub)}"
        )
    return InvalidUpload(f"cannot write upload {_label(upload.name)}: {_why(exc)}")


@contextlib.contextmanager
def _closing(fds: list[int]) -> Generator[list[int], None, None]:
    try:
        yield fds
    finally:
        for fd in fds:
            os.close(fd)


def _check_existing(root: int, upload: _Upload) -> None:
    """Refuse, before anything is written, what exists in the way of ``upload``."""
    with _closing([]) as opened:
        dir_fd = root
        for count, part in enumerate(upload.parts[:-1], start=1):
            try:
                dir_fd = os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
            except FileNotFoundError:
                return  # to be created, with everything below it
            except OSError as exc:
                raise _refusal(dir_fd, upload, count, exc) from None
            opened.append(dir_fd)
        try:
            info = os.stat(upload.parts[-1], dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise InvalidUpload(f"cannot write upload {_label(upload.name)}: {_why(exc)}") from None
        _check_target(upload, info)


def _check_target(upload: _Upload, info: os.stat_result) -> None:
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise InvalidUpload(f"upload {_label(upload.name)} conflicts with an existing folder")
    if stat.S_ISLNK(mode):
        raise InvalidUpload(
            f"upload {_label(upload.name)} would write through a symbolic link, "
            "which may lead outside the work dir"
        )
    if not stat.S_ISREG(mode):
        raise InvalidUpload(f"upload {_label(upload.name)} conflicts with an existing special file")
    if info.st_nlink > 1:
        raise InvalidUpload(
            f"upload {_label(upload.name)} would overwrite a file with several hard links, "
            "which may be outside the work dir"
        )


def _write(root: int, upload: _Upload) -> None:
    with _closing([]) as opened:
        dir_fd = root
        for count in range(1, len(upload.parts)):
            dir_fd = _enter(dir_fd, upload, count)
            opened.append(dir_fd)
        leaf = upload.parts[-1]
        try:
            fd = os.open(leaf, _FILE_FLAGS, 0o644, dir_fd=dir_fd)
        except OSError as exc:
            # A link (ELOOP), a folder (EISDIR), a FIFO without reader (ENXIO): say which.
            with contextlib.suppress(OSError):
                _check_target(upload, os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False))
            raise InvalidUpload(f"cannot write upload {_label(upload.name)}: {_why(exc)}") from None
        opened.append(fd)
        try:
            # Checked on the open file: what is truncated is what was checked.
            _check_target(upload, os.fstat(fd))
            os.ftruncate(fd, 0)
            view = memoryview(upload.data)
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            raise InvalidUpload(f"cannot write upload {_label(upload.name)}: {_why(exc)}") from None


def _enter(dir_fd: int, upload: _Upload, count: int) -> int:
    """Open (creating it if missing) folder component ``count`` of ``upload`` below ``dir_fd``."""
    part = upload.parts[count - 1]
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _refusal(dir_fd, upload, count, exc) from None
    try:
        os.mkdir(part, 0o777, dir_fd=dir_fd)
    except FileExistsError:
        pass  # made meanwhile: opened below like any other
    except OSError as exc:
        raise InvalidUpload(f"cannot write upload {_label(upload.name)}: {_why(exc)}") from None
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise _refusal(dir_fd, upload, count, exc) from None


# -- removing a work dir ---------------------------------------------------------------


@dataclass
class _Frame:
    name: str  # in its parent
    ident: tuple[int, int]  # st_dev, st_ino
    pending: list[str]  # subfolders still to remove


def delete_tree(path: Path | str) -> bool:
    """Blocking: remove ``path`` and everything below it; True if it is gone.

    Never follows a symbolic link (a link at ``path`` is removed itself), never leaves the
    tree nor its file system, makes read-only or unsearchable folders writable to empty them,
    holds two file descriptors at a time whatever the depth, and never raises ``OSError``.
    """
    target: str = os.fspath(path)
    parent, name = os.path.split(os.path.abspath(target))
    if not name:
        return False
    try:
        parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        return any(_remove_entry(parent_fd, name) for _ in range(_REMOVE_PASSES))
    finally:
        os.close(parent_fd)


async def remove_tree(path: Path | str) -> bool:
    """``delete_tree`` in a thread; never raises (but lets cancellation through)."""
    try:
        return await asyncio.to_thread(delete_tree, path)
    except Exception:
        log.warning("could not remove %s", path, exc_info=True)
        return False


def _remove_entry(parent_fd: int, name: str) -> bool:
    try:
        info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if stat.S_ISDIR(info.st_mode):
        with contextlib.suppress(OSError):
            _remove_dir(parent_fd, name, info.st_dev)
    else:
        _unlink(parent_fd, name)
    try:
        os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return True
    except OSError:
        pass
    return False


def _remove_dir(top_parent: int, top_name: str, dev: int) -> None:
    """Empty and remove a folder; depth first, going up through ``..`` (checked by inode)."""
    cur = _open_dir(top_parent, top_name)
    if cur is None:
        _rmdir(top_parent, top_name)
        return
    try:
        info = os.fstat(cur)
        stack = [_Frame(top_name, (info.st_dev, info.st_ino), [])]
        _empty_files(cur, stack[-1])
        while stack:
            frame = stack[-1]
            if frame.pending:
                child = frame.pending.pop()
                sub = _open_dir(cur, child)
                if sub is None:
                    _rmdir(cur, child)  # vanished, or cannot be opened even after chmod
                    continue
                try:
                    info = os.fstat(sub)
                except OSError:
                    os.close(sub)
                    continue
                if info.st_dev != dev:  # another file system mounted here: leave it alone
                    os.close(sub)
                    continue
                os.close(cur)
                cur = sub
                stack.append(_Frame(child, (info.st_dev, info.st_ino), []))
                _empty_files(cur, stack[-1])
                continue
            stack.pop()
            if not stack:
                break
            up = os.open("..", _DIR_FLAGS, dir_fd=cur)
            os.close(cur)
            cur = up
            info = os.fstat(cur)
            if (info.st_dev, info.st_ino) != stack[-1].ident:
                return  # the folder was moved meanwhile: stop rather than delete elsewhere
            _rmdir(cur, frame.name)
    finally:
        os.close(cur)
    _rmdir(top_parent, top_name)


def _empty_files(dir_fd: int, frame: _Frame) -> None:
    """Make the open folder writable, unlink what is not a folder, queue its subfolders."""
    with contextlib.suppress(OSError):
        mode = stat.S_IMODE(os.fstat(dir_fd).st_mode)
        if mode & 0o700 != 0o700:
            os.fchmod(dir_fd, mode | 0o700)
    try:
        with os.scandir(dir_fd) as entries:
            for entry in entries:
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                if is_dir:
                    frame.pending.append(entry.name)
                    continue
                try:
                    os.unlink(entry.name, dir_fd=dir_fd)
                except (IsADirectoryError, PermissionError):
                    # Became a folder meanwhile (EISDIR; EPERM on macOS), or cannot be removed.
                    frame.pending.append(entry.name)
                except OSError:
                    pass
    except OSError:
        pass


def _open_dir(parent_fd: int, name: str) -> int | None:
    """Open a subfolder without following links; make it readable first if need be."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except PermissionError:
        pass
    except OSError:
        return None
    if not _make_accessible(parent_fd, name):
        return None
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError:
        return None


def _make_accessible(parent_fd: int, name: str) -> bool:
    try:
        os.chmod(name, 0o700, dir_fd=parent_fd, follow_symlinks=False)
        return True
    except (NotImplementedError, OSError):
        pass
    # No lchmod here: chmod a folder that was just seen not to be a link.
    try:
        if not stat.S_ISDIR(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode):
            return False
        os.chmod(name, 0o700, dir_fd=parent_fd)
    except (NotImplementedError, OSError):
        return False
    return True


def _rmdir(dir_fd: int, name: str) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(name, dir_fd=dir_fd)


def _unlink(dir_fd: int, name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=dir_fd)
