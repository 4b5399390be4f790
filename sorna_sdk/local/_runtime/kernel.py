"""A local kernel: the execute state machine (spec §5.3) over one driver process.

Semantics worth knowing:

* A kernel runs one program at a time. While a run is going on (after ``continued``), an empty
  query collects more output; a query with code is refused with 409 ``kernel-busy`` (nothing
  is dropped, nobody gets another caller's output). After ``waiting-input`` the code is the
  input line.
* Execute, restart, destroy and interrupt of one kernel are serialised: a restart racing a
  destroy answers 404 and leaks no driver.
* ``interrupt()`` delivers the language's SIGINT (Python ``KeyboardInterrupt``, a Lua error from
  a debug hook, node's ``breakOnSigint``, SIGINT to a bash job's process group); a program that
  has not stopped after ``INTERRUPT_GRACE`` seconds is killed with its processes and the kernel
  gets a fresh driver (same id and folder; in-memory state is lost, and the run says so). The
  run ends with the output so far and the status ``interrupted``.
* A driver that dies during a run is noticed at once: the kernel stops counting toward the
  quota and ``info()`` answers 404; the next execute still returns the run's last output.
* The exec timeout is a wall-clock budget per run; time spent in ``waiting-input`` is not
  charged. On expiry the process group is killed, the result is ``exec-timeout`` and the
  kernel is destroyed.
* Batch mode runs ``clean``, ``build`` then ``exec`` (those given) with ``bash -c`` in the
  work dir (stdin is /dev/null); a step before the last answers ``clean-finished`` or
  ``build-finished`` and the next ``continue`` (an empty query) runs the next step.
  ``buildLog: false`` hides the build's stdout but keeps its stderr. A failing clean or build
  ends the run with ``finished`` and a ``[build failed: exit code N]`` line. Every step's
  answer carries ``options: {"exitCode": N}``.
* bash kernels run each query as a separate ``bash -c`` in the work dir: files persist,
  shell variables do not. Their stdout/stderr interleaving is only as exact as two pipes allow.
* The kernel's terminal (``terminal.py``, the PTY stream) is a separate ``bash -i`` in the same
  work dir: restarting the kernel restarts it, and ending the kernel closes it (4404).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import os
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from sorna_sdk._json import is_array, is_object, str_list
from sorna_sdk.local._runtime import browse
from sorna_sdk.local._runtime.batch import BatchPlan, plan
from sorna_sdk.local._runtime.browse import Listing
from sorna_sdk.local._runtime.errors import (
    InvalidParameters,
    KernelBusy,
    KernelCreationFailed,
    KernelNotFound,
)
from sorna_sdk.local._runtime.files import (
    EMPTY_SNAPSHOT,
    OutputSnapshot,
    new_files,
    remove_tree,
    snapshot,
    store_uploads,
)
from sorna_sdk.local._runtime.limits import KernelLimits, RuntimeSettings
from sorna_sdk.local._runtime.pool import DriverLauncher
from sorna_sdk.local._runtime.process import DriverProcess, Item
from sorna_sdk.local._runtime.results import (
    KernelState,
    KernelStatus,
    RunError,
    RunResult,
    RunStatus,
)
from sorna_sdk.local._runtime.terminal import Terminal

__all__ = ["MODES", "LocalKernel"]

MODES: Final = frozenset({"query", "batch", "complete"})
#: How long a completion may take before an empty list is returned.
COMPLETE_TIMEOUT: Final = 5.0
#: Seconds a program gets to stop after an interrupt before it is killed.
INTERRUPT_GRACE: Final = 1.0
#: Exit status reported for an interrupted run (as a shell reports SIGINT).
INTERRUPTED_EXIT: Final = 130
#: Characters of console text a kernel keeps for ``logs()`` (the newest).
LOG_CHARS: Final = 256 * 1024
#: Characters of a run's answered console items kept for replay (``offset``), the newest.
REPLAY_CHARS: Final = 8 * 1024 * 1024
#: How long an eager collection waits for more output once some has arrived.
EAGER_COALESCE: Final = 0.02


class _State(enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    WAITING = "waiting-input"
    BUILT = "build-finished"  # batch: build done, exec pending
    DEAD = "dead"


_STATES: Final[dict[_State, KernelState]] = {
    _State.IDLE: "idle",
    _State.RUNNING: "running",
    _State.WAITING: "waiting-input",
    _State.BUILT: "between-steps",
    _State.DEAD: "dead",
}


class LocalKernel:
    """One kernel: its id, language, work dir, driver process and execution state."""

    def __init__(
        self,
        *,
        kernel_id: str,
        owner: str,
        lang: str,
        workdir: Path,
        settings: RuntimeSettings,
        limits: KernelLimits,
        launcher: DriverLauncher,
        proc: DriverProcess,
        on_gone: Callable[[LocalKernel], None],
        name: str = "",
        environ: Mapping[str, str] | None = None,
        resources: Mapping[str, str] | None = None,
        image: str = "",
    ) -> None:
        self.kernel_id = kernel_id
        self.owner = owner
        self.lang = lang
        self.workdir = workdir
        self.limits = limits
        #: The token (Backend.AI: session name) it was created under.
        self.name = name
        #: Resources the creator asked for, as given (reported by info, not enforced).
        self.resources: dict[str, str] = dict(resources or {})
        #: The image reference it was created with (Backend.AI), ``""`` if by language.
        self.image = image
        #: Extra environment of the kernel's driver and terminal (kept across restarts).
        self.environ: dict[str, str] = dict(environ or {})
        self._log: deque[str] = deque()
        self._log_chars = 0
        # The current run's answered console items (for replay from an offset): the items,
        # how many older ones were dropped, their size, and the last answer.
        self._answered: deque[list[Any]] = deque()
        self._answered_base = 0
        self._answered_chars = 0
        self._last_answer: RunResult | None = None
        self._collected_at = time.monotonic()
        self._settings = settings
        self._launcher = launcher
        self._on_gone = on_gone
        self._created = self._last = time.monotonic()
        self._created_wall = time.time()
        self._run_id = ""
        self._queries = 0
        self._lock = asyncio.Lock()
        self._state = _State.IDLE
        self._phase = "query"
        self._plan: BatchPlan | None = None
        self._steps: list[tuple[str, str]] = []  # batch steps still to run
        self._before: OutputSnapshot = EMPTY_SNAPSHOT
        self._timed_out = False
        self._budget = limits.exec_timeout
        self._armed_at = 0.0
        self._watchdog: asyncio.Task[None] | None = None
        self.gone_reason: str = ""
        self._terminal: Terminal | None = None
        self._collecting = False
        # Output taken from the driver but not yet returned (a caller that went away leaves
        # it here for the next one), and the result of a run whose caller went away.
        self._carry: list[Item] = []
        self._orphan: asyncio.Task[RunResult] | None = None
        self._driver_gone = False
        self._interrupted = False
        self._escalated = False
        self._escalation: asyncio.Task[None] | None = None
        self._attach(proc)

    # ---- public API -----------------------------------------------------------------------

    @property
    def created_at(self) -> float:
        """When the kernel was created (seconds since the epoch)."""
        return self._created_wall

    @property
    def pid(self) -> int:
        """The driver's pid (also its process group id)."""
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._state is not _State.DEAD

    @property
    def running(self) -> bool:
        """Whether the kernel counts as living: not ended, and its driver has not died."""
        return self.alive and not self._driver_gone

    def touch(self) -> None:
        """Mark activity (resets the idle clock)."""
        self._last = time.monotonic()

    def idle_seconds(self) -> float:
        """Seconds since the last activity."""
        return time.monotonic() - self._last

    async def interrupt(self) -> None:
        """Stop the running program (no-op while idle); the run ends ``interrupted``."""
        self._require()
        self.touch()
        if self._state not in (_State.RUNNING, _State.WAITING) or self._driver_gone:
            return
        if self._state is _State.WAITING:
            # The program is blocked reading input: the interrupt ends that read too.
            self._state = _State.RUNNING
            self._arm()
        self._interrupted = True
        self._proc.interrupt()
        if self._escalation is None or self._escalation.done():
            proc = self._proc
            self._escalation = asyncio.get_running_loop().create_task(self._escalate(proc))

    async def _escalate(self, proc: DriverProcess) -> None:
        await asyncio.sleep(INTERRUPT_GRACE)
        if proc is self._proc and self._interrupted and self._state is _State.RUNNING:
            self._escalated = True
            proc.kill()

    async def execute(
        self,
        mode: str,
        code: str,
        options: dict[str, Any] | None,
        *,
        eager: bool = False,
        offset: int | None = None,
    ) -> RunResult:
        """Run, continue, feed input to, or complete code; returns an ExecutionResult.

        ``eager``: answer as soon as any output is there, not at the end of the flush window.
        ``offset`` (with an empty query, a continuation): the caller has the run's console items
        before it; earlier-answered items after it are replayed at once.
        """
        if mode not in MODES:
            raise InvalidParameters(f"unknown mode {mode!r}; use one of: batch, complete, query")
        if not isinstance(code, str):
            raise InvalidParameters("'code' must be a string")
        if options is not None and not isinstance(options, dict):
            raise InvalidParameters("'options' must be an object or null")
        opts = options or {}
        async with self._lock:
            self._require()
            self.touch()
            orphan, self._orphan = self._orphan, None
            if offset is not None and code == "" and mode == "query":
                if orphan is not None:
                    await orphan  # a conclusion whose caller left: logged for the replay
                    orphan = None
                replay = self._replay(offset)
                if replay is not None:
                    return replay
            if orphan is not None and (code == "" or self._state is not _State.IDLE):
                # The run ended while its caller was gone: this call gets that ending.
                return await orphan
            if mode == "complete":
                return await self._complete(code, opts)
            proc = self._proc
            if code and self._state in (_State.RUNNING, _State.BUILT) and mode == "query":
                raise KernelBusy(
                    "The kernel is running another program; collect its output with an "
                    "empty query, or interrupt it, before sending new code."
                )
            if self._state is _State.IDLE:
                if mode == "batch":
                    batch = await plan(self.lang, self.workdir, opts)
                    steps = batch.steps
                    if not steps:
                        return self._idle_result()
                    self._plan = batch
                    self._steps = steps[1:]
                    await self._begin(steps[0][0])
                    proc.send("shell", steps[0][1])
                elif code == "":
                    return self._idle_result()
                else:
                    await self._begin("query")
                    proc.send("exec", {"code": code, "options": opts} if opts else code)
            elif self._state is _State.WAITING:
                proc.send("input", code)
                self._state = _State.RUNNING
                self._arm()
            elif self._state is _State.BUILT:
                phase, command = self._steps.pop(0)
                self._phase = phase
                self._state = _State.RUNNING
                self._budget = self.limits.exec_timeout
                self._arm()
                proc.send("shell", command)
            try:
                return await self._collect(eager)
            finally:
                self._collected_at = time.monotonic()

    @property
    def collected_at(self) -> float:
        """When an execute last collected output (``time.monotonic()``)."""
        return self._collected_at

    def _replay(self, offset: int) -> RunResult | None:
        """The answered items from ``offset`` on, with the run's state as last answered;
        ``None`` when the caller has them all (then collect as usual)."""
        base = self._answered_base
        total = base + len(self._answered)
        last = self._last_answer
        if offset == total:
            return None
        if offset < base:
            raise InvalidParameters(
                f"offset {offset}: the run's output before item {base} is no longer kept"
            )
        if offset > total or last is None:
            raise InvalidParameters(f"offset {offset}: the run has answered {total} items")
        items = list(self._answered)[offset - base :]
        if self._state is _State.RUNNING and last.status != "continued":
            # E.g. input was sent after that answer: the run goes on.
            return RunResult("continued", items, None, [], self._run_id, None, offset)
        return dataclasses.replace(last, console=items, offset=offset)

    async def restart(self) -> None:
        """Same id and work dir, fresh driver and state."""
        async with self._lock:
            self._require()
            self.touch()
            self._disarm()
            old = self._proc
            old.on_exit = None
            await old.close(grace=0.5)
            proc = await self._relaunch()
            self._attach(proc)
            self._state = _State.IDLE
            self._plan = None
            self._steps = []
            if self._terminal is not None:
                await self._terminal.restart()  # fresh state includes a fresh shell

    async def _relaunch(self) -> DriverProcess:
        """A fresh driver for this kernel; 404 if the kernel was destroyed meanwhile."""
        try:
            proc = await self._launcher.launch(
                self.lang, self.workdir, self.limits.max_mem_kib, self.environ
            )
        except KernelCreationFailed:
            if self._state is _State.DEAD:
                raise KernelNotFound(self.gone_reason) from None
            self._mark_dead(f"kernel {self.kernel_id} terminated (restart failed)")
            raise
        if self._state is _State.DEAD:  # destroyed while the new driver started
            await proc.close(grace=0.1)
            raise KernelNotFound(self.gone_reason or f"kernel {self.kernel_id} not found")
        self._driver_gone = False
        return proc

    def terminal(self) -> Terminal:
        """The kernel's terminal (created on first use; its shell starts with a subscriber)."""
        self._require()
        if self._terminal is None:
            self._terminal = Terminal(
                self.workdir,
                env=self.environ,
                sandbox=self._launcher.sandbox,
                max_mem_kib=self.limits.max_mem_kib,
            )
        return self._terminal

    def info(self) -> KernelStatus:
        """The kernel's figures now (any dialect renders them)."""
        self._require()
        if self._driver_gone:
            raise KernelNotFound(self.gone_reason or f"kernel {self.kernel_id} terminated")
        now = time.monotonic()
        return KernelStatus(
            kernel_id=self.kernel_id,
            lang=self.lang,
            age_ms=int((now - self._created) * 1000),
            idle_ms=int((now - self._last) * 1000),
            queries=self._queries,
            exec_timeout_ms=int(self.limits.exec_timeout * 1000),
            idle_timeout_ms=int(self._settings.idle_timeout * 1000),
            memory_limit_kib=self.limits.max_mem_kib,
            memory_used_kib=_rss_kib(self._proc.pid),
            cpu_used_ms=_cpu_ms(self._proc.pid),
            state=self.state,
            created_at=self._created_wall,
        )

    def logs(self) -> str:
        """What the kernel printed (stdout and stderr of every run), the newest 256 Ki chars."""
        self._require()
        text = "".join(self._log)
        return text[-LOG_CHARS:]

    @property
    def state(self) -> KernelState:
        """Where the kernel's current run stands."""
        return _STATES[self._state]

    @property
    def run_id(self) -> str:
        """The id of the current (or last) run; ``""`` before the first."""
        return self._run_id

    async def upload(self, files: list[tuple[str, bytes]]) -> None:
        """Write uploaded files into the work dir (raises InvalidUpload)."""
        self._require()
        self.touch()
        await store_uploads(
            self.workdir,
            files,
            max_files=self._settings.max_upload_files,
            max_bytes=self._settings.max_upload_bytes,
        )

    async def list_files(self, path: str) -> Listing:
        """The entries of a folder of the work dir (see :mod:`.browse`)."""
        self._require()
        self.touch()
        return await asyncio.to_thread(browse.list_dir, self.workdir, path)

    async def download(self, paths: Sequence[str]) -> list[bytes]:
        """One tar archive per path (files or folders of the work dir)."""
        self._require()
        self.touch()
        for path in paths:
            browse.split_path(path)  # refuse a bad path before reading anything

        def archives() -> list[bytes]:
            left = browse.MAX_DOWNLOAD_BYTES
            parts: list[bytes] = []
            for path in paths:
                parts.append(browse.archive(self.workdir, path, left))
                left -= len(parts[-1])
            return parts

        return await asyncio.to_thread(archives)

    async def read_file(self, path: str) -> bytes:
        """The content of one regular file of the work dir."""
        self._require()
        self.touch()
        return await asyncio.to_thread(browse.read_file, self.workdir, path)

    async def shutdown(self, reason: str) -> None:
        """End the driver's process tree and remove the work dir."""
        if self._state is not _State.DEAD:
            self._state = _State.DEAD
            self.gone_reason = reason
        self._disarm()
        if self._escalation is not None:
            self._escalation.cancel()
        self._proc.on_exit = None
        self._proc.kill()  # a run being collected ends now; a racing restart sees DEAD
        if self._terminal is not None:
            await self._terminal.close()  # subscribers see 4404 "kernel destroyed"
        await self._proc.close()
        await remove_tree(self.workdir)

    # ---- internals ------------------------------------------------------------------------

    def _attach(self, proc: DriverProcess) -> None:
        self._proc = proc
        proc.on_exit = self._on_exit

    def _on_exit(self, proc: DriverProcess) -> None:
        # An idle death ends the kernel at once. A death during a run is reported by the
        # execute that collects it; meanwhile the kernel no longer counts as living.
        if proc is not self._proc or self._escalated:
            return
        detail = proc.death_reason or f"exit code {proc.returncode}"
        reason = f"kernel {self.kernel_id} terminated ({detail})"
        if self._state in (_State.IDLE, _State.BUILT):
            self._mark_dead(reason)
        elif not self._timed_out:
            self._driver_gone = True
            self.gone_reason = reason

    def _mark_dead(self, reason: str) -> None:
        if self._state is _State.DEAD:
            return
        self._state = _State.DEAD
        self.gone_reason = reason
        self._disarm()
        self._on_gone(self)

    def _require(self) -> None:
        if self._state is _State.DEAD:
            raise KernelNotFound(self.gone_reason or f"kernel {self.kernel_id} not found")

    async def _begin(self, phase: str) -> None:
        before = await snapshot(self.workdir)  # the only await: a cancel here changes nothing
        self._before = before
        self._queries += 1
        self._run_id = secrets.token_hex(16)
        self._answered.clear()
        self._answered_base = self._answered_chars = 0
        self._last_answer = None
        self._interrupted = self._escalated = False
        self._phase = phase
        self._timed_out = False
        self._budget = self.limits.exec_timeout
        self._state = _State.RUNNING
        self._arm()

    def _arm(self) -> None:
        if self.limits.exec_timeout <= 0:
            return
        loop = asyncio.get_running_loop()
        self._armed_at = loop.time()
        self._watchdog = loop.create_task(self._expire(max(self._budget, 0.0)))

    def _disarm(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
            self._budget -= asyncio.get_running_loop().time() - self._armed_at

    async def _expire(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._timed_out = True
        self._proc.kill()

    async def _wait(self, proc: DriverProcess, until: float, eager: bool = False) -> None:
        loop = asyncio.get_running_loop()
        while not proc.has_control() and not proc.over_cap():
            if eager and proc.has_output():
                until = min(until, loop.time() + EAGER_COALESCE)
                eager = False  # coalesce once, then answer
            left = until - loop.time()
            if left <= 0:
                return
            proc.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.changed.wait(), left)

    async def _collect(self, eager: bool = False) -> RunResult:
        """Output until the flush window closes or the run changes state.

        Safe to cancel (aiohttp cancels the handler of a client that went away): output
        already taken waits in ``_carry``, and a conclusion runs to its end and is kept for
        the next caller, so nothing is lost.
        """
        proc = self._proc
        loop = asyncio.get_running_loop()
        until = loop.time() + self._settings.flush_window
        if eager and self._carry:
            until = loop.time() + EAGER_COALESCE
        self._collecting = True
        try:
            while True:
                await self._wait(proc, until, eager)
                got, control = proc.take()
                self._carry += got
                if control is None or control.kind in ("finished", "waiting-input", "died"):
                    break
        finally:
            self._collecting = False
        items, self._carry = self._carry, []
        conclusion = asyncio.ensure_future(self._conclude(items, control))
        try:
            return await asyncio.shield(conclusion)
        except asyncio.CancelledError:
            if control is None:
                self._carry = items + self._carry  # "continued" output goes to the next call
                conclusion.cancel()
            else:
                self._orphan = conclusion
            raise

    async def _conclude(self, items: list[Item], control: Item | None) -> RunResult:
        hide_stdout = self._phase == "build" and self._plan is not None and not self._plan.build_log
        console = _console(i for i in items if not (hide_stdout and i.kind == "stdout"))
        if control is None:
            return self._result("continued", console)
        if self._interrupted and not self._timed_out and control.kind in ("finished", "died"):
            return await self._interrupted_result(console, control)
        if control.kind == "waiting-input":
            self._disarm()
            self._state = _State.WAITING
            wait_opts: dict[str, object] = (
                control.data if is_object(control.data) else {"is_password": False}
            )
            return self._result("waiting-input", console, wait_opts)
        self._disarm()
        if control.kind == "died":
            if self._timed_out:
                self._mark_dead(f"kernel {self.kernel_id} was destroyed: execution time limit")
                return self._result("exec-timeout", console)
            detail = control.reason or f"exit code {control.data}"
            _append(console, "stderr", f"[kernel died: {detail}]\n")
            self._mark_dead(f"kernel {self.kernel_id} terminated ({detail})")
            return self._result("finished", console, files=await self._new_files(console))
        opts = control.data if is_object(control.data) else None
        error = _run_error(opts.pop("error", None)) if opts else None
        if self._phase in ("clean", "build"):
            code = opts.get("exitCode") if opts else 0
            if code:
                _append(console, "stderr", f"[{self._phase} failed: exit code {code}]\n")
                self._steps = []
            elif self._steps:
                self._state = _State.BUILT
                status: RunStatus = "clean-finished" if self._phase == "clean" else "build-finished"
                return self._result(status, console, opts)
        self._state = _State.IDLE
        files = await self._new_files(console)
        return self._result("finished", console, opts, files, error=error)

    async def _interrupted_result(self, console: list[list[Any]], control: Item) -> RunResult:
        """End an interrupted run; a program that had to be killed costs a fresh driver."""
        self._disarm()
        self._interrupted = False
        files = await self._new_files(console)
        if control.kind == "died":
            escalated, self._escalated = self._escalated, False
            if not escalated and self._state is _State.DEAD:
                return self._result("interrupted", console, {"exitCode": INTERRUPTED_EXIT}, files)
            _append(console, "stderr", "[the program did not stop; the kernel was restarted]\n")
            self._attach(await self._relaunch())
        self._state = _State.IDLE
        return self._result("interrupted", console, {"exitCode": INTERRUPTED_EXIT}, files)

    async def _new_files(self, console: list[list[Any]]) -> list[str]:
        changes = await new_files(self.workdir, self._before)
        if changes.notice:
            _append(console, "stderr", changes.notice)
        return changes.files

    def _result(
        self,
        status: RunStatus,
        console: list[list[Any]],
        options: dict[str, Any] | None = None,
        files: Sequence[str] = (),
        *,
        error: RunError | None = None,
        of_run: bool = True,
    ) -> RunResult:
        """An answer; one ``of_run`` is kept for replay (idle output and completions are not)."""
        self._keep_log(console)
        offset = self._answered_base + len(self._answered)
        result = RunResult(status, console, options, list(files), self._run_id, error, offset)
        if of_run:
            self._answered.extend(console)
            self._answered_chars += sum(_chars(item) for item in console)
            while self._answered_chars > REPLAY_CHARS and self._answered:
                self._answered_chars -= _chars(self._answered.popleft())
                self._answered_base += 1
            self._last_answer = result
        return result

    def _keep_log(self, console: list[list[Any]]) -> None:
        for kind, data in console:
            if kind in ("stdout", "stderr") and isinstance(data, str) and data:
                self._log.append(data)
                self._log_chars += len(data)
        while self._log_chars > LOG_CHARS and len(self._log) > 1:
            self._log_chars -= len(self._log.popleft())

    def _idle_result(self) -> RunResult:
        # Output that arrived while idle (background threads, timers) goes to the next call.
        items, _control = self._proc.take()
        return self._result("finished", _console(items), of_run=False)

    async def _complete(self, code: str, opts: dict[str, Any]) -> RunResult:
        if self._state is not _State.IDLE:
            return self._result("finished", [["completion", []]], of_run=False)
        proc = self._proc
        proc.send("complete", {"code": code, "options": opts})
        until = asyncio.get_running_loop().time() + COMPLETE_TIMEOUT
        items: list[Item] = []
        candidates: list[str] = []
        while True:
            await self._wait(proc, until)
            got, control = proc.take()
            items += got
            if control is None or control.kind in ("completion", "died"):
                if control is not None and is_array(control.data):
                    candidates = [str(c) for c in control.data]
                break
        return self._result(
            "finished", [*_console(items), ["completion", candidates]], of_run=False
        )


def _chars(item: list[Any]) -> int:
    data = item[1] if len(item) > 1 else ""
    return len(data) if isinstance(data, str) else len(str(data))


def _run_error(data: object) -> RunError | None:
    """A driver's ``error`` object, checked (a driver is not trusted)."""
    if not is_object(data):
        return None
    name, value = data.get("name"), data.get("value")
    if not isinstance(name, str) or not isinstance(value, str):
        return None
    lines = str_list(data.get("traceback")) or []
    return {"name": name[:256], "value": value[:65536], "traceback": lines[:1000]}


def _append(console: list[list[Any]], kind: str, data: Any) -> None:
    if kind in ("stdout", "stderr") and console and console[-1][0] == kind:
        console[-1][1] += data
    else:
        console.append([kind, data])


def _console(items: Any) -> list[list[Any]]:
    """Console pairs, with adjacent chunks of one stream merged."""
    console: list[list[Any]] = []
    for item in items:
        _append(console, item.kind, item.data)
    return console


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _cpu_ms(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        ticks = sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
        return ticks * 1000 // os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0
