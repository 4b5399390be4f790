"""Process-tree supervisor of one kernel process (a driver or a terminal's shell); stdlib only.

The gateway runs this file's source with ``python -I -S -c <source> [options] -- argv...``.

``--mode tree`` (no sandbox): the supervisor becomes a child subreaper
(``prctl(PR_SET_CHILD_SUBREAPER)``), so every process the kernel starts stays its descendant
even after ``setsid()``, a new process group or a double fork (orphans reparent to it, not to
init). It forks ``argv`` and then waits. When ``argv`` exits, when it gets SIGTERM, or when the
lifeline fd (a pipe whose write end only the gateway holds) reaches EOF, it SIGKILLs every
descendant (walking the ppid links of ``/proc/*/stat`` until none is left) and exits the way
``argv`` did (same exit code, or the same fatal signal).

``--mode exec`` (inside the bubblewrap sandbox, where the PID namespace already ends the whole
tree with its pid 1): apply the settings below and exec ``argv`` in place.

Both modes, in the process that becomes ``argv``: ``--setsid`` (new session, e.g. for a
terminal) or else a process group of its own; ``--ctty`` makes fd 0 the controlling terminal;
``--data`` sets RLIMIT_DATA (bytes), ``--nproc`` RLIMIT_NPROC (the user's threads counted when
not root: see ``_nproc_limit``), RLIMIT_CORE is always 0; ``--pid-env NAME`` puts the parent's
pid in the environment variable NAME (the drivers check it to die with their parent).
"""

from __future__ import annotations

import os
import resource
import select
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import signal
else:  # the C module has the same names; ``signal`` would import enum (slow to start)
    import _signal as signal

_SWEEP_LIMIT = 10.0  # seconds: a process stuck in D state must not keep the supervisor forever
_PR_SET_CHILD_SUBREAPER = 36


def _quiet(func: Callable[..., object], *args: int) -> None:
    """Call ``func``; an OSError (a process or fd already gone) is no news."""
    try:
        func(*args)
    except OSError:
        return


def _parse(args: list[str]) -> tuple[dict[str, str], list[str]]:
    opts: dict[str, str] = {}
    while args and args[0] != "--":
        name = args.pop(0)
        if name in ("--setsid", "--ctty"):
            opts[name] = "1"
        else:
            opts[name] = args.pop(0)
    if len(args) < 2:
        raise SystemExit("supervisor: usage: [options] -- argv...")
    return opts, args[1:]


def _user_threads(uid: int) -> int:
    """Threads of real uid ``uid`` visible in /proc (RLIMIT_NPROC counts threads)."""
    total = 0
    names = os.listdir("/proc") if os.path.isdir("/proc") else []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as handle:
                status = handle.read()
        except OSError:
            continue
        real = threads = -1
        for line in status.splitlines():
            if line.startswith(b"Uid:"):
                real = int(line.split()[1])
            elif line.startswith(b"Threads:"):
                threads = int(line.split()[1])
        if real == uid and threads > 0:
            total += threads
    return total


def _nproc_limit(wanted: int) -> int:
    """RLIMIT_NPROC counts every thread of the real uid (in this user namespace on Linux 5.14+).

    Root is exempt from it anyway. For another user the kernel gets ``wanted`` threads on top
    of what the user already runs, or its first fork could fail on a busy desktop.
    """
    uid = os.getuid()
    return wanted if uid == 0 else wanted + _user_threads(uid)


def _become(opts: dict[str, str], argv: list[str], parent: int) -> None:
    """Turn this process into ``argv`` with the settings applied (never returns)."""
    try:
        if "--setsid" in opts:
            _quiet(os.setsid)  # fails only for a session leader already
        else:
            _quiet(os.setpgid, 0, 0)
        if "--ctty" in opts:
            import fcntl
            import termios

            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        data = int(opts.get("--data", "0"))
        nproc = int(opts.get("--nproc", "0"))
        limits = [(resource.RLIMIT_CORE, 0)]
        if data > 0:
            limits.append((resource.RLIMIT_DATA, data))
        if nproc > 0:
            limits.append((resource.RLIMIT_NPROC, _nproc_limit(nproc)))
        for which, value in limits:
            hard = resource.getrlimit(which)[1]
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)  # only root may raise a hard limit
            try:
                resource.setrlimit(which, (value, value))
            except (OSError, ValueError):
                if sys.platform.startswith("linux"):
                    raise  # a kernel must not start without its limits
        env = dict(os.environ)
        if "--pid-env" in opts:
            env[opts["--pid-env"]] = str(parent)
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores these; children must not
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.execvpe(argv[0], argv, env)  # noqa: S606 - argv is the gateway's own command
    except BaseException as exc:  # report anything, then fail like a shell
        try:
            os.write(2, f"supervisor: cannot start {argv[0]}: {exc}\n".encode())
        finally:
            os._exit(127)


def _descendants(root: int) -> list[tuple[int, bytes]]:
    """(pid, state) of every process below ``root``, from the ppid links in /proc."""
    kids: dict[int, list[tuple[int, bytes]]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            kids.setdefault(int(fields[1]), []).append((int(name), fields[0]))
        except (OSError, ValueError, IndexError):
            continue
    found: list[tuple[int, bytes]] = []
    stack = [root]
    while stack:
        for pid, state in kids.get(stack.pop(), ()):
            found.append((pid, state))
            stack.append(pid)
    return found


def _reap(child: int, status: list[int]) -> None:
    """Collect every exited child; ``status`` gets the wait status of ``child``."""
    while True:
        try:
            pid, code = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid == child:
            status.append(code)


def _sweep(child: int, status: list[int]) -> None:
    """SIGKILL every descendant until none is left (orphans come back to us: subreaper)."""
    me = os.getpid()
    end = time.monotonic() + _SWEEP_LIMIT
    while time.monotonic() < end:
        found = _descendants(me)
        living = [pid for pid, state in found if state not in (b"Z", b"X")]
        for pid, _state in found:
            _quiet(os.kill, pid, signal.SIGKILL)
        _reap(child, status)
        if not living:
            return
        time.sleep(0.002)


def _exit_like(status: list[int]) -> None:
    if not status:
        os._exit(0)
    code = status[0]
    if os.WIFSIGNALED(code):
        sig = os.WTERMSIG(code)
        try:
            if sig not in (signal.SIGKILL, signal.SIGSTOP):
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
            os.kill(os.getpid(), sig)
            time.sleep(0.5)
        finally:
            os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(code) if os.WIFEXITED(code) else 1)


def _subreaper() -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
    except (OSError, AttributeError) as exc:
        os.write(2, f"supervisor: {exc}\n".encode())
        os._exit(126)


def _tree(opts: dict[str, str], argv: list[str]) -> None:
    lifeline = int(opts.get("--lifeline", "-1"))
    parent = int(opts.get("--gateway", "0"))
    if lifeline >= 0:
        os.set_inheritable(lifeline, False)  # the kernel must not hold it
    _subreaper()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    stop = [False]

    def on_term(signum: int, frame: object) -> None:
        stop[0] = True

    def ignore(signum: int, frame: object) -> None:
        pass

    # Handlers before the fork, so that a SIGTERM right after it is not lost; exec resets them.
    signal.signal(signal.SIGTERM, on_term)
    for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, ignore)
    if parent and os.getppid() != parent:
        os._exit(1)  # the gateway is already gone
    child = os.fork()
    if child == 0:
        _become(opts, argv, os.getppid())
    keep = {lifeline, wake_r, wake_w}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            _quiet(os.close, fd)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)
    status: list[int] = []
    poller = select.poll()
    poller.register(wake_r, select.POLLIN)
    if lifeline >= 0:
        poller.register(lifeline, select.POLLIN | select.POLLHUP)
    while not stop[0] and not status:
        try:
            events = poller.poll()
        except InterruptedError:
            events = []
        for fd, _event in events:
            if fd == wake_r:
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
            elif fd == lifeline:
                try:
                    data = os.read(lifeline, 512)
                except OSError:
                    data = b""
                if not data:
                    stop[0] = True
                    poller.unregister(lifeline)
        _reap(child, status)
    _sweep(child, status)
    if not status:
        try:
            _pid, code = os.waitpid(child, 0)
            status.append(code)
        except ChildProcessError:
            pass
    _exit_like(status)


def main() -> None:
    opts, argv = _parse(sys.argv[1:])
    if opts.get("--mode", "tree") == "exec":
        _become(opts, argv, os.getppid())
    else:
        _tree(opts, argv)


if __name__ == "__main__":
    main()
