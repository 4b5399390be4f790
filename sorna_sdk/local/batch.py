"""Batch mode: the build and exec shell commands, with the ``"*"`` per-language defaults."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sorna_sdk.local.errors import InvalidParameters

__all__ = ["BatchPlan", "plan_batch"]

# Runs a Lua file with the same lupa Lua 5.4 the lua5 kernel uses.
_LUA_RUNNER: Final = (
    "import sys, lupa.lua54 as L\n"
    "rt = L.LuaRuntime(register_eval=False)\n"
    "try:\n"
    "    rt.execute(open(sys.argv[1], encoding='utf-8').read())\n"
    "except L.LuaError as e:\n"
    "    print(e, file=sys.stderr); sys.exit(1)\n"
)


@dataclass(frozen=True)
class BatchPlan:
    """Shell commands of a batch run (None = skip the step)."""

    build: str | None
    exec: str | None
    build_log: bool


def _python() -> str:
    return shlex.quote(sys.executable)


def _default_build(lang: str, workdir: Path) -> str | None:
    if (workdir / "Makefile").is_file():
        return "make"
    if lang == "python3" and (workdir / "setup.py").is_file():
        return f"{_python()} setup.py build"
    return None


def _default_exec(lang: str, workdir: Path) -> str | None:
    if lang == "python3":
        return f"{_python()} main.py"
    if lang == "lua5":
        return f"{_python()} -c {shlex.quote(_LUA_RUNNER)} main.lua"
    if lang == "bash":
        return "bash main.sh"
    if lang == "nodejs":
        return "node main.js"
    return None


def _command(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidParameters(f"batch option {name!r} must be a string or null")
    return value


def plan_batch(lang: str, workdir: Path, options: dict[str, Any]) -> BatchPlan:
    """Validate batch options and resolve ``"*"`` to the language's defaults."""
    build = _command(options.get("build"), "build")
    run = _command(options.get("exec"), "exec")
    if build == "*":
        build = _default_build(lang, workdir)
    if run == "*":
        run = _default_exec(lang, workdir)
    build_log = options.get("buildLog", True)
    if not isinstance(build_log, bool):
        raise InvalidParameters("batch option 'buildLog' must be a boolean")
    return BatchPlan(build=build, exec=run, build_log=build_log)
