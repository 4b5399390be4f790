"""Safe uploads into a kernel's work dir, and the list of files a run left in ``.output``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from sorna_sdk.local.errors import InvalidUpload

__all__ = [
    "OUTPUT_DIR",
    "check_upload_name",
    "new_output_files",
    "output_snapshot",
    "write_uploads",
]

OUTPUT_DIR = ".output"

Snapshot = dict[str, tuple[int, int]]


def check_upload_name(workdir: Path, name: str) -> Path:
    """Return the resolved destination of ``name`` under ``workdir`` (already resolved)."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise InvalidUpload(f"invalid upload file name {name!r}")
    rel = PurePosixPath(name.replace("\\", "/"))
    if rel.is_absolute() or name.startswith(("/", "\\")):
        raise InvalidUpload(f"upload file name {name!r} must be relative")
    raw_parts = name.replace("\\", "/").split("/")
    if ".." in raw_parts or "" in raw_parts or not rel.parts:
        raise InvalidUpload(f"upload file name {name!r} has an empty or '..' part")
    dest = (workdir / rel).resolve()
    if dest == workdir or not dest.is_relative_to(workdir):
        raise InvalidUpload(f"upload file name {name!r} resolves outside the work dir")
    return dest


def write_uploads(
    workdir: Path, files: Sequence[tuple[str, bytes]], *, max_files: int, max_bytes: int
) -> None:
    """Check every file first, then write them; nothing is written outside ``workdir``."""
    if len(files) > max_files:
        raise InvalidUpload(f"too many files: {len(files)} (at most {max_files})")
    targets: list[tuple[str, bytes]] = []
    for name, data in files:
        check_upload_name(workdir, name)
        if len(data) > max_bytes:
            raise InvalidUpload(
                f"upload {name!r} is too big: {len(data)} bytes (at most {max_bytes})"
            )
        targets.append((name, data))
    _check_conflicts(workdir, [name for name, _ in targets])
    for name, data in targets:
        rel = PurePosixPath(name.replace("\\", "/"))
        try:
            (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidUpload(f"cannot write upload {name!r}: {exc.strerror}") from exc
        # Re-check after mkdir: a directory may have been swapped for a symlink meanwhile.
        dest = check_upload_name(workdir, name)
        if not dest.parent.is_relative_to(workdir):
            raise InvalidUpload(f"upload file name {name!r} resolves outside the work dir")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(dest, flags, 0o644)
        except OSError as exc:
            raise InvalidUpload(f"cannot write upload {name!r}: {exc.strerror}") from exc
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)


def _check_conflicts(workdir: Path, names: Sequence[str]) -> None:
    """Refuse, before anything is written, names that cannot all become regular files.

    A name that is also a parent directory of another name in the same upload, a parent that
    exists as a non-directory, or a destination that exists as a directory.
    """
    rels = {name: PurePosixPath(name.replace("\\", "/")) for name in names}
    files = {rel: name for name, rel in rels.items()}
    for name, rel in rels.items():
        for parent in rel.parents:
            if parent == PurePosixPath("."):
                continue
            if parent in files:
                raise InvalidUpload(
                    f"upload {files[parent]!r} conflicts with {name!r}: a file cannot be a folder"
                )
            path = workdir / parent
            if path.exists() and not path.is_dir():
                raise InvalidUpload(
                    f"upload {name!r} conflicts with the existing file {parent.as_posix()!r}"
                )
        if (workdir / rel).is_dir():
            raise InvalidUpload(f"upload {name!r} conflicts with an existing folder")


def output_snapshot(workdir: Path) -> Snapshot:
    """Relative path -> (mtime_ns, size) of every regular file under ``workdir/.output``."""
    root = workdir / OUTPUT_DIR
    found: Snapshot = {}
    if not root.is_dir():
        return found
    for dirpath, _dirs, names in os.walk(root):
        for fname in names:
            path = Path(dirpath) / fname
            try:
                stat = path.lstat()
            except OSError:
                continue
            found[path.relative_to(root).as_posix()] = (stat.st_mtime_ns, stat.st_size)
    return found


def new_output_files(workdir: Path, before: Snapshot) -> list[str]:
    """Names of files in ``.output`` that are new or changed since ``before``."""
    after = output_snapshot(workdir)
    return sorted(name for name, sig in after.items() if before.get(name) != sig)
