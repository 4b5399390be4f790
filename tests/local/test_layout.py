"""The gateway's layout is its architecture: only the HTTP package imports aiohttp, and the
runtime knows neither HTTP nor any wire dialect."""

from __future__ import annotations

import ast
from pathlib import Path

import sorna_sdk

PACKAGE = Path(sorna_sdk.__file__).resolve().parent
HTTP = PACKAGE / "local" / "_http"
RUNTIME = PACKAGE / "local" / "_runtime"


def imports(path: Path) -> set[str]:
    """Every module a file imports (absolute names; relative ones resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join([*base, node.module or ""]).rstrip("."))
            else:
                found.add(node.module or "")
    return found


def test_the_gateway_internals_are_private_packages() -> None:
    # Type checkers count every module without a leading underscore as public API.
    assert HTTP.is_dir() and RUNTIME.is_dir()
    public = sorted(
        path.name
        for path in (PACKAGE / "local").iterdir()
        if not path.name.startswith("_") and path.name != "py.typed"
    )
    assert public == ["gateway.py"]


def test_only_the_http_package_imports_aiohttp() -> None:
    # Of the gateway, that is; and on the client's side only the optional aiohttp transport.
    allowed = (HTTP, PACKAGE / "_transports")
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if not any(folder in path.parents for folder in allowed)
        and any(name == "aiohttp" or name.startswith("aiohttp.") for name in imports(path))
    ]
    assert offenders == []


def test_the_runtime_knows_no_http_and_no_dialect() -> None:
    banned = (
        "aiohttp",
        "httpx",
        "sorna_sdk.local._http",
        "sorna_sdk._dialects",
        "sorna_sdk.session",
    )
    for path in RUNTIME.rglob("*.py"):
        for name in imports(path):
            assert not name.startswith(banned), f"{path.relative_to(PACKAGE)} imports {name}"


def test_the_demo_is_repository_tooling() -> None:
    assert not (PACKAGE / "local" / "demo.py").exists()
    assert (PACKAGE.parent / "tools" / "demo.py").is_file()
