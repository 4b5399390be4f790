"""Files and logs through the Backend.AI dialect: upload, list, download, traversal refused."""

from __future__ import annotations

from pathlib import Path

import pytest

import sorna_sdk
from sorna_sdk import FileList, Kernel, Session

from .conftest import unique

pytestmark = pytest.mark.timeout(60)

BLOB = bytes(range(256)) * 4
PROBS = "https://api.backend.ai/probs/"


def test_upload_list_and_download(session: Session, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"alpha\n")
    (src / "sub" / "b.bin").write_bytes(BLOB)
    with Kernel.get_or_create("python", unique("files"), session=session) as kern:
        kern.upload(["a.txt", "sub/b.bin"], base_dir=src)
        listing = kern.list_files(".")
        assert isinstance(listing, FileList)
        entries = {entry.filename: entry for entry in listing.files}
        assert entries["a.txt"].size == 6 and not entries["a.txt"].is_dir
        assert entries["sub"].is_dir
        sub = kern.list_files("sub")
        assert [(e.filename, e.size) for e in sub.files] == [("b.bin", len(BLOB))]
        # The kernel sees them in its working folder.
        seen = kern.execute(
            "print(open('a.txt').read(), end='')\nprint(len(open('sub/b.bin', 'rb').read()))"
        )
        assert seen.stdout == f"alpha\n{len(BLOB)}\n"

        assert kern.download_single("a.txt") == b"alpha\n"
        # Absolute paths are as the session sees them: under /home/work.
        assert kern.download_single("/home/work/a.txt") == b"alpha\n"
        assert "a.txt" in {e.filename for e in kern.list_files("/home/work").files}
        assert kern.download_single("sub/b.bin") == BLOB
        dest = tmp_path / "dest"
        written = kern.download(["a.txt", "sub"], dest)
        assert (dest / "a.txt").read_bytes() == b"alpha\n"
        assert (dest / "sub" / "b.bin").read_bytes() == BLOB
        assert {p.resolve() for p in written if p.is_file()} == {
            (dest / "a.txt").resolve(),
            (dest / "sub" / "b.bin").resolve(),
        }


def test_files_the_kernel_writes_are_listed_and_downloadable(session: Session) -> None:
    with Kernel.get_or_create("python", unique("made"), session=session) as kern:
        kern.execute(
            "import os\nos.makedirs('out', exist_ok=True)\nopen('out/r.csv', 'w').write('1,2\\n')"
        )
        assert "out" in {e.filename for e in kern.list_files().files}
        (entry,) = kern.list_files("out").files
        assert (entry.filename, entry.size) == ("r.csv", 4)
        assert kern.download_single("out/r.csv") == b"1,2\n"


def test_missing_file_is_a_typed_4xx(session: Session, tmp_path: Path) -> None:
    with Kernel.get_or_create("python", unique("missing"), session=session) as kern:
        for call in (
            lambda: kern.download_single("no-such-file.txt"),
            lambda: kern.list_files("no-such-folder"),
            lambda: kern.download(["no-such-file.txt"], tmp_path),
        ):
            try:
                outcome = call()
            except sorna_sdk.APIStatusError as exc:
                assert 400 <= exc.status < 500, exc
                assert exc.type.startswith(PROBS), exc
            else:
                # A listing may report it in its errors field instead, as Backend.AI's does.
                assert isinstance(outcome, FileList) and outcome.errors, outcome


ESCAPES = ["../escape.txt", "/etc/passwd", "a/../../escape.txt", "sub/../../../etc/passwd"]


def _attempt(kern: Kernel, what: str, path: str, dest: Path) -> object:
    """One file operation on ``path``, through the SDK."""
    if what == "download_single":
        return kern.download_single(path)
    if what == "list_files":
        return kern.list_files(path)
    if what == "download":
        return kern.download([path], dest)
    return kern.session.send(kern.session.routes.upload(kern.kernel_id, [(path, b"pwned")]))


def test_paths_outside_the_work_dir_are_refused(session: Session, tmp_path: Path) -> None:
    wrong: list[str] = []
    dest = tmp_path / "dest"
    with Kernel.get_or_create("python", unique("escape"), session=session) as kern:
        for path in ESCAPES:
            for what in ("download_single", "list_files", "download", "upload"):
                try:
                    outcome = _attempt(kern, what, path, dest)
                except sorna_sdk.APIStatusError as exc:
                    if not 400 <= exc.status < 500 or not exc.type.startswith(PROBS):
                        wrong.append(f"{what}({path!r}): {exc}")
                    elif what == "upload" and not isinstance(exc, sorna_sdk.InvalidAPIParamsError):
                        wrong.append(f"{what}({path!r}): {type(exc).__name__} {exc}")
                else:
                    wrong.append(f"{what}({path!r}) was not refused: {str(outcome)[:120]}")
        assert not dest.exists() or not any(dest.rglob("*"))
        listing = kern.execute("import os\nprint(sorted(os.listdir('..')))")
        assert "escape.txt" not in listing.stdout
        assert kern.execute("print('still fine')").stdout == "still fine\n"
    assert not wrong, "\n".join(wrong)


def test_links_and_fifos_are_never_followed(session: Session, tmp_path: Path) -> None:
    with Kernel.get_or_create("python", unique("links"), session=session) as kern:
        made = kern.execute(
            "import os\nos.symlink('/etc/passwd', 'link')\nos.symlink('..', 'up')\n"
            "os.mkfifo('pipe')\nopen('plain.txt', 'w').write('plain')\nprint('made')"
        )
        assert made.stdout == "made\n"
        for path in ("link", "up/escape.txt", "pipe"):
            with pytest.raises(sorna_sdk.APIStatusError) as info:
                kern.download_single(path)
            assert 400 <= info.value.status < 500, (path, info.value)
        # A listing reports it in its errors field, as Backend.AI's agents do.
        through_link = kern.list_files("up")
        assert through_link.files == [] and through_link.errors, through_link
        written = kern.download(["."], tmp_path / "all")
        names = {p.name for p in written}
        assert "plain.txt" in names
        assert not names & {"link", "up", "pipe"}, names
        assert not any(p.is_symlink() for p in (tmp_path / "all").rglob("*"))


def test_upload_limits(session: Session) -> None:
    with Kernel.get_or_create("python", unique("limits"), session=session) as kern:
        too_many = [(f"f{i}.txt", b"x") for i in range(21)]
        with pytest.raises(sorna_sdk.InvalidAPIParamsError):
            session.send(session.routes.upload(kern.kernel_id, too_many))
        too_big = [("big.bin", b"x" * (1024 * 1024 + 1))]
        with pytest.raises(sorna_sdk.InvalidAPIParamsError):
            session.send(session.routes.upload(kern.kernel_id, too_big))
        assert "big.bin" not in {e.filename for e in kern.list_files().files}


def test_logs_hold_what_the_kernel_printed(session: Session) -> None:
    with Kernel.get_or_create("python", unique("logs"), session=session) as kern:
        kern.execute("print('log-marker-' + str(6 * 7))")
        kern.execute("import sys\nprint('err-marker-' + str(7 * 8), file=sys.stderr)")
        logs = kern.logs()
        assert isinstance(logs, str)
        assert "log-marker-42" in logs
        assert "err-marker-56" in logs
