"""The README's and docs' Python examples type-check and, where self-contained, run."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
from mypy import api as mypy_api

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"```python\n(.*?)```", re.S)


def python_blocks(path: Path) -> list[str]:
    return FENCE.findall(path.read_text())


def test_readme_examples_type_check_under_strict_mypy(tmp_path: Path) -> None:
    blocks = python_blocks(ROOT / "README.md")
    assert len(blocks) >= 2, "the README lost its sync and async examples"
    for index, block in enumerate(blocks):
        (tmp_path / f"readme_example_{index}.py").write_text(block)
    stdout, stderr, status = mypy_api.run(
        ["--strict", "--config-file", str(ROOT / "mypy.ini"), "--no-incremental", str(tmp_path)]
    )
    assert status == 0, stdout + stderr


def test_testing_doc_mock_transport_recipe_runs() -> None:
    (block,) = python_blocks(ROOT / "docs" / "testing.md")
    namespace: dict[str, object] = {}
    exec(compile(block, "docs/testing.md", "exec"), namespace)  # noqa: S102


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "docs").glob("*.md")))
def test_docs_are_listed_in_mkdocs_nav(name: str) -> None:
    assert name in (ROOT / "mkdocs.yml").read_text()


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
