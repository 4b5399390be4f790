"""How a kernel's processes are started, contained and ended: the supervisor and bubblewrap.

Every kernel process (a driver, a terminal's shell) starts through ``drivers/supervisor.py``:

* ``none`` (no sandbox): the supervisor is a child subreaper in front of the process, so that
  everything the kernel starts, even after ``setsid()`` or a double fork, stays below it; when
  the gateway closes the lifeline pipe (or dies, which closes it too), or the process exits,
  the supervisor SIGKILLs the whole tree. Without a sandbox the kernel runs as the gateway's
  user: code that deliberately kills its supervisor first (``kill -9 $PPID``) can leave
  processes behind; this mode contains accidents, not attacks.
* ``bwrap``: bubblewrap gives each kernel its own user, PID, IPC, UTS, cgroup and (unless
  ``kernel_network``) network namespace, no capabilities, a read-only view of ``/``, a private
  ``/tmp``, empty read-only folders over the kernels' root and the hidden paths (the keypair's
  folder), and its work dir as the only writable folder. The PID namespace ends with its pid 1,
  so killing bwrap ends the whole tree; ``--die-with-parent`` ties it to the gateway. The
  supervisor runs inside, in ``exec`` mode, only to apply the limits.

Limits, applied before the kernel's first instruction: RLIMIT_DATA (memory; RLIMIT_AS breaks
node) for every language, RLIMIT_NPROC, and RLIMIT_CORE 0. Rlimits are per process: each of a
kernel's processes gets the memory limit (a cgroup would be needed for a tree-wide figure).
RLIMIT_NPROC counts all threads of the real uid, except that root is exempt from it (the
limit is set but not enforced), and that on Linux 5.14+ a user namespace (the ``bwrap`` mode)
counts its own processes only; without the sandbox a non-root kernel gets ``max_processes``
on top of the threads the user already runs.

Only this module, ``process.py`` and ``terminal.py`` signal processes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from sorna_sdk.local._runtime.limits import RuntimeSettings

__all__ = [
    "Containment",
    "Sandbox",
    "SandboxUnavailable",
    "bwrap_problem",
    "children",
    "descendants",
    "resolve",
    "supervisor_source",
]

_DRIVERS: Final = Path(__file__).resolve().parent / "drivers"
#: Seconds the supervisor (or bwrap) gets to end a tree before the gateway kills it itself.
KILL_GRACE: Final = 2.0
_PROBE_TIMEOUT: Final = 10.0
_LINUX: Final = sys.platform.startswith("linux")

SandboxMode = Literal["none", "bwrap"]


class SandboxUnavailable(RuntimeError):
    """``--sandbox bwrap`` was asked for, but bubblewrap cannot run here."""


# ---- choosing a mode ------------------------------------------------------------------------


def _base_flags(network: bool) -> list[str]:
    flags = [
        "--unshare-user",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]
    if not network:
        flags.append("--unshare-net")
    flags += [
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",  # noqa: S108 - the sandbox's own private /tmp
    ]
    return flags


@functools.lru_cache(maxsize=4)
def bwrap_problem(bwrap: str | None = None) -> str | None:
    """Why bubblewrap cannot sandbox kernels here, or ``None`` when a probe run works."""
    path = bwrap or shutil.which("bwrap")
    if path is None:
        return "bwrap is not on PATH (install bubblewrap)"
    try:
        probe = subprocess.run(
            [path, *_base_flags(False), "--", "/bin/sh", "-c", "exit 0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=_PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{path} does not run: {exc}"
    if probe.returncode != 0:
        detail = probe.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"{path} cannot create a sandbox: {detail[-1] if detail else probe.returncode}"
    return None


def resolve(mode: Literal["auto", "bwrap", "none"]) -> SandboxMode:
    """The sandbox to use: ``auto`` is ``bwrap`` when bubblewrap works here, else ``none``.

    Raises :class:`SandboxUnavailable` for ``bwrap`` when bubblewrap cannot run.
    """
    if mode == "none":
        return "none"
    if mode not in ("auto", "bwrap"):
        raise ValueError(f"unknown sandbox mode {mode!r}; use auto, bwrap or none")
    problem = bwrap_problem()
    if problem is None:
        return "bwrap"
    if mode == "bwrap":
        raise SandboxUnavailable(f"the bwrap sandbox is not available: {problem}")
    return "none"


@functools.lru_cache(maxsize=1)
def supervisor_source() -> str:
    return (_DRIVERS / "supervisor.py").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _interpreter_paths() -> tuple[Path, ...]:
    """What the drivers need to run: the interpreters, their libraries, the driver sources."""
    paths = {Path(sys.executable), _DRIVERS, Path(sys.prefix) / "pyvenv.cfg"}
    with contextlib.suppress(OSError):
        paths.add(Path(sys.executable).resolve())
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        with contextlib.suppress(KeyError):
            paths.add(Path(sysconfig.get_paths()[name]))
    libdir, library = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")
    if libdir and library:
        paths.add(Path(libdir) / library)  # libpython, for an interpreter linked to it
    node = shutil.which("node")
    if node is not None:
        paths.add(Path(node))
        with contextlib.suppress(OSError):
            paths.add(Path(node).resolve())
    return tuple(sorted(paths))


# ---- building a command ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sandbox:
    """The isolation settings of a gateway's kernels."""

    mode: SandboxMode = "none"
    root: Path | None = None  # the kernels' root: hidden under bwrap (but each one's own dir)
    hidden_paths: tuple[Path, ...] = ()
    network: bool = False
    max_processes: int = 0
    bwrap: str = field(default_factory=lambda: shutil.which("bwrap") or "bwrap")

    @classmethod
    def from_settings(cls, settings: RuntimeSettings) -> Sandbox:
        return cls(
            mode=settings.sandbox,
            root=settings.root,
            hidden_paths=tuple(settings.hidden_paths),
            network=settings.kernel_network,
            max_processes=settings.max_processes,
        )

    @property
    def supervised(self) -> bool:
        """Whether a subreaper supervisor holds the tree (``none`` on Linux: /proc, prctl).

        Elsewhere, without a sandbox, the supervisor only applies the limits and becomes the
        kernel process, which ends with its process group (what escapes the group survives).
        """
        return self.mode == "none" and _LINUX

    @property
    def pid_depth(self) -> int:
        """How far below the spawned process the kernel's own process is (see ``children``)."""
        # bwrap -> its pid 1 -> the kernel; supervisor -> the kernel
        return 2 if self.mode == "bwrap" else 1 if self.supervised else 0  # 0: itself

    def command(
        self,
        argv: Sequence[str],
        *,
        workdir: Path,
        max_mem_kib: int = 0,
        lifeline: int | None = None,
        setsid: bool = False,
        ctty: bool = False,
        pid_env: str | None = "SORNA_GATEWAY_PID",
        visible: Iterable[Path] = (),
    ) -> list[str]:
        """The argv that runs ``argv`` in ``workdir`` contained and limited.

        ``lifeline`` (mode ``none``) is the read end of a pipe whose write end only the
        gateway holds, passed to the child (``pass_fds``). ``visible`` are extra paths the
        kernel must see read-only although they are in a hidden place (e.g. under ``/tmp``).
        """
        sup = [sys.executable, "-I", "-S", "-c", supervisor_source()]
        opts: list[str] = []
        if max_mem_kib > 0:
            opts += ["--data", str(max_mem_kib * 1024)]
        if self.max_processes > 0:
            opts += ["--nproc", str(self.max_processes)]
        if setsid:
            opts.append("--setsid")
        if ctty:
            opts.append("--ctty")
        if pid_env:
            opts += ["--pid-env", pid_env]
        if self.supervised:
            if lifeline is not None:
                opts += ["--lifeline", str(lifeline), "--gateway", str(os.getpid())]
            return [*sup, "--mode", "tree", *opts, "--", *argv]
        inner = [*sup, "--mode", "exec", *opts, "--", *argv]
        if self.mode == "none":
            return inner
        return [self.bwrap, *self.bwrap_flags(workdir, visible=visible), "--", *inner]

    def bwrap_flags(self, workdir: Path, *, visible: Iterable[Path] = ()) -> list[str]:
        """bubblewrap's options for a kernel whose only writable folder is ``workdir``."""
        flags = _base_flags(self.network)
        workdir = Path(os.path.abspath(workdir))
        covered = [Path("/tmp")]  # noqa: S108 - the private /tmp, an empty tmpfs
        places = {Path(p).resolve() for p in (self.root, *self.hidden_paths) if p}
        folders: list[Path] = []
        for path in sorted(places, key=lambda p: len(p.parts)):  # parents first
            if path in covered:
                continue  # /tmp itself is private already
            if path.is_dir():
                flags += ["--tmpfs", str(path)]
                folders.append(path)
            elif path.exists():
                flags += ["--ro-bind", "/dev/null", str(path)]  # a hidden file
            else:
                continue
            covered.append(path)
        flags += ["--bind", str(workdir), str(workdir)]
        # What the kernel needs but a cover hides comes back read-only (the interpreter's own
        # files stay visible even in a hidden folder), never a folder holding another cover.
        for path in sorted({*_interpreter_paths(), *visible}, key=str):
            path = Path(os.path.abspath(path))
            if not path.exists() or _inside(workdir, path) or _inside(path, workdir):
                continue
            if any(_inside(path, c) for c in covered) and not any(
                _inside(c, path) and c != path for c in covered
            ):
                flags += ["--ro-bind", str(path), str(path)]
        for path in folders:
            flags += ["--remount-ro", str(path)]
        flags += ["--chdir", str(workdir)]
        return flags


def _inside(path: Path, place: Path) -> bool:
    """``path`` is ``place`` or below it."""
    return path == place or place in path.parents


# ---- finding and ending processes -----------------------------------------------------------


def children(pid: int) -> list[int]:
    """The children of ``pid`` (every thread's), from /proc; empty when it is gone."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as handle:
                found += [int(x) for x in handle.read().split()]
        except (OSError, ValueError):
            return [child for child, ppid in _ppids().items() if ppid == pid]
    return found


def _ppids() -> dict[int, int]:
    table: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as handle:
                    table[int(name)] = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return table


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (by ppid links in /proc), parents before children."""
    kids: dict[int, list[int]] = {}
    for child, ppid in _ppids().items():
        kids.setdefault(ppid, []).append(child)
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in kids.get(stack.pop(), ()):
            found.append(child)
            stack.append(child)
    return found


def _ns_pid(pid: int) -> int | None:
    """The pid of ``pid`` in its own (innermost) PID namespace."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), ``None`` if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


class Containment:
    """One spawned process tree (the supervisor or bwrap at ``pid``) and how it ends.

    ``pid`` must be a child of this process that has not been reaped yet: the owner stops
    calling :meth:`kill` and :meth:`force` once it has collected the exit status.
    """

    def __init__(self, sandbox: Sandbox, pid: int, lifeline: int | None = None) -> None:
        self.sandbox = sandbox
        self.pid = pid
        self._lifeline = lifeline  # write end: closing it tells the supervisor to end the tree
        self._kernel_pid: int | None = None

    def kernel_pid(self, ns_pid: int | None = None) -> int | None:
        """The host pid of the kernel's own process (the driver, the shell), once it runs.

        It is the first child at its depth below the tree's root: orphans that come back to
        the supervisor (or to bwrap's pid 1) later were started after it. ``ns_pid``, the pid
        the process reported about itself, picks it exactly when given.
        """
        if self._kernel_pid is not None:
            return self._kernel_pid
        if self.sandbox.pid_depth == 0:
            self._kernel_pid = self.pid
            return self.pid
        level = [self.pid]
        for _ in range(self.sandbox.pid_depth):
            level = [child for pid in level for child in children(pid)]
        if ns_pid is not None:
            level = [pid for pid in level if _ns_pid(pid) == ns_pid] or level
        started = [(when, pid) for pid in level if (when := _start_time(pid)) is not None]
        if started:
            self._kernel_pid = min(started)[1]
        return self._kernel_pid

    def host_pid(self, pid: int) -> int | None:
        """The host pid of the tree's process that calls itself ``pid`` (under bwrap, the pid
        kernel code sees, e.g. ``os.getpid()`` or ``$!``); ``None`` if no such process runs.
        """
        if self.sandbox.mode != "bwrap":
            return pid if pid in descendants(self.pid) else None
        for candidate in descendants(self.pid):
            if _ns_pid(candidate) == pid and candidate not in children(self.pid):
                return candidate  # (bwrap's own child is pid 1 of the namespace)
        return None

    def kill(self) -> None:
        """Start ending the whole tree (the caller escalates with :meth:`force` if it lasts)."""
        if self.sandbox.mode == "bwrap":
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)  # its PID namespace goes with it
            return
        if not self.sandbox.supervised:
            self.force()  # the kernel process and its group
            return
        self.release()
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGTERM)

    def force(self) -> None:
        """The supervisor did not end in time (e.g. it was stopped): sweep, then SIGKILL it."""
        for _ in range(20):
            found = descendants(self.pid)
            if not found:
                break
            for pid in found:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)

    def release(self) -> None:
        """Close the lifeline (the supervisor then ends the tree); idempotent."""
        if self._lifeline is not None:
            with contextlib.suppress(OSError):
                os.close(self._lifeline)
            self._lifeline = None

    def returncode(self, code: int) -> int:
        """The kernel process's exit status from the tree's: bwrap reports 128+N for signal N."""
        if self.sandbox.mode == "bwrap" and 128 < code < 128 + 65:
            return -(code - 128)
        return code
