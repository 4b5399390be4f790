"""The README's and docs' Python examples type-check and, where self-contained, run."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mypy import api as mypy_api

import sorna_sdk

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"```python\n(.*?)```", re.S)
REFERENCE = ROOT / "docs" / "reference"
#: A Markdown link or image target, ``[text](target)``, outside code.
LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)


def python_blocks(path: Path) -> list[str]:
    return FENCE.findall(path.read_text())


def test_readme_examples_type_check_under_strict_mypy(tmp_path: Path) -> None:
    """The README's examples, and docs/testing.md's (in the same mypy run)."""
    blocks = python_blocks(ROOT / "README.md")
    assert len(blocks) >= 2, "the README lost its sync and async examples"
    for index, block in enumerate(blocks):
        (tmp_path / f"readme_example_{index}.py").write_text(block)
    for index, block in enumerate(python_blocks(ROOT / "docs" / "testing.md")):
        (tmp_path / f"testing_doc_example_{index}.py").write_text(block)
    stdout, stderr, status = mypy_api.run(
        ["--strict", "--config-file", str(ROOT / "mypy.ini"), "--no-incremental", str(tmp_path)]
    )
    assert status == 0, stdout + stderr


def _testing_doc_blocks() -> tuple[list[str], list[str]]:
    """docs/testing.md's Python blocks: (scripts, pytest modules with ``def test_``)."""
    blocks = python_blocks(ROOT / "docs" / "testing.md")
    tests = [block for block in blocks if re.search(r"^(async )?def test_", block, re.M)]
    return [block for block in blocks if block not in tests], tests


def test_testing_doc_mock_transport_recipes_run() -> None:
    scripts, _ = _testing_doc_blocks()
    assert len(scripts) >= 2, "docs/testing.md lost its sync or async MockTransport recipe"
    assert any("AsyncSession" in script for script in scripts)
    for index, script in enumerate(scripts):
        namespace: dict[str, object] = {}
        exec(compile(script, f"docs/testing.md (block {index})", "exec"), namespace)  # noqa: S102


def test_testing_doc_pytest_examples_pass(tmp_path: Path) -> None:
    """The end-to-end examples pass under pytest, with only the installed plugin's fixtures."""
    _, tests = _testing_doc_blocks()
    assert tests, "docs/testing.md lost its end-to-end pytest example"
    for index, block in enumerate(tests):
        (tmp_path / f"test_doc_example_{index}.py").write_text(block)
    # pytest-asyncio's strict mode (its default), as a user's project would have it.
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    expected = sum(len(re.findall(r"^(?:async )?def test_", block, re.M)) for block in tests)
    assert f"{expected} passed" in run.stdout, run.stdout


def _doc_pages() -> list[Path]:
    return sorted((ROOT / "docs").rglob("*.md"))


@pytest.mark.parametrize("name", [p.relative_to(ROOT / "docs").as_posix() for p in _doc_pages()])
def test_docs_are_listed_in_mkdocs_nav(name: str) -> None:
    assert name in (ROOT / "mkdocs.yml").read_text()


def _reference_text() -> str:
    return "\n".join(page.read_text() for page in sorted(REFERENCE.glob("*.md")))


@pytest.mark.parametrize("name", sorted(sorna_sdk.__all__))
def test_every_public_name_has_a_reference_entry(name: str) -> None:
    assert re.search(rf"^::: sorna_sdk\.{re.escape(name)}$", _reference_text(), re.M), (
        f"sorna_sdk.{name} is public (in __all__) but no page under docs/reference/ "
        f"renders it: add '::: sorna_sdk.{name}' to the page of its group"
    )


def test_local_gateway_names_have_reference_entries() -> None:
    text = (REFERENCE / "local.md").read_text()
    init = (ROOT / "sorna_sdk" / "local" / "__init__.py").read_text()
    match = re.search(r"^__all__ = \[(.*?)\]", init, re.M | re.S)
    assert match is not None
    names = re.findall(r'"(\w+)"', match.group(1))
    assert names
    for name in names:
        assert f"::: sorna_sdk.local.{name}\n" in text, name


def test_reference_entries_name_public_objects() -> None:
    """No entry names something that is not (or no longer) public."""
    local_init = (ROOT / "sorna_sdk" / "local" / "__init__.py").read_text()
    testing = (ROOT / "sorna_sdk" / "testing.py").read_text()
    for target in re.findall(r"^::: (\S+)$", _reference_text(), re.M):
        module, _, name = target.rpartition(".")
        if target in ("sorna_sdk.local", "sorna_sdk.testing"):
            continue
        if module == "sorna_sdk":
            assert name in sorna_sdk.__all__, target
        elif module == "sorna_sdk.local":
            assert f'"{name}"' in local_init, target
        else:
            assert module == "sorna_sdk.testing" and f'"{name}"' in testing, target


@pytest.mark.parametrize(
    "page", ["README.md", *[p.relative_to(ROOT).as_posix() for p in _doc_pages()]]
)
def test_relative_links_point_to_files_in_the_repository(page: str) -> None:
    path = ROOT / page
    text = CODE.sub("", path.read_text())
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        file = target.partition("#")[0]
        assert (path.parent / file).exists(), f"{page} links {target}, which does not exist"


def test_make_demo_runs_the_readme_examples() -> None:
    demo = _load_demo()

    blocks = python_blocks(ROOT / "README.md")
    assert blocks[:3] == [demo.SYNC_EXAMPLE, demo.ASYNC_EXAMPLE, demo.PTY_EXAMPLE]


def _load_demo() -> Any:
    """``tools/demo.py`` (repository tooling, not an installed module)."""
    spec = importlib.util.spec_from_file_location("sorna_demo", ROOT / "tools" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
