"""Batch mode: the clean, build and exec shell commands, with the ``"*"`` per-language defaults.

Backend.AI's batch mode runs ``clean``, then ``build``, then ``exec``; each option is a shell
command, ``None``/``""`` to skip the step, or ``"*"`` for the language's default (its
record's :class:`~sorna_sdk.local._runtime.languages.BatchDefaults`, which may be "skip").

Planning is bounded: the options are checked without touching the disk, and a ``"*"``
clean or build costs at most one ``stat`` per rule of the language (``Makefile``,
``setup.py``; they follow a link as ``make`` would, and a loop or a missing permission just
means "no such file"). ``plan`` does those in a thread; ``plan_batch`` is the blocking form.
"""

from __future__ import annotations

import asyncio
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sorna_sdk.local._runtime.errors import InvalidParameters
from sorna_sdk.local._runtime.languages import LANGUAGES, BatchDefaults, BatchRule

__all__ = ["MAX_COMMAND_BYTES", "BatchPlan", "plan", "plan_batch"]

#: Bytes (UTF-8) of a batch command, at most: one ``bash -c`` argument (MAX_ARG_STRLEN).
MAX_COMMAND_BYTES: Final = 128 * 1024 - 1
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_STEPS: Final = ("clean", "build", "exec")


@dataclass(frozen=True)
class BatchPlan:
    """Shell commands of a batch run, in the order they run: clean, build, exec.

    ``None`` = skip the step. (``clean`` comes last among the fields only so that positional
    construction from before it existed keeps working.)
    """

    build: str | None
    exec: str | None
    build_log: bool
    clean: str | None = None

    @property
    def steps(self) -> list[tuple[str, str]]:
        """``(step, command)`` of the steps to run, in order."""
        commands = (self.clean, self.build, self.exec)
        return [(name, cmd) for name, cmd in zip(_STEPS, commands, strict=True) if cmd is not None]


def _defaults(lang: str) -> BatchDefaults:
    for record in LANGUAGES:
        if record.name == lang:
            return record.batch
    return BatchDefaults()


def _is_file(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _first_rule(rules: tuple[BatchRule, ...], workdir: Path) -> str | None:
    """Blocking: the command of the first rule whose file is in ``workdir``, else None."""
    if not rules:
        return None
    try:
        dir_fd = os.open(workdir, _DIR_FLAGS)
    except OSError:
        return None
    try:
        for name, command in rules:
            if _is_file(dir_fd, name):
                return command
        return None
    finally:
        os.close(dir_fd)


def _default_build(lang: str, workdir: Path) -> str | None:
    """Blocking: the language's default build (e.g. ``make`` if there is a Makefile)."""
    return _first_rule(_defaults(lang).build, workdir)


def _default_clean(lang: str, workdir: Path) -> str | None:
    """Blocking: the language's default clean (none of today's languages has one)."""
    return _first_rule(_defaults(lang).clean, workdir)


def _default_exec(lang: str) -> str | None:
    return _defaults(lang).exec


def _command(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidParameters(f"batch option {name!r} must be a string or null")
    if "\x00" in value:
        raise InvalidParameters(f"batch option {name!r} must not contain NUL")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidParameters(f"batch option {name!r} is not valid Unicode") from None
    if size > MAX_COMMAND_BYTES:
        raise InvalidParameters(
            f"batch option {name!r} is too long: {size} bytes (at most {MAX_COMMAND_BYTES})"
        )
    return value


def _options(options: dict[str, Any]) -> tuple[str | None, str | None, str | None, bool]:
    clean = _command(options.get("clean"), "clean")
    build = _command(options.get("build"), "build")
    run = _command(options.get("exec"), "exec")
    build_log = options.get("buildLog", True)
    if not isinstance(build_log, bool):
        raise InvalidParameters("batch option 'buildLog' must be a boolean")
    return clean, build, run, build_log


def plan_batch(lang: str, workdir: Path, options: dict[str, Any]) -> BatchPlan:
    """Blocking: validate batch options and resolve ``"*"`` to the language's defaults."""
    clean, build, run, build_log = _options(options)
    if clean == "*":
        clean = _default_clean(lang, workdir)
    if build == "*":
        build = _default_build(lang, workdir)
    if run == "*":
        run = _default_exec(lang)
    return BatchPlan(build=build, exec=run, build_log=build_log, clean=clean)


async def plan(lang: str, workdir: Path, options: dict[str, Any]) -> BatchPlan:
    """``plan_batch`` with its disk look-ups (a ``"*"`` clean or build only) in a thread.

    Raises ``InvalidParameters`` before anything is looked up.
    """
    clean, build, run, build_log = _options(options)
    if clean == "*":
        # No thread for a language without clean rules (none of today's has any).
        rules = _defaults(lang).clean
        clean = await asyncio.to_thread(_default_clean, lang, workdir) if rules else None
    if build == "*":
        build = await asyncio.to_thread(_default_build, lang, workdir)
    if run == "*":
        run = _default_exec(lang)
    return BatchPlan(build=build, exec=run, build_log=build_log, clean=clean)
