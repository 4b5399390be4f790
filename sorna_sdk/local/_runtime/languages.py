"""The languages a local gateway offers: one :class:`Language` record each, in ``LANGUAGES``.

Everything the runtime knows about a language is in its record: its names and the
Backend.AI images that mean it, which driver runs it and how that driver starts, what this
machine must have for it, what batch mode's ``"*"`` means for it, and what its driver can do.
Adding a language is one record here plus, if no existing driver fits, one driver file in
``drivers/`` that speaks the driver protocol (``protocol.py``); the conformance test
(``tests/local/test_driver_conformance.py``) then runs against it too.

Image references
================

:func:`resolve_image` maps a Backend.AI image reference to a language by its *repository
name*, the last path component before the tag: ``[registry/][namespace/]name[:tag][@digest]``
(``cr.backend.ai/stable/python:3.13-ubuntu24.04`` has the name ``python``). The registry and
namespace are free; the tag must fit the record's ``image_tags`` when it has one (no tag and
``latest`` always fit). So ``<anything>/python:3.x`` is python3 but ``python:2.7`` is
refused, ``lua:5.x`` is lua5, ``nodejs:*`` and ``node:*`` are nodejs, and ``bash:*`` is bash.
General-purpose images (``ubuntu:*``, ``debian:*``, ``base:*``) are refused on purpose:
they name an operating system, not a kernel; ask for ``bash`` to get a shell kernel.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from sorna_sdk.local._runtime.errors import UnknownLanguage

__all__ = [
    "DRIVERS",
    "FRAMING",
    "LANGUAGES",
    "BatchDefaults",
    "BatchRule",
    "Language",
    "MemoryLimit",
    "Requirement",
    "available_languages",
    "canonical_language",
    "driver_argv",
    "driver_env",
    "driver_source",
    "language",
    "module",
    "program",
    "python_driver_source",
    "resolve_image",
]

#: The folder of the driver files (visible read-only to kernels under the sandbox).
DRIVERS: Final = Path(__file__).resolve().parent / "drivers"
#: The frame codec the gateway and the Python driver share (the driver loads it by path).
FRAMING: Final = DRIVERS / "framing.py"

#: How a kernel's memory limit is enforced: ``rlimit-data`` = RLIMIT_DATA on every process
#: of the kernel, set by the supervisor before the driver runs (RLIMIT_AS would break V8).
MemoryLimit = Literal["rlimit-data"]

_PYTHON: Final = shlex.quote(sys.executable)


@dataclass(frozen=True)
class Requirement:
    """Something this machine must have for a language: a Python module or a program."""

    kind: Literal["module", "program"]
    name: str

    def met(self) -> bool:
        if self.kind == "module":
            return importlib.util.find_spec(self.name) is not None
        return shutil.which(self.name) is not None

    def __str__(self) -> str:
        return f"the Python module {self.name}" if self.kind == "module" else f"{self.name} on PATH"


def module(name: str) -> Requirement:
    """A Python module the gateway's interpreter must be able to import."""
    return Requirement("module", name)


def program(name: str) -> Requirement:
    """An executable that must be on ``PATH``."""
    return Requirement("program", name)


#: ``(file, command)``: run ``command`` when ``file`` is a regular file in the work dir.
BatchRule = tuple[str, str]


@dataclass(frozen=True)
class BatchDefaults:
    """What batch mode's ``"*"`` means for a language.

    ``clean`` and ``build`` are rules tried in order: the first whose file is a regular file
    in the work dir (a link is followed, as ``make`` would) gives the command; none means the
    step is skipped. ``exec`` is a fixed command (``None``: skipped). Commands run with
    ``bash -c`` in the work dir.
    """

    clean: tuple[BatchRule, ...] = ()
    build: tuple[BatchRule, ...] = ()
    exec: str | None = None


@dataclass(frozen=True)
class Language:
    """One language: its names, images, driver, requirements, batch defaults and abilities."""

    #: The canonical name (what kernels report as their ``lang``).
    name: str
    #: Other names a client may ask for (lowercase).
    aliases: tuple[str, ...] = ()
    #: Repository names of the Backend.AI images that mean this language (see the module doc).
    images: tuple[str, ...] = ()
    #: A regular expression an image's tag must match from its start (``""``: any tag).
    image_tags: str = ""
    #: The driver file in ``drivers/``. A ``.py`` driver runs on the gateway's own Python
    #: as ``python -u -c <source> <framing.py>``; any other with ``interpreter``.
    driver: str = "python_driver.py"
    #: The program that runs a non-Python driver (looked up on ``PATH``): ``[it, *flags, path]``.
    interpreter: str = ""
    #: What must exist on this machine; the language is offered only when all are met.
    requires: tuple[Requirement, ...] = ()
    batch: BatchDefaults = field(default_factory=BatchDefaults)
    #: The driver answers ``complete`` with real candidates (else always ``[]``).
    completion: bool = False
    #: The kernel can read input lines (``waiting-input``); else its stdin is empty.
    input: bool = True
    #: How the memory limit is enforced for every process of the kernel.
    memory: MemoryLimit = "rlimit-data"
    #: An extra driver flag for the limit, ``{mib}`` replaced by it (at least 16): e.g. V8's
    #: heap size, so that JS objects fail cleanly before RLIMIT_DATA is reached.
    memory_flag: str = ""
    #: ``input`` frames go to a blocking pipe (``SORNA_INPUT_FD``), not the control socket.
    input_pipe: bool = False
    #: Warm drivers may be started before a kernel asks (its command line must not depend
    #: on the kernel: the driver learns the language from ``configure``).
    pooled: bool = False
    #: One line for the docs.
    summary: str = ""

    def __post_init__(self) -> None:
        if self.pooled and self.memory_flag:
            raise ValueError(f"{self.name}: a pooled driver's command cannot carry a limit")
        if not self.driver.endswith(".py") and not self.interpreter:
            raise ValueError(f"{self.name}: a non-Python driver needs an interpreter")
        re.compile(self.image_tags)

    @property
    def driver_path(self) -> Path:
        return DRIVERS / self.driver

    def argv(self, max_mem_kib: int = 0) -> list[str]:
        """The command line that starts this language's driver."""
        if self.driver.endswith(".py"):
            # As a -c source, so that neither the drivers folder nor the driver file becomes
            # sys.path[0] or __main__ of the kernel; the codec comes as the first argument.
            return [sys.executable, "-u", "-c", driver_source(self.driver), str(FRAMING)]
        argv = [shutil.which(self.interpreter) or self.interpreter]
        if max_mem_kib > 0 and self.memory_flag:
            argv.append(self.memory_flag.format(mib=max(max_mem_kib // 1024, 16)))
        return [*argv, str(self.driver_path)]

    def accepts_image(self, ref: str) -> bool:
        """Whether the image reference ``ref`` means this language."""
        parsed = _parse_image(ref)
        if parsed is None or parsed[0] not in self.images:
            return False
        tag = parsed[1]
        return (
            not tag
            or tag == "latest"
            or not self.image_tags
            or bool(re.match(self.image_tags, tag))
        )

    def missing(self) -> list[Requirement]:
        """The requirements this machine does not meet."""
        return [req for req in self.requires if not req.met()]


# Runs a Lua file with the same lupa Lua 5.4 the lua5 kernel uses.
_LUA_RUNNER: Final = (
    "import sys, lupa.lua54 as L\n"
    "rt = L.LuaRuntime(register_eval=False)\n"
    "try:\n"
    "    rt.execute(open(sys.argv[1], encoding='utf-8').read())\n"
    "except L.LuaError as e:\n"
    "    print(e, file=sys.stderr); sys.exit(1)\n"
)
_MAKE: Final = ("Makefile", "make")

#: Every language this gateway knows, available here or not (see :func:`available_languages`).
LANGUAGES: Final[tuple[Language, ...]] = (
    Language(
        name="python3",
        aliases=("python", "python3x"),
        images=("python", "kernel-python"),
        image_tags=r"3(?![0-9])",
        completion=True,
        pooled=True,
        batch=BatchDefaults(
            build=(_MAKE, ("setup.py", f"{_PYTHON} setup.py build")),
            exec=f"{_PYTHON} main.py",
        ),
        summary="a persistent Python interpreter (the gateway's own)",
    ),
    Language(
        name="lua5",
        aliases=("lua",),
        images=("lua", "kernel-lua"),
        image_tags=r"5(?![0-9])",
        requires=(module("lupa"),),
        pooled=True,
        batch=BatchDefaults(
            build=(_MAKE,), exec=f"{_PYTHON} -c {shlex.quote(_LUA_RUNNER)} main.lua"
        ),
        summary="Lua 5.4 through lupa, inside the Python driver",
    ),
    Language(
        name="bash",
        aliases=("shell", "sh"),
        images=("bash",),
        requires=(program("bash"),),
        input=False,
        pooled=True,
        batch=BatchDefaults(build=(_MAKE,), exec="bash main.sh"),
        summary="each query is a bash -c in the kernel's folder: files persist, variables don't",
    ),
    Language(
        name="nodejs",
        aliases=("node", "javascript", "js", "nodejs6"),
        images=("nodejs", "node", "kernel-nodejs"),
        driver="node_driver.js",
        interpreter="node",
        requires=(program("node"),),
        memory_flag="--max-old-space-size={mib}",
        input_pipe=True,
        batch=BatchDefaults(build=(_MAKE,), exec="node main.js"),
        summary="a persistent vm context in node (offered when node is on PATH)",
    ),
)


def _check_registry(langs: tuple[Language, ...]) -> None:
    seen: dict[str, str] = {}
    for lang in langs:
        for key in (lang.name, *lang.aliases):
            if key != key.lower() or key in seen:
                raise ValueError(f"language name {key!r} is not lowercase or not unique")
            seen[key] = lang.name
        for image in lang.images:
            if f"image:{image}" in seen:
                raise ValueError(f"image name {image!r} belongs to two languages")
            seen[f"image:{image}"] = lang.name


_check_registry(LANGUAGES)

_DIGEST: Final = re.compile(r"@[^/]*$")


def _parse_image(ref: object) -> tuple[str, str] | None:
    """``(repository name, tag)`` of an image reference, lowercase; ``None`` if malformed."""
    if not isinstance(ref, str):
        return None
    ref = _DIGEST.sub("", ref.strip().lower())  # "@sha256:..." or an "@x86_64" architecture
    path, slash, last = ref.rpartition("/")
    name, _, tag = last.partition(":")
    if not name or (slash and not all(path.split("/"))):
        return None
    return name, tag


@functools.lru_cache(maxsize=1)
def available_languages() -> dict[str, Language]:
    """Canonical name -> language, for the languages this machine can run."""
    return {lang.name: lang for lang in LANGUAGES if not lang.missing()}


def language(name: str) -> Language:
    """The available record of a canonical name or alias (raises :class:`UnknownLanguage`)."""
    return available_languages()[canonical_language(name)]


def _unavailable(lang: Language) -> str:
    needs = " and ".join(str(req) for req in lang.missing())
    return f"{lang.name} is not available on this machine (it needs {needs})"


def canonical_language(name: str) -> str:
    """Map a name or alias to its canonical name, or raise :class:`UnknownLanguage`.

    An image reference (``python:3.13-ubuntu24.04``) is accepted too, as
    :func:`resolve_image` maps it: Backend.AI's older clients send the image as ``lang``.
    """
    langs = available_languages()
    key = name.strip().lower() if isinstance(name, str) else ""
    for lang in LANGUAGES:
        if key == lang.name or key in lang.aliases:
            if lang.name in langs:
                return lang.name
            raise UnknownLanguage(f"{_unavailable(lang)}; available: {', '.join(sorted(langs))}")
    if key and any(lang.accepts_image(key) for lang in LANGUAGES):
        return resolve_image(key)
    names = ", ".join(sorted(langs))
    raise UnknownLanguage(f"unknown or unavailable language {name!r}; available: {names}")


def resolve_image(ref: str) -> str:
    """The canonical language a Backend.AI image reference means (see the module doc).

    Raises :class:`UnknownLanguage` listing the images accepted here.
    """
    langs = available_languages()
    for lang in LANGUAGES:
        if lang.accepts_image(ref):
            if lang.name in langs:
                return lang.name
            raise UnknownLanguage(f"image {ref!r}: {_unavailable(lang)}")
    accepted = "; ".join(
        f"{lang.name}: " + ", ".join(f"[<registry>/]{image}:<tag>" for image in lang.images)
        for lang in langs.values()
    )
    raise UnknownLanguage(f"no kernel for the image {ref!r}; images accepted: {accepted}")


@functools.lru_cache(maxsize=8)
def driver_source(driver: str) -> str:
    """The source of a driver file in ``drivers/``."""
    return (DRIVERS / driver).read_text(encoding="utf-8")


def python_driver_source() -> str:
    """The source of the Python driver (python3, lua5 and bash)."""
    return driver_source("python_driver.py")


def driver_argv(lang: str, max_mem_kib: int = 0) -> list[str]:
    """The command line that starts the driver of ``lang`` (a canonical, available name)."""
    return available_languages()[lang].argv(max_mem_kib)


def driver_env() -> dict[str, str]:
    """The gateway's environment minus its own ``SORNA_*`` settings (which may hold keys)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SORNA_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env
