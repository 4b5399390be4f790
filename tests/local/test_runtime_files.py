"""Upload path checks and limits (files.py) and uploads through a real kernel."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sorna_sdk.local._runtime.errors import InvalidUpload
from sorna_sdk.local._runtime.files import write_uploads
from sorna_sdk.local._runtime.registry import KernelRegistry, RuntimeSettings


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    wd = tmp_path / "wd"
    wd.mkdir()
    (tmp_path / "outside").mkdir()
    return wd.resolve()


def upload(
    workdir: Path, *files: tuple[str, bytes], max_files: int = 5, max_bytes: int = 100
) -> None:
    write_uploads(workdir, list(files), max_files=max_files, max_bytes=max_bytes)


def test_nested_upload_is_written(workdir: Path) -> None:
    upload(workdir, ("a/b/c.txt", b"deep"), ("top.txt", b"top"))
    assert (workdir / "a" / "b" / "c.txt").read_bytes() == b"deep"
    assert (workdir / "top.txt").read_bytes() == b"top"


@pytest.mark.parametrize(
    "name",
    ["../escape.txt", "a/../../escape.txt", "/etc/escape.txt", "", "nul\x00.txt", ".", "a//b"],
)
def test_bad_names_are_rejected(workdir: Path, name: str) -> None:
    with pytest.raises(InvalidUpload) as info:
        upload(workdir, ("ok.txt", b"x"), (name, b"x"))
    assert repr(name) in info.value.title
    assert info.value.status == 400
    # Checks happen before any write: the good file of the same request is not written either.
    assert not (workdir / "ok.txt").exists()
    assert not (workdir.parent / "escape.txt").exists()


def test_symlinked_directory_escape_is_rejected(workdir: Path) -> None:
    (workdir / "link").symlink_to(workdir.parent / "outside")
    with pytest.raises(InvalidUpload, match="outside the work dir"):
        upload(workdir, ("link/pwned.txt", b"x"))
    assert list((workdir.parent / "outside").iterdir()) == []


def test_symlinked_file_escape_is_rejected(workdir: Path) -> None:
    target = workdir.parent / "outside" / "victim.txt"
    target.write_bytes(b"original")
    (workdir / "victim.txt").symlink_to(target)
    with pytest.raises(InvalidUpload):
        upload(workdir, ("victim.txt", b"overwritten"))
    assert target.read_bytes() == b"original"


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ([("a", b"1"), ("a/b", b"2")], "'a'"),
        ([("a/b/c", b"1"), ("a/b", b"2")], "'a/b'"),
        ([("a\\b", b"1"), ("a", b"2")], "'a'"),
        ([("ok.txt", b"1"), ("f/g", b"2")], "'f'"),  # f exists as a regular file
        ([("ok.txt", b"1"), ("f/g/h", b"2")], "'f'"),
        ([("ok.txt", b"1"), ("d", b"2")], "'d'"),  # d exists as a folder
    ],
)
def test_conflicting_names_are_rejected_before_anything_is_written(
    workdir: Path, files: list[tuple[str, bytes]], needle: str
) -> None:
    (workdir / "f").write_bytes(b"mine")
    (workdir / "d").mkdir()
    before = sorted(p.relative_to(workdir) for p in workdir.rglob("*"))
    with pytest.raises(InvalidUpload) as info:
        upload(workdir, *files)
    assert needle in str(info.value)
    assert sorted(p.relative_to(workdir) for p in workdir.rglob("*")) == before
    assert (workdir / "f").read_bytes() == b"mine"


def test_os_errors_while_writing_are_invalid_uploads(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "mkdir", refuse)  # folders are made with os.mkdir(dir_fd=...)
    with pytest.raises(InvalidUpload, match="Permission denied"):
        upload(workdir, ("sub/x.txt", b"1"))


def test_too_many_and_too_big(workdir: Path) -> None:
    with pytest.raises(InvalidUpload, match="too many files"):
        upload(workdir, *[(f"f{i}.txt", b"x") for i in range(6)])
    with pytest.raises(InvalidUpload, match=r"big\.bin"):
        upload(workdir, ("big.bin", b"x" * 101))
    assert os.listdir(workdir) == []


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[KernelRegistry]:
    settings = RuntimeSettings(root=tmp_path / "kernels", pool_size=0, max_upload_files=2)
    reg = KernelRegistry(settings)
    await reg.start()
    yield reg
    await reg.close()


async def test_kernel_upload_is_visible_to_code(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("owner", "token-1234", "python3")
    await kernel.upload([("data/in.txt", b"payload")])
    result = await kernel.execute("query", "print(open('data/in.txt').read())", None)
    assert result.console == [["stdout", "payload\n"]]
    with pytest.raises(InvalidUpload, match="too many"):
        await kernel.upload([("a", b""), ("b", b""), ("c", b"")])
