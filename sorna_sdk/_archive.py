"""Session downloads: split a multipart/mixed body and extract its tar archives safely.

A Backend.AI server answers a file download with one tar archive per requested path, each a
part of a ``multipart/mixed`` body. Kernel code is untrusted, so extraction refuses anything
that would land outside the destination folder or write through a symbolic link.
"""

from __future__ import annotations

import io
import os
import re
import stat
import tarfile
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

__all__ = ["ArchiveError", "ExtractLimits", "extract_tar", "split_multipart_mixed"]


class ArchiveError(ValueError):
    """A download could not be unpacked safely (the message says why)."""


# --------------------------------------------------------------------------- multipart/mixed

_IDENTITY_ENCODINGS: Final = frozenset({"identity", "binary", "7bit", "8bit"})
_TCHARS: Final = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAMETER: Final = re.compile(
    rf'\s*;\s*(?P<name>{_TCHARS})\s*=\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<plain>[^;\s"]+))\s*',
    re.DOTALL,
)
_MAX_BOUNDARY: Final = 70  # RFC 2046 §5.1.1
_DIGITS: Final = re.compile(r"[0-9]+")


def _boundary(content_type: str) -> bytes:
    media_type, _, rest = content_type.partition(";")
    if media_type.strip().lower() != "multipart/mixed":
        raise ArchiveError(f"expected a multipart/mixed body, got Content-Type {content_type!r}")
    boundary: str | None = None
    position = 0
    rest = ";" + rest if rest else ""
    while position < len(rest):
        match = _PARAMETER.match(rest, position)
        if match is None:
            if rest[position:].strip(" \t;") == "":
                break
            raise ArchiveError(f"malformed Content-Type parameters: {content_type!r}")
        position = match.end()
        if match["name"].lower() != "boundary":
            continue
        if boundary is not None:
            raise ArchiveError(f"Content-Type has two boundary parameters: {content_type!r}")
        quoted = match["quoted"]
        boundary = (
            re.sub(r"\\(.)", r"\1", quoted, flags=re.DOTALL)
            if quoted is not None
            else match["plain"]
        )
    if not boundary:
        raise ArchiveError(f"the multipart/mixed Content-Type has no boundary: {content_type!r}")
    if (
        len(boundary) > _MAX_BOUNDARY
        or not boundary.isascii()
        or "\r" in boundary
        or "\n" in boundary
    ):
        raise ArchiveError(f"invalid multipart boundary {boundary!r}")
    return boundary.encode("ascii")


def _find_delimiter(body: bytes, dash: bytes, start: int) -> tuple[int, int, bool] | None:
    """The next delimiter line at or after ``start``: (payload end, next part start, is close).

    A delimiter starts a line and is followed by optional transport padding and a line break
    (CRLF, or a bare LF); the line break before it belongs to it, not to the preceding payload.
    """
    search = start
    while True:
        index = body.find(dash, search)
        if index < 0:
            return None
        search = index + 1
        if index == 0:
            payload_end = 0
        elif body[index - 1] == 0x0A:  # "\n"
            crlf = index >= 2 and body[index - 2] == 0x0D
            payload_end = max(start, index - 2 if crlf else index - 1)
        else:
            continue  # not at the start of a line: payload bytes that merely look alike
        after = index + len(dash)
        close = body.startswith(b"--", after)
        if close:
            after += 2
        while after < len(body) and body[after] in b" \t":
            after += 1
        if after == len(body):
            if close:
                return payload_end, after, True
            continue
        if body.startswith(b"\r\n", after):
            return payload_end, after + 2, close
        if body[after] == 0x0A:
            return payload_end, after + 1, close


def _headers(part: bytes, number: int) -> tuple[dict[str, str], int]:
    """The headers of a body part (names lower-cased) and where its payload starts."""
    headers: dict[str, str] = {}
    last: str | None = None
    position = 0
    while True:
        newline = part.find(b"\n", position)
        if newline < 0:
            raise ArchiveError(f"part {number} has no blank line between headers and payload")
        line = part[position:newline].removesuffix(b"\r").decode("latin-1")
        position = newline + 1
        if not line:
            return headers, position
        if line[0] in " \t" and last is not None:  # an obsolete folded continuation line
            headers[last] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        name = name.strip().lower()
        if not colon or not name:
            raise ArchiveError(f"part {number} has a malformed header line {line!r}")
        headers[name] = value.strip()
        last = name


def _payload(part: bytes, number: int) -> bytes:
    headers, start = _headers(part, number)
    for header in ("content-transfer-encoding", "content-encoding"):
        encoding = headers.get(header)
        if encoding is not None and encoding.strip().lower() not in _IDENTITY_ENCODINGS:
            raise ArchiveError(f"part {number} has an unsupported {header.title()} {encoding!r}")
    payload = part[start:]
    length = headers.get("content-length")
    if length is not None and (not _DIGITS.fullmatch(length) or int(length) != len(payload)):
        raise ArchiveError(
            f"part {number} declares Content-Length {length!r} but carries {len(payload)} bytes"
        )
    return payload


def split_multipart_mixed(content_type: str, body: bytes) -> list[bytes]:
    """The payloads of a multipart/mixed body, in order."""
    dash = b"--" + _boundary(content_type)
    first = _find_delimiter(body, dash, 0)
    if first is None:
        raise ArchiveError("the multipart body has no boundary delimiter")
    _, position, close = first
    payloads: list[bytes] = []
    while not close:
        found = _find_delimiter(body, dash, position)
        if found is None:
            raise ArchiveError("the multipart body has no close delimiter (it may be truncated)")
        end, after, close = found
        payloads.append(_payload(body[position:end], len(payloads) + 1))
        position = after
    if not payloads:
        raise ArchiveError("the multipart body has no parts")
    return payloads


# --------------------------------------------------------------------------- tar extraction


@dataclass(frozen=True)
class ExtractLimits:
    """Bounds on what one :func:`extract_tar` call may write."""

    max_bytes: int = 1 << 30  # total size of regular-file contents
    max_members: int = 100_000

    def __post_init__(self) -> None:
        if self.max_bytes < 0 or self.max_members < 0:
            raise ValueError("extraction limits must not be negative")


_CHUNK: Final = 1 << 16
_MAX_LINK_HOPS: Final = 40
_FILE_FLAGS: Final[int] = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | os.O_TRUNC
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def _read_errors() -> tuple[type[Exception], ...]:
    errors: list[type[Exception]] = [tarfile.TarError, EOFError, OSError, zlib.error]
    try:
        import lzma
    except ImportError:  # pragma: no cover - Python built without lzma
        pass
    else:
        errors.append(lzma.LZMAError)
    return tuple(errors)


#: What a corrupt or truncated (possibly compressed) tar stream raises while being read.
_READ_ERRORS: Final = _read_errors()


def _parts(name: str, what: str) -> tuple[str, ...]:
    """The components of an archive path, refusing absolute, upward, empty and NUL names."""
    if "\x00" in name:
        raise ArchiveError(f"{what} {name!r} contains a NUL byte")
    if name.startswith("/"):
        raise ArchiveError(f"{what} {name!r} is an absolute path")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise ArchiveError(f"{what} {name!r} has a '..' component")
    if not parts:
        raise ArchiveError(f"{what} {name!r} is empty")
    return parts


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members of ``tar`` as read from its stream, turning read failures into ArchiveError."""
    while True:
        try:
            member = tar.next()
        except _READ_ERRORS as exc:
            raise ArchiveError(f"corrupt tar archive: {exc}") from exc
        if member is None:
            break
        yield member
    # tarfile treats a bad header after the first as the end of the archive; only accept an
    # end-of-archive zero block or the end of the data there, so corruption is not silent.
    stream = tar.fileobj
    assert stream is not None
    try:
        stream.seek(tar.offset)
        trailer = stream.read(tarfile.BLOCKSIZE)
    except _READ_ERRORS as exc:
        raise ArchiveError(f"corrupt tar archive: {exc}") from exc
    if trailer.strip(b"\x00"):
        raise ArchiveError(f"corrupt tar archive: invalid header at offset {tar.offset}")


@dataclass(frozen=True)
class _Planned:
    member: tarfile.TarInfo
    parts: tuple[str, ...]
    #: The regular member whose content a regular file or hard link is written from.
    source: tarfile.TarInfo | None


def _plan(tar: tarfile.TarFile, limits: ExtractLimits) -> list[_Planned]:
    """Read every header first, so bad names and broken limits are refused before any write."""
    planned: list[_Planned] = []
    regular: dict[tuple[str, ...], tarfile.TarInfo] = {}
    count = 0
    total = 0
    for member in _members(tar):
        count += 1
        if count > limits.max_members:
            raise ArchiveError(f"the archive has more than {limits.max_members} members")
        parts = _parts(member.name, "member name")
        source: tarfile.TarInfo | None = None
        if member.isreg():
            source = member
        elif member.islnk():
            source = regular.get(_parts(member.linkname, "hard link target"))
            if source is None:
                raise ArchiveError(
                    f"hard link {member.name!r} points at {member.linkname!r}, "
                    "which is not a file extracted earlier from this archive"
                )
        elif member.issym():
            _check_symlink_text(member)
        elif not member.isdir():
            continue  # devices, FIFOs and other special members are never written
        if source is None:
            regular.pop(parts, None)
        else:
            regular[parts] = source
            total += source.size
            if total > limits.max_bytes:
                raise ArchiveError(
                    f"the archive's files exceed {limits.max_bytes} bytes (at {member.name!r})"
                )
        planned.append(_Planned(member, parts, source))
    return planned


def _check_symlink_text(member: tarfile.TarInfo) -> None:
    target = member.linkname
    if not target or "\x00" in target:
        raise ArchiveError(f"symlink {member.name!r} has an invalid target {target!r}")
    if target.startswith("/"):
        raise ArchiveError(f"symlink {member.name!r} has an absolute target {target!r}")


def _is_within(path: str, root: Path) -> bool:
    root_text = str(root)
    return os.path.commonpath([root_text, path]) == root_text


def _prepare(root: Path, parts: tuple[str, ...], name: str) -> tuple[Path, os.stat_result | None]:
    """Create the missing parents of ``parts`` under ``root``, refusing any symlink on the way.

    Returns the target path and its ``lstat`` (``None`` when it does not exist).
    """
    current = root
    for part in parts[:-1]:
        current = current / part
        try:
            parent = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current, 0o755)
            continue
        if stat.S_ISLNK(parent.st_mode):
            raise ArchiveError(f"refusing to write {name!r} through the symlink {str(current)!r}")
        if not stat.S_ISDIR(parent.st_mode):
            raise ArchiveError(f"cannot write {name!r}: {str(current)!r} is not a directory")
    target = current / parts[-1]
    status: os.stat_result | None
    try:
        status = os.lstat(target)
    except FileNotFoundError:
        status = None
    if status is not None and stat.S_ISLNK(status.st_mode):
        raise ArchiveError(f"refusing to write {name!r} through the symlink {str(target)!r}")
    if not _is_within(os.path.realpath(target), root):  # cannot happen after the checks above
        raise ArchiveError(f"{name!r} resolves outside the destination")
    return target, status


def _check_symlink_target(root: Path, parent: tuple[str, ...], member: tarfile.TarInfo) -> None:
    """Refuse a symlink whose target, followed from its directory, could leave ``root``.

    The target is walked against the disk: existing symlinks are followed, and ``..`` is only
    taken from a directory that exists, since a later member could turn a missing component
    into a symlink and change where ``..`` leads.
    """
    refused = f"symlink {member.name!r} -> {member.linkname!r}"
    pending = deque(member.linkname.split("/"))
    current = list(parent)
    exists = True  # ``current`` names an existing directory, with no symlink in it
    hops = 0
    while pending:
        part = pending.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not current:
                raise ArchiveError(f"{refused} points outside the destination")
            if not exists:
                raise ArchiveError(f"{refused} goes up from a path that does not exist yet")
            current.pop()
            continue
        if exists:
            try:
                status = os.lstat(root.joinpath(*current, part))
            except (FileNotFoundError, NotADirectoryError):
                exists = False
            else:
                if stat.S_ISLNK(status.st_mode):
                    hops += 1
                    if hops > _MAX_LINK_HOPS:
                        raise ArchiveError(f"{refused} goes through too many symlinks")
                    text = os.readlink(root.joinpath(*current, part))
                    if text.startswith("/"):
                        raise ArchiveError(f"{refused} goes through an absolute symlink")
                    pending.extendleft(reversed(text.split("/")))
                    continue
                exists = stat.S_ISDIR(status.st_mode)
        current.append(part)
    if not _is_within(os.path.realpath(root.joinpath(*parent, member.linkname)), root):
        raise ArchiveError(f"{refused} points outside the destination")


def _file_mode(mode: int) -> int:
    return (mode & 0o755) | 0o600


def _dir_mode(mode: int) -> int:
    return 0o700 | (mode & 0o755)


class _Writer:
    """Writes planned members under ``root``, keeping the running byte count."""

    def __init__(self, tar: tarfile.TarFile, root: Path, limits: ExtractLimits) -> None:
        self._tar = tar
        self._root = root
        self._limits = limits
        self._written = 0
        #: Regular files this call has written, by archive path: hard links may copy them.
        self._files: dict[tuple[str, ...], tarfile.TarInfo] = {}

    def write(self, planned: _Planned) -> Path:
        member = planned.member
        target, status = _prepare(self._root, planned.parts, member.name)
        if planned.source is not None:
            self._write_file(planned, target, status)
        elif member.isdir():
            self._files.pop(planned.parts, None)
            if status is None:
                os.mkdir(target, 0o700)
            elif not stat.S_ISDIR(status.st_mode):
                raise ArchiveError(f"directory {member.name!r} would replace a file")
            os.chmod(target, _dir_mode(member.mode))
        else:
            self._files.pop(planned.parts, None)
            _check_symlink_target(self._root, planned.parts[:-1], member)
            self._replace_file(target, status, member.name)
            os.symlink(member.linkname, target)
        return target

    def _replace_file(self, target: Path, status: os.stat_result | None, name: str) -> None:
        """Unlink an existing regular file at ``target``; refuse directories and special files."""
        if status is None:
            return
        if stat.S_ISDIR(status.st_mode):
            raise ArchiveError(f"{name!r} would replace a directory")
        if not stat.S_ISREG(status.st_mode):
            raise ArchiveError(f"{name!r} would replace a special file")
        os.unlink(target)

    def _write_file(self, planned: _Planned, target: Path, status: os.stat_result | None) -> None:
        member, source = planned.member, planned.source
        assert source is not None
        if member.islnk() and self._files.get(_parts(member.linkname, "hard link")) is not source:
            raise ArchiveError(
                f"hard link {member.name!r} points at {member.linkname!r}, "
                "which this call did not extract"
            )
        if self._written + source.size > self._limits.max_bytes:
            raise ArchiveError(f"the archive's files exceed {self._limits.max_bytes} bytes")
        try:
            stream = self._tar.extractfile(source)
        except _READ_ERRORS as exc:
            raise ArchiveError(f"corrupt tar archive at {member.name!r}: {exc}") from exc
        if stream is None:  # pragma: no cover - isreg() members always have a stream
            raise ArchiveError(f"cannot read the content of {member.name!r}")
        self._replace_file(target, status, member.name)
        fd = os.open(target, _FILE_FLAGS, 0o600)
        try:
            self._copy(stream, fd, source)
            os.chmod(fd, _file_mode(source.mode))
        except BaseException:
            os.close(fd)
            os.unlink(target)  # no truncated or over-limit file is left behind
            raise
        os.close(fd)
        self._files[planned.parts] = source

    def _copy(self, stream: IO[bytes], fd: int, source: tarfile.TarInfo) -> None:
        """Stream the content in chunks, so a lying header cannot push past the limits."""
        copied = 0
        while True:
            try:
                chunk = stream.read(_CHUNK)
            except _READ_ERRORS as exc:
                raise ArchiveError(f"corrupt tar archive at {source.name!r}: {exc}") from exc
            if not chunk:
                break
            copied += len(chunk)
            if copied > source.size:
                raise ArchiveError(
                    f"{source.name!r} holds more than its declared {source.size} bytes"
                )
            if self._written + len(chunk) > self._limits.max_bytes:
                raise ArchiveError(f"the archive's files exceed {self._limits.max_bytes} bytes")
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
            self._written += len(chunk)
        if copied != source.size:
            raise ArchiveError(f"{source.name!r} is truncated ({copied} of {source.size} bytes)")


def _open_tar(data: bytes) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except _READ_ERRORS as exc:
        raise ArchiveError(f"not a readable tar archive: {exc}") from exc


def extract_tar(data: bytes, dest: Path, *, limits: ExtractLimits = ExtractLimits()) -> list[Path]:
    """Extract a tar archive under dest; return the paths written (files, dirs, links).

    The paths are absolute, under ``dest.resolve()``, one per extracted member in archive
    order; devices, FIFOs and other special members are skipped and not listed.
    """
    try:
        root = Path(dest).resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop before Python 3.13
        raise ArchiveError(f"the destination {str(dest)!r} does not exist") from exc
    if not root.is_dir():
        raise ArchiveError(f"the destination {str(dest)!r} is not a directory")
    with _open_tar(data) as tar:
        planned = _plan(tar, limits)
        writer = _Writer(tar, root, limits)
        return [writer.write(item) for item in planned]
