"""Reading a kernel's work folder for clients: listings, tar archives and single files.

Paths are as a Backend.AI session sees them: relative to its work folder or absolute under
``/home/work`` (the folder's name inside a Backend.AI container). Kernel code is untrusted and
may plant symbolic links, FIFOs or huge trees: every component is opened relative to its
parent with ``O_NOFOLLOW``, only regular files and folders are read, and entries, depth and
bytes are capped. Everything here blocks; the kernel calls it in a worker thread.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import tarfile
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sorna_sdk.local._runtime.errors import InvalidParameters

__all__ = [
    "MAX_DOWNLOAD_BYTES",
    "MAX_LISTED",
    "WORK_HOME",
    "FileInfo",
    "Listing",
    "archive",
    "container_path",
    "list_dir",
    "read_file",
    "split_path",
]

#: The work folder's path as sessions and clients name it.
WORK_HOME: Final = "/home/work"
#: Entries one listing reports at most.
MAX_LISTED: Final = 10_000
#: Bytes of file content one download carries at most (all archives together).
MAX_DOWNLOAD_BYTES: Final = 32 * 1024 * 1024
#: Entries and folder depth one archive holds at most.
MAX_ARCHIVED: Final = 10_000
MAX_DEPTH: Final = 64
_MAX_PATH: Final = 4096
_MAX_NAME: Final = 255
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class FileInfo:
    """One entry of a listing (times in seconds since the epoch)."""

    filename: str
    mode: str  # stat.filemode text, e.g. "-rw-r--r--"
    size: int
    ctime: float
    mtime: float
    atime: float


@dataclass(frozen=True)
class Listing:
    """A folder's entries, its path as the session sees it, and what went wrong if anything."""

    abspath: str
    files: list[FileInfo] = field(default_factory=list[FileInfo])
    errors: str = ""


def split_path(path: str) -> tuple[str, ...]:
    """The components of ``path`` below the work folder (``InvalidParameters`` if outside)."""
    if not isinstance(path, str):
        raise InvalidParameters("a path must be a string")
    if "\x00" in path:
        raise InvalidParameters("a path cannot contain NUL characters")
    if len(path.encode("utf-8", "surrogatepass")) > _MAX_PATH:
        raise InvalidParameters(f"a path is at most {_MAX_PATH} bytes long")
    relative = path
    if path.startswith("/"):
        if path != WORK_HOME and not path.startswith(WORK_HOME + "/"):
            raise InvalidParameters(f"{path!r} is outside the session's folder ({WORK_HOME})")
        relative = path[len(WORK_HOME) :]
    parts: list[str] = []
    for part in relative.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise InvalidParameters(f"{path!r} is outside the session's folder ({WORK_HOME})")
            parts.pop()
            continue
        if len(part.encode("utf-8", "surrogatepass")) > _MAX_NAME:
            raise InvalidParameters(f"a path component is at most {_MAX_NAME} bytes long")
        parts.append(part)
    return tuple(parts)


def container_path(parts: tuple[str, ...]) -> str:
    """``parts`` as the session names the path (``/home/work/...``)."""
    return "/".join((WORK_HOME, *parts))


def list_dir(workdir: Path, path: str) -> Listing:
    """The entries of the folder ``path``; a missing one is reported in ``errors``."""
    parts = split_path(path)
    abspath = container_path(parts)
    try:
        with _opened(workdir, parts, directory=True) as fd:
            files: list[FileInfo] = []
            with os.scandir(fd) as entries:
                for entry in entries:
                    if len(files) >= MAX_LISTED:
                        return Listing(abspath, files, f"only the first {MAX_LISTED} entries")
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    files.append(_info(entry.name, info))
    except OSError as exc:
        return Listing(abspath, [], _why(abspath, exc))
    files.sort(key=lambda item: item.filename)
    return Listing(abspath, files)


def read_file(workdir: Path, path: str, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes:
    """The content of the regular file ``path``."""
    parts = split_path(path)
    if not parts:
        raise InvalidParameters("download_single needs a file, not the session's folder")
    try:
        with _opened(workdir, parts, directory=False) as fd:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise InvalidParameters(f"{container_path(parts)} is not a regular file")
            return _read(fd, info.st_size, max_bytes, container_path(parts))
    except OSError as exc:
        raise InvalidParameters(_why(container_path(parts), exc)) from None


def archive(workdir: Path, path: str, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes:
    """A tar archive of ``path`` (a file, or a folder with its files), named by its basename."""
    parts = split_path(path)
    name = parts[-1] if parts else Path(WORK_HOME).name
    budget = _Budget(max_bytes)
    buffer = io.BytesIO()
    try:
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            with _opened(workdir, parts, directory=None) as fd:
                info = os.fstat(fd)
                if stat.S_ISDIR(info.st_mode):
                    _add_dir(tar, fd, name, info, budget, 0)
                elif stat.S_ISREG(info.st_mode):
                    _add_file(tar, fd, name, info, budget)
                else:
                    raise InvalidParameters(f"{container_path(parts)} is not a file or folder")
    except OSError as exc:
        raise InvalidParameters(_why(container_path(parts), exc)) from None
    return buffer.getvalue()


# ---- internals ------------------------------------------------------------------------------


class _Budget:
    def __init__(self, max_bytes: int) -> None:
        self.bytes = max_bytes
        self.entries = MAX_ARCHIVED

    def take(self, size: int, what: str) -> None:
        self.entries -= 1
        if self.entries < 0:
            raise InvalidParameters(f"a download holds at most {MAX_ARCHIVED} entries")
        self.bytes -= size
        if self.bytes < 0:
            raise InvalidParameters(f"{what}: a download carries at most {_mib()} MiB")


def _mib() -> int:
    return MAX_DOWNLOAD_BYTES // (1024 * 1024)


@contextlib.contextmanager
def _opened(
    workdir: Path, parts: tuple[str, ...], *, directory: bool | None
) -> Generator[int, None, None]:
    """An fd of ``workdir/parts`` reached without following any link.

    ``directory``: True a folder, False a file (opened non-blocking: a FIFO cannot hang us),
    None either.
    """
    fd = os.open(workdir, _DIR_FLAGS)
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            flags = _DIR_FLAGS if not last or directory else _FILE_FLAGS
            next_fd = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        yield fd
    finally:
        os.close(fd)


def _info(name: str, info: os.stat_result) -> FileInfo:
    return FileInfo(
        filename=name,
        mode=stat.filemode(info.st_mode),
        size=info.st_size,
        ctime=info.st_ctime,
        mtime=info.st_mtime,
        atime=info.st_atime,
    )


def _read(fd: int, size: int, max_bytes: int, what: str) -> bytes:
    if size > max_bytes:
        raise InvalidParameters(f"{what} is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    total = 0
    while chunk := os.read(fd, 1024 * 1024):
        total += len(chunk)
        if total > max_bytes:  # grew while read
            raise InvalidParameters(f"{what} is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _tarinfo(name: str, info: os.stat_result, kind: bytes) -> tarfile.TarInfo:
    item = tarfile.TarInfo(name)
    item.type = kind
    item.mode = stat.S_IMODE(info.st_mode)
    item.mtime = int(info.st_mtime)
    return item


def _add_file(
    tar: tarfile.TarFile, fd: int, name: str, info: os.stat_result, budget: _Budget
) -> None:
    budget.take(info.st_size, name)
    data = _read(fd, info.st_size, info.st_size + budget.bytes, name)
    item = _tarinfo(name, info, tarfile.REGTYPE)
    item.size = len(data)
    tar.addfile(item, io.BytesIO(data))


def _add_dir(
    tar: tarfile.TarFile, fd: int, name: str, info: os.stat_result, budget: _Budget, depth: int
) -> None:
    if depth > MAX_DEPTH:
        raise InvalidParameters(f"{name}: folders nest at most {MAX_DEPTH} deep in a download")
    budget.take(0, name)
    tar.addfile(_tarinfo(name, info, tarfile.DIRTYPE))
    with os.scandir(fd) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        child = f"{name}/{entry.name}"
        try:
            entry_info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(entry_info.st_mode):
            flags = _DIR_FLAGS
        elif stat.S_ISREG(entry_info.st_mode):
            flags = _FILE_FLAGS
        else:
            continue  # links, FIFOs, sockets, devices: not downloaded
        try:
            child_fd = os.open(entry.name, flags, dir_fd=fd)
        except OSError:
            continue  # replaced meanwhile (e.g. by a link): skipped
        try:
            child_info = os.fstat(child_fd)
            if stat.S_ISDIR(child_info.st_mode):
                _add_dir(tar, child_fd, child, child_info, budget, depth + 1)
            elif stat.S_ISREG(child_info.st_mode):
                _add_file(tar, child_fd, child, child_info, budget)
        finally:
            os.close(child_fd)


def _why(abspath: str, exc: OSError) -> str:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return f"{abspath}: not reachable without following a link or through a file"
    reason = exc.strerror or type(exc).__name__
    return f"[Errno {exc.errno}] {reason}: {abspath!r}"
