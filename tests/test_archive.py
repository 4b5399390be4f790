"""Unpacking session downloads: multipart/mixed splitting and safe tar extraction."""

from __future__ import annotations

import asyncio
import io
import os
import stat
import tarfile
from pathlib import Path

import aiohttp
import pytest

from sorna_sdk._archive import ArchiveError, ExtractLimits, extract_tar, split_multipart_mixed

Entry = tuple[tarfile.TarInfo, bytes | None]

# ----------------------------------------------------------------------------- multipart/mixed


class _Sink:
    """The smallest stream writer MultipartWriter.write needs: it collects the bytes."""

    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, chunk: bytes) -> None:
        self.data += chunk


async def _serialise(payloads: list[bytes]) -> tuple[str, bytes, str]:
    """A body as aiohttp's server writes it: (Content-Type, body, boundary)."""
    writer = aiohttp.MultipartWriter("mixed")
    for payload in payloads:
        writer.append(
            payload,
            {"Content-Encoding": "identity", "Content-Type": "application/octet-stream"},
        )
    sink = _Sink()
    await writer.write(sink)  # type: ignore[arg-type]
    return writer.headers["Content-Type"], bytes(sink.data), writer.boundary


async def test_aiohttp_parts_come_back_byte_identical() -> None:
    first = b"\r\n--" + b"\r" + b"\n" + os.urandom(4096) + b"\r\n"
    second = b"\n--\r\n\r\n" + os.urandom(8192) + b"\r"
    content_type, body, _ = await _serialise([first, second])
    assert content_type.startswith("multipart/mixed; boundary=")
    assert split_multipart_mixed(content_type, body) == [first, second]


async def test_a_line_that_only_starts_with_the_boundary_is_payload() -> None:
    writer = aiohttp.MultipartWriter("mixed")
    tricky = b"a\r\n--" + writer.boundary.encode() + b"X\r\nb"
    writer.append(tricky, {"Content-Encoding": "identity"})
    writer.append(b"", {"Content-Encoding": "identity"})
    sink = _Sink()
    await writer.write(sink)  # type: ignore[arg-type]
    assert split_multipart_mixed(writer.headers["Content-Type"], bytes(sink.data)) == [tricky, b""]


def test_tar_archives_survive_the_multipart_round_trip(tmp_path: Path) -> None:
    one = _tar(_file("one.txt", b"first"))
    two = _tar(_file("two/bin", os.urandom(1000), mode=0o755), compression="gz")
    content_type, body, _ = asyncio.run(_serialise([one, two]))
    parts = split_multipart_mixed(content_type, body)
    assert parts == [one, two]
    written = [path for part in parts for path in extract_tar(part, tmp_path)]
    assert written == [tmp_path.resolve() / "one.txt", tmp_path.resolve() / "two" / "bin"]
    assert (tmp_path / "one.txt").read_bytes() == b"first"


async def test_missing_close_delimiter_is_refused() -> None:
    content_type, body, boundary = await _serialise([b"payload"])
    truncated = body[: body.rindex(b"--" + boundary.encode() + b"--")]
    with pytest.raises(ArchiveError, match="close delimiter"):
        split_multipart_mixed(content_type, truncated)
    with pytest.raises(ArchiveError, match="close delimiter"):
        split_multipart_mixed(content_type, body[: len(body) // 2])


def test_quoted_boundary_and_case_insensitive_type() -> None:
    body = (
        b"--a b:c?\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n"
        b"--a b:c?\r\n\r\ny\r\n--a b:c?--\r\n"
    )
    assert split_multipart_mixed('Multipart/MIXED; BOUNDARY="a b:c?"', body) == [b"x", b"y"]
    escaped = b'--q"b\r\n\r\nz\r\n--q"b--'
    assert split_multipart_mixed(r'multipart/mixed; charset=x; boundary="q\"b"', escaped) == [b"z"]


def test_bare_lf_delimiters_are_tolerated() -> None:
    body = b"--xyz\nContent-Encoding: binary\n\none\r\n\n--xyz\n\ntwo\n--xyz--\n"
    assert split_multipart_mixed("multipart/mixed; boundary=xyz", body) == [b"one\r\n", b"two"]


def test_preamble_epilogue_and_transport_padding_are_ignored() -> None:
    body = (
        b"This is a preamble.\r\n--xyzzy is not a delimiter\r\n"
        b"--xyz  \r\nContent-Transfer-Encoding: 8bit\r\n\r\npayload\r\n"
        b"--xyz-- \t\r\nepilogue\r\n--xyz\r\n\r\nnot a part\r\n"
    )
    assert split_multipart_mixed("multipart/mixed; boundary=xyz", body) == [b"payload"]


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data; boundary=xyz",
        "application/octet-stream",
        "multipart/mixed",
        "multipart/mixed; boundary=",
        'multipart/mixed; boundary=""',
        "multipart/mixed; boundary=" + "x" * 71,
        "multipart/mixed; boundary=a; boundary=b",
    ],
)
def test_bad_content_types_are_refused(content_type: str) -> None:
    with pytest.raises(ArchiveError):
        split_multipart_mixed(content_type, b"--xyz\r\n\r\nx\r\n--xyz--\r\n")


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Content-Transfer-Encoding", "base64"),
        ("Content-Encoding", "gzip"),
        ("Content-Transfer-Encoding", "quoted-printable"),
    ],
)
def test_non_identity_encodings_are_refused_by_name(header: str, value: str) -> None:
    body = f"--xyz\r\n{header}: {value}\r\n\r\neA==\r\n--xyz--\r\n".encode()
    with pytest.raises(ArchiveError, match=value):
        split_multipart_mixed("multipart/mixed; boundary=xyz", body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "no boundary delimiter"),
        (b"preamble only\r\n", "no boundary delimiter"),
        (b"--xyz--\r\n", "no parts"),
        (b"--xyz\r\nContent-Type: text/plain\r\n--xyz--\r\n", "no blank line"),
        (b"--xyz\r\nno colon here\r\n\r\nx\r\n--xyz--\r\n", "malformed header"),
        (b"--xyz\r\nContent-Length: 5\r\n\r\nabc\r\n--xyz--\r\n", "Content-Length"),
    ],
)
def test_malformed_bodies_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(ArchiveError, match=message):
        split_multipart_mixed("multipart/mixed; boundary=xyz", body)


# ----------------------------------------------------------------------------- tar building


def _file(name: str, data: bytes = b"", *, mode: int = 0o644) -> Entry:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, data


def _dir(name: str, *, mode: int = 0o755) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    return info, None


def _link(name: str, target: str, *, hard: bool = False) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info, None


def _special(name: str, kind: bytes) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info, None


def _tar(*entries: Entry, compression: str = "") -> bytes:
    buffer = io.BytesIO()
    mode = f"w:{compression}" if compression else "w"
    with tarfile.open(fileobj=buffer, mode=mode, format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    folder = tmp_path / "dest"
    folder.mkdir()
    return folder


def _tree(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


# ----------------------------------------------------------------------------- extraction


def test_plain_file(dest: Path) -> None:
    written = extract_tar(_tar(_file("hello.txt", b"hi\n")), dest)
    assert written == [dest / "hello.txt"]
    assert (dest / "hello.txt").read_bytes() == b"hi\n"


def test_nested_dirs_dot_prefixes_and_archive_order(dest: Path) -> None:
    data = _tar(
        _dir("./top/"),
        _dir("./top/sub"),
        _file("./top/sub/f.bin", b"\x00\x01"),
        _file("top/g", b"g"),
    )
    written = extract_tar(data, dest)
    assert written == [dest / "top", dest / "top/sub", dest / "top/sub/f.bin", dest / "top/g"]
    assert (dest / "top/sub/f.bin").read_bytes() == b"\x00\x01"
    assert _tree(dest) == ["top", "top/g", "top/sub", "top/sub/f.bin"]


def test_missing_parents_are_created_but_not_listed(dest: Path) -> None:
    written = extract_tar(_tar(_file("a/b/c.txt", b"c")), dest)
    assert written == [dest / "a/b/c.txt"]
    assert (dest / "a/b").is_dir()


def test_gzip_archive(dest: Path) -> None:
    payload = os.urandom(50_000)
    written = extract_tar(_tar(_file("blob", payload), compression="gz"), dest)
    assert written == [dest / "blob"]
    assert (dest / "blob").read_bytes() == payload


def test_returned_paths_are_under_the_resolved_destination(tmp_path: Path, dest: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(dest)
    assert extract_tar(_tar(_file("f", b"x")), alias) == [dest.resolve() / "f"]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [(0o4755, 0o755), (0o2777, 0o755), (0o1644, 0o644), (0o000, 0o600), (0o444, 0o644)],
)
def test_file_permissions_are_masked(dest: Path, mode: int, expected: int) -> None:
    extract_tar(_tar(_file("f", b"x", mode=mode)), dest)
    assert stat.S_IMODE((dest / "f").stat().st_mode) == expected


@pytest.mark.parametrize(("mode", "expected"), [(0o2775, 0o775 & 0o755), (0o500, 0o700)])
def test_directory_permissions_are_masked(dest: Path, mode: int, expected: int) -> None:
    extract_tar(_tar(_dir("d", mode=mode), _file("d/f", b"x")), dest)
    assert stat.S_IMODE((dest / "d").stat().st_mode) == expected
    assert (dest / "d/f").read_bytes() == b"x"


@pytest.mark.parametrize("name", ["../x", "a/../../x", "a/../b", "..", "./../x"])
def test_upward_names_are_refused(tmp_path: Path, dest: Path, name: str) -> None:
    with pytest.raises(ArchiveError, match=r"'\.\.'"):
        extract_tar(_tar(_file("ok", b"ok"), _file(name, b"evil")), dest)
    assert not (tmp_path / "x").exists()
    assert _tree(dest) == []  # names are all checked before anything is written


def test_absolute_names_are_refused(tmp_path: Path, dest: Path) -> None:
    outside = tmp_path / "outside.txt"
    with pytest.raises(ArchiveError, match="absolute"):
        extract_tar(_tar(_file(str(outside), b"evil")), dest)
    assert not outside.exists()


@pytest.mark.parametrize("name", [".", "./", "./."])
def test_empty_names_are_refused(dest: Path, name: str) -> None:
    with pytest.raises(ArchiveError, match="empty"):
        extract_tar(_tar(_file(name, b"x")), dest)


def test_nul_bytes_in_names_are_refused(dest: Path) -> None:
    info, data = _file("x", b"x")
    info.pax_headers = {"path": "a\x00b"}
    with pytest.raises(ArchiveError, match="NUL"):
        extract_tar(_tar((info, data)), dest)
    assert _tree(dest) == []


def test_symlink_to_etc_then_a_file_under_it(dest: Path) -> None:
    with pytest.raises(ArchiveError, match="absolute target"):
        extract_tar(
            _tar(_link("link", "/etc"), _file("link/passwd", b"root::0:0::/:/bin/sh")), dest
        )
    assert not os.path.lexists(dest / "link")


def test_no_file_is_written_through_an_archive_symlink(dest: Path) -> None:
    data = _tar(_dir("real"), _link("link", "real"), _file("link/f", b"x"))
    with pytest.raises(ArchiveError, match="through the symlink"):
        extract_tar(data, dest)
    assert os.readlink(dest / "link") == "real"
    assert not (dest / "real/f").exists()


@pytest.mark.parametrize("target", ["/etc/passwd", "/"])
def test_symlinks_with_absolute_targets_are_refused(dest: Path, target: str) -> None:
    with pytest.raises(ArchiveError, match="absolute target"):
        extract_tar(_tar(_link("l", target)), dest)
    assert _tree(dest) == []


@pytest.mark.parametrize(
    ("name", "target"),
    [("l", "../x"), ("a/b/l", "../../.."), ("a/l", "../../dest-sibling"), ("l", "a/../../x")],
)
def test_escaping_symlinks_are_refused(dest: Path, name: str, target: str) -> None:
    with pytest.raises(ArchiveError, match="outside the destination"):
        extract_tar(_tar(_dir("a"), _dir("a/b"), _link(name, target)), dest)
    assert not os.path.lexists(dest / name)


def test_symlink_chains_cannot_escape(dest: Path) -> None:
    # d/up -> .. is the destination itself, so d/up2 -> up/.. would be its parent.
    data = _tar(_dir("d"), _link("d/up", ".."), _link("d/up2", "up/.."))
    with pytest.raises(ArchiveError, match="outside the destination"):
        extract_tar(data, dest)
    assert os.readlink(dest / "d/up") == ".."
    assert not os.path.lexists(dest / "d/up2")


def test_dotdot_through_a_path_a_later_member_could_redirect_is_refused(dest: Path) -> None:
    # a -> b/.. looks harmless while b is missing, but b -> . would make it dest/..
    data = _tar(_link("a", "b/.."), _link("b", "."))
    with pytest.raises(ArchiveError, match="does not exist yet"):
        extract_tar(data, dest)
    assert not os.path.lexists(dest / "a")


def test_relative_symlinks_inside_dest_are_created(dest: Path) -> None:
    data = _tar(
        _dir("pkg/bin"),
        _file("pkg/cli.js", b"js"),
        _link("pkg/bin/cli", "../cli.js"),
        _link("latest", "pkg"),
        _link("dangling", "not/yet/there"),
    )
    written = extract_tar(data, dest)
    assert written == [
        dest / "pkg/bin",
        dest / "pkg/cli.js",
        dest / "pkg/bin/cli",
        dest / "latest",
        dest / "dangling",
    ]
    assert os.readlink(dest / "pkg/bin/cli") == "../cli.js"
    assert (dest / "pkg/bin/cli").read_bytes() == b"js"
    assert (dest / "latest").resolve() == (dest / "pkg").resolve()
    assert os.readlink(dest / "dangling") == "not/yet/there"


def test_hard_link_copies_an_extracted_file(dest: Path) -> None:
    data = _tar(_file("orig", b"shared", mode=0o750), _link("copy", "orig", hard=True))
    written = extract_tar(data, dest)
    assert written == [dest / "orig", dest / "copy"]
    assert (dest / "copy").read_bytes() == b"shared"
    assert stat.S_IMODE((dest / "copy").stat().st_mode) == 0o750
    assert (dest / "copy").stat().st_ino != (dest / "orig").stat().st_ino


@pytest.mark.parametrize("target", ["elsewhere", "/etc/passwd", "../x", "later"])
def test_hard_links_to_files_not_extracted_before_are_refused(dest: Path, target: str) -> None:
    data = _tar(_link("h", target, hard=True), _file("later", b"x"))
    with pytest.raises(ArchiveError):
        extract_tar(data, dest)
    assert _tree(dest) == []


def test_preexisting_symlinked_directory_in_dest_is_not_followed(
    tmp_path: Path, dest: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (dest / "out").symlink_to(outside)
    with pytest.raises(ArchiveError, match="through the symlink"):
        extract_tar(_tar(_file("out/evil", b"evil")), dest)
    assert list(outside.iterdir()) == []


def test_preexisting_symlinked_file_in_dest_is_not_written_through(
    tmp_path: Path, dest: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"unchanged")
    (dest / "f").symlink_to(secret)
    for entry in (_file("f", b"evil"), _dir("f"), _link("f", "g")):
        with pytest.raises(ArchiveError, match="through the symlink"):
            extract_tar(_tar(entry), dest)
    assert secret.read_bytes() == b"unchanged"
    assert os.readlink(dest / "f") == str(secret)


def test_overwriting_replaces_the_file_instead_of_writing_into_it(
    tmp_path: Path, dest: Path
) -> None:
    other = tmp_path / "other-name"
    other.write_bytes(b"old")
    os.link(other, dest / "f")  # a hard link elsewhere must not see the new content
    assert extract_tar(_tar(_file("f", b"new")), dest) == [dest / "f"]
    assert (dest / "f").read_bytes() == b"new"
    assert other.read_bytes() == b"old"


def test_a_later_duplicate_overwrites_and_both_are_listed(dest: Path) -> None:
    written = extract_tar(_tar(_file("f", b"one"), _file("f", b"two")), dest)
    assert written == [dest / "f", dest / "f"]
    assert (dest / "f").read_bytes() == b"two"


def test_existing_directories_may_be_listed_again(dest: Path) -> None:
    (dest / "d").mkdir()
    assert extract_tar(_tar(_dir("d"), _dir("d/"), _file("d/f", b"x")), dest)[-1] == dest / "d/f"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ((_dir("a"), _file("a", b"x")), "replace a directory"),
        ((_file("a", b"x"), _dir("a")), "replace a file"),
        ((_file("a", b"x"), _file("a/b", b"y")), "not a directory"),
        ((_dir("a"), _link("a", "b")), "replace a directory"),
    ],
)
def test_files_and_directories_do_not_replace_each_other(
    dest: Path, entries: tuple[Entry, ...], message: str
) -> None:
    with pytest.raises(ArchiveError, match=message):
        extract_tar(_tar(*entries), dest)
    assert (dest / "a").exists()


def test_fifos_and_devices_are_skipped(dest: Path) -> None:
    data = _tar(
        _special("pipe", tarfile.FIFOTYPE),
        _special("dev/zero", tarfile.CHRTYPE),
        _special("dev/sda", tarfile.BLKTYPE),
        _file("ok", b"ok"),
    )
    assert extract_tar(data, dest) == [dest / "ok"]
    assert _tree(dest) == ["ok"]


def test_too_many_members(dest: Path) -> None:
    data = _tar(_file("a"), _file("b"), _special("c", tarfile.FIFOTYPE))
    with pytest.raises(ArchiveError, match="more than 2 members"):
        extract_tar(data, dest, limits=ExtractLimits(max_members=2))
    assert _tree(dest) == []
    assert len(extract_tar(data, dest, limits=ExtractLimits(max_members=3))) == 2


def test_total_size_over_max_bytes_writes_nothing(dest: Path) -> None:
    data = _tar(_file("a", b"x" * 6), _dir("d"), _file("d/b", b"y" * 6))
    with pytest.raises(ArchiveError, match="exceed 10 bytes"):
        extract_tar(data, dest, limits=ExtractLimits(max_bytes=10))
    assert _tree(dest) == []
    assert len(extract_tar(data, dest, limits=ExtractLimits(max_bytes=12))) == 3


def test_hard_link_copies_count_towards_max_bytes(dest: Path) -> None:
    data = _tar(_file("a", b"x" * 6), _link("b", "a", hard=True))
    with pytest.raises(ArchiveError, match="exceed 10 bytes"):
        extract_tar(data, dest, limits=ExtractLimits(max_bytes=10))
    assert _tree(dest) == []


def test_chunked_copy_stops_a_member_with_more_data_than_its_header(
    dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _tar(_file("f", b"x" * 10))
    monkeypatch.setattr(
        tarfile.TarFile, "extractfile", lambda self, member: io.BytesIO(b"x" * 1000)
    )
    with pytest.raises(ArchiveError, match="more than its declared 10 bytes"):
        extract_tar(data, dest)
    assert not (dest / "f").exists()  # the partial file is removed


def test_chunked_copy_refuses_a_short_member(dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _tar(_file("f", b"x" * 10))
    monkeypatch.setattr(tarfile.TarFile, "extractfile", lambda self, member: io.BytesIO(b"xx"))
    with pytest.raises(ArchiveError, match="truncated"):
        extract_tar(data, dest)
    assert not (dest / "f").exists()


@pytest.mark.parametrize(
    "data",
    [b"", b"definitely not a tar archive" * 40, b"\x1f\x8b\x08\x00garbage" + bytes(600)],
)
def test_unreadable_archives_are_refused(dest: Path, data: bytes) -> None:
    with pytest.raises(ArchiveError, match="tar archive"):
        extract_tar(data, dest)


def test_a_corrupt_header_after_the_first_member_is_not_silently_the_end(dest: Path) -> None:
    data = bytearray(_tar(_file("a", b"a" * 10), _file("b", b"b" * 10)))
    second_header = 512 + 512  # header and one data block of "a"
    assert data[second_header : second_header + 1] == b"b"
    data[second_header + 148 : second_header + 156] = b"garbage!"  # the header checksum
    with pytest.raises(ArchiveError, match="corrupt"):
        extract_tar(bytes(data), dest)
    assert _tree(dest) == []


def test_truncated_archives_are_refused(dest: Path) -> None:
    plain = _tar(_file("a", os.urandom(5000)))
    with pytest.raises(ArchiveError, match=r"corrupt|truncated"):
        extract_tar(plain[:3000], dest)
    gz = _tar(_file("a", os.urandom(5000)), compression="gz")
    with pytest.raises(ArchiveError):
        extract_tar(gz[: len(gz) // 2], dest)
    assert not (dest / "a").exists()


def test_an_empty_archive_extracts_nothing(dest: Path) -> None:
    assert extract_tar(_tar(), dest) == []


def test_destination_must_be_an_existing_directory(tmp_path: Path) -> None:
    data = _tar(_file("f", b"x"))
    with pytest.raises(ArchiveError, match="does not exist"):
        extract_tar(data, tmp_path / "missing")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ArchiveError, match="not a directory"):
        extract_tar(data, tmp_path / "file")


def test_limits_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        ExtractLimits(max_bytes=-1)
