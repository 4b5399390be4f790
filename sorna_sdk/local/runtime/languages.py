"""The languages a local gateway offers, their aliases, and how their drivers start."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sorna_sdk.local.runtime.errors import UnknownLanguage

__all__ = [
    "Language",
    "available_languages",
    "canonical_language",
    "driver_argv",
    "driver_env",
    "python_driver_source",
]

_DRIVERS: Final = Path(__file__).resolve().parent / "drivers"


@dataclass(frozen=True)
class Language:
    """A canonical language name, its aliases, and which driver runs it."""

    name: str
    driver: str  # "python" or "node"
    aliases: tuple[str, ...] = ()


_ALL: Final = (
    Language("bash", "python", ("shell", "sh")),
    Language("lua5", "python", ("lua",)),
    Language("nodejs", "node", ("node", "javascript", "js", "nodejs6")),
    Language("python3", "python", ("python", "python3x")),
)


@functools.lru_cache(maxsize=1)
def available_languages() -> dict[str, Language]:
    """Canonical name -> language, for the languages this machine can run."""
    found: dict[str, Language] = {}
    for lang in _ALL:
        if lang.name == "lua5" and importlib.util.find_spec("lupa") is None:
            continue
        if lang.name == "bash" and shutil.which("bash") is None:
            continue
        if lang.name == "nodejs" and shutil.which("node") is None:
            continue
        found[lang.name] = lang
    return found


def canonical_language(name: str) -> str:
    """Map a name or alias to its canonical name, or raise :class:`UnknownLanguage`."""
    langs = available_languages()
    key = name.strip().lower() if isinstance(name, str) else ""
    for lang in langs.values():
        if key == lang.name or key in lang.aliases:
            return lang.name
    names = ", ".join(sorted(langs))
    raise UnknownLanguage(f"unknown or unavailable language {name!r}; available: {names}")


@functools.lru_cache(maxsize=1)
def python_driver_source() -> str:
    return (_DRIVERS / "python_driver.py").read_text(encoding="utf-8")


def driver_argv(lang: str, max_mem_kib: int = 0) -> list[str]:
    """The command line that starts the driver of ``lang``."""
    if available_languages()[lang].driver == "node":
        argv = [shutil.which("node") or "node"]
        if max_mem_kib > 0:
            # The limit is RLIMIT_DATA (set for every language before the driver starts; RLIMIT_AS
            # breaks V8). The heap limit is an extra: a clean "heap out of memory" for JS objects.
            argv.append(f"--max-old-space-size={max(max_mem_kib // 1024, 16)}")
        return [*argv, str(_DRIVERS / "node_driver.js")]
    return [sys.executable, "-u", "-c", python_driver_source()]


def driver_env() -> dict[str, str]:
    """The gateway's environment minus its own ``SORNA_*`` settings (which may hold keys)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SORNA_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env
