"""Interop scenario: this SDK's PUBLIC API against a real Backend.AI manager and Docker agent.

Run by ``tests/interop/run-backendai.sh`` (``make interop-backendai``), which brings the lab
up and exports ``BACKEND_ENDPOINT``, ``BACKEND_ACCESS_KEY`` and ``BACKEND_SECRET_KEY``.
Standalone, against a lab that is already up::

    . /tmp/bai-lab/env && .venv/bin/python tests/interop/backendai_scenario.py

The sync front (Session/Kernel) runs first, then the async front (AsyncSession/AsyncKernel),
then the README's two examples as subprocesses. At most ONE compute session exists at any
time (the lab agent has 2 CPUs and another user may hold one), and every session this
scenario creates is destroyed, also when a step fails. One line per step; the last line
is ``N/M steps ok``. Exit status: 0 when every step passed, 1 otherwise, 2 when the
environment is not configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sorna_sdk import (
    APIConfig,
    AsyncKernel,
    AsyncSession,
    AuthenticationError,
    ConfigurationError,
    ExecutionResult,
    FileList,
    Kernel,
    KernelNotFoundError,
    Session,
    SessionEvent,
    SornaError,
)

IMAGE = os.environ.get("BAI_RUN_IMAGE") or "python"
EXPECTED_VERSION = "v9.20250722"
README_TOKEN = "abc-session"
#: What the README's comment says the sync example prints.
README_PRINTS = "[['stdout', 'hello world\\n']]"

TICKS = 'import time\nfor i in range(3):\n    print("tick", i, flush=True)\n    time.sleep(2)'
TICKS_OUT = "tick 0\ntick 1\ntick 2\n"
ASK = 'x = input("who? ")\nprint("hi", x)'
LOOP = "while True:\n    pass"
#: The manager answers a query within its flush window (2 s); bound every follow loop.
FOLLOW_DEADLINE = 30.0
INTERRUPT_DEADLINE = 15.0

README_SYNC = """\
from sorna_sdk import Kernel

kern = Kernel.get_or_create('python', client_token='abc-session')
result = kern.execute('print("hello world")', mode='query')
print(result['console'])          # [['stdout', 'hello world\\n']]
kern.destroy()
"""

README_ASYNC = """\
import asyncio
from sorna_sdk import AsyncKernel

async def main() -> None:
    kern = await AsyncKernel.get_or_create('python', client_token='abc-session')
    result = await kern.execute('print("hello world")', mode='query')
    print(result['console'])
    await kern.destroy()

asyncio.run(main())
"""

_SECRETS: list[str] = []


def redact(text: str) -> str:
    for secret in _SECRETS:
        if secret:
            text = text.replace(secret, "***")
    return text


def short(text: str, limit: int = 170) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def strip_ansi(text: str) -> str:
    """The kernel's tracebacks are IPython's, coloured with ANSI escapes."""
    return re.sub(r"\x1b\[[0-?]*[ -/]*[@-~]", "", text)


class CheckFailed(Exception):
    """A step's expectation did not hold (the message says what was seen)."""


class Skipped(Exception):
    """A step could not run (an earlier step failed)."""


def check(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


class StepState:
    def __init__(self) -> None:
        self.detail = ""


class Report:
    def __init__(self) -> None:
        self.results: list[tuple[str, str, bool]] = []
        self.started = time.monotonic()

    @contextlib.contextmanager
    def step(self, front: str, name: str) -> Iterator[StepState]:
        state = StepState()
        t0 = time.monotonic()
        ok = False
        try:
            yield state
            ok = True
        except Skipped as exc:
            state.detail = f"skipped: {exc}"
        except CheckFailed as exc:
            state.detail = f"{state.detail}; {exc}" if state.detail else str(exc)
        except Exception as exc:
            where = f"{state.detail}; " if state.detail else ""
            state.detail = f"{where}{type(exc).__name__}: {exc}"
        elapsed = time.monotonic() - t0
        self.line(front, name, ok, elapsed, state.detail)

    def line(self, front: str, name: str, ok: bool, elapsed: float, detail: str) -> None:
        self.results.append((front, name, ok))
        label = f"[{front}] {name} "
        text = f"{label:.<28} {'ok' if ok else 'FAIL':<4} {elapsed:5.1f} s  {short(detail)}"
        print(redact(text), flush=True)

    def summary(self) -> bool:
        passed = sum(1 for _, _, ok in self.results if ok)
        total = len(self.results)
        failed = [f"{front}/{name}" for front, name, ok in self.results if not ok]
        took = time.monotonic() - self.started
        shown = failed[:8] + (["…"] if len(failed) > 8 else [])
        tail = f"  failed: {', '.join(shown)}" if failed else ""
        print(redact(f"{passed}/{total} steps ok in {took:.0f} s{tail}"), flush=True)
        return passed == total and total > 0


# -- checks shared by both fronts ------------------------------------------------------


def check_negotiated(state: StepState, version: str, manager: str | None) -> None:
    state.detail = f"{version} manager {manager}"
    check(version == EXPECTED_VERSION, f"expected {EXPECTED_VERSION}")
    check(manager, "the server did not name its manager release")


def check_created(state: StepState, kern: Kernel | AsyncKernel) -> None:
    state.detail = f"{kern.status} {kern.kernel_id[:8]}… created={kern.created}"
    check(kern.status == "RUNNING", f"status {kern.status!r}, expected RUNNING")


def check_query(state: StepState, result: ExecutionResult) -> None:
    state.detail = f"{result.status} exit {result.exit_code} {result['console']!r}"
    check(result["console"] == [["stdout", "hello world\n"]], "console differs")
    check(result.exit_code == 0, "exit code is not 0")


def describe_statuses(statuses: Sequence[str]) -> str:
    """``continued x2→finished``: runs of the same status, counted."""
    runs = [(status, len(list(group))) for status, group in itertools.groupby(statuses)]
    return "→".join(status if n == 1 else f"{status} x{n}" for status, n in runs)


def check_continued(
    state: StepState,
    ran: ExecutionResult,
    first: ExecutionResult,
    statuses: Sequence[str],
    out: str,
) -> None:
    state.detail = (
        f"run(): {ran.status} {ran.stdout!r}; execute(): {describe_statuses(statuses)}"
        f" first stdout {first.stdout!r}"
    )
    check(ran.status == "finished" and ran.stdout == TICKS_OUT, "run() result differs")
    check(first.status == "continued", f"first status {first.status!r}, expected continued")
    check(statuses[-1] == "finished", "the execute() follow did not finish")
    check(out == TICKS_OUT, f"execute() follow stdout {out!r}")


def check_input(state: StepState, result: ExecutionResult) -> None:
    state.detail = f"{result.status} {result.stdout!r}"
    check(result.status == "finished", "not finished")
    check("hi bob" in result.stdout, "stdout lacks 'hi bob'")


def check_error(state: StepState, result: ExecutionResult) -> None:
    stderr = strip_ansi(result.stderr)
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    state.detail = f"{result.status} exit {result.exit_code} stderr …{last!r}"
    check(result.exit_code == 1, "exit code is not 1")
    check("ZeroDivisionError" in stderr, "no ZeroDivisionError in stderr")


def make_upload(tmp: Path, front: str) -> tuple[Path, str, bytes]:
    name = f"interop-{front}-{uuid.uuid4().hex[:6]}.bin"
    payload = f"sorna-sdk interop {front}\n".encode() + bytes(range(256)) * 4
    path = tmp / "up" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path, name, payload


def check_files(
    state: StepState,
    name: str,
    payload: bytes,
    listing: FileList,
    written: list[Path],
    dest: Path,
    single: bytes,
) -> None:
    entry = next((f for f in listing.files if f.filename == name), None)
    target = dest / name
    state.detail = (
        f"{name} listed size {entry.size if entry else None} of {len(listing.files)} entries;"
        f" download wrote {len(written)} file(s); single {len(single)} B"
    )
    check(entry is not None, f"{name} not in list_files('.')")
    assert entry is not None
    check(entry.size == len(payload), f"listed size {entry.size} != {len(payload)}")
    check(target.is_file() and target.read_bytes() == payload, "download() bytes differ")
    check(single == payload, "download_single() bytes differ")


def check_logs(state: StepState, logs: object) -> None:
    text = logs if isinstance(logs, str) else ""
    first = next((line for line in text.splitlines() if line.strip()), "")
    state.detail = f"{len(text)} chars, first line {first!r}"
    check(isinstance(logs, str) and logs.strip(), "logs() is not a non-empty string")


class InterruptTrace:
    def __init__(self) -> None:
        self.first: ExecutionResult | None = None
        self.statuses: list[str] = []
        self.console: list[tuple[str, str]] = []
        self.stopped_after: float | None = None
        self.exit_code: int | None = None
        self.after: ExecutionResult | None = None

    def feed(self, result: ExecutionResult) -> None:
        self.statuses.append(result.status)
        self.console.extend((item.type, str(item.data)) for item in result.console)
        self.exit_code = result.exit_code


def check_interrupt(state: StepState, trace: InterruptTrace) -> None:
    stderr = strip_ansi("".join(d for t, d in trace.console if t == "stderr"))
    stdout = "".join(d for t, d in trace.console if t == "stdout")
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    first = trace.first.status if trace.first else None
    stopped = f"{trace.stopped_after:.1f} s" if trace.stopped_after is not None else "never"
    after = trace.after
    state.detail = (
        f"loop {first}; interrupt() then execute(''): {describe_statuses(trace.statuses)}"
        f" in {stopped}, exit {trace.exit_code}, stderr …{last!r}"
        + (f", stdout {stdout!r}" if stdout else "")
        + f"; print(1) → {after.status if after else None} {after.stdout if after else ''!r}"
    )
    check(first == "continued", "the loop did not report continued first")
    check(trace.stopped_after is not None, f"the loop did not stop within {INTERRUPT_DEADLINE} s")
    check(trace.statuses and trace.statuses[-1] == "finished", "the run did not finish")
    check(trace.exit_code == 1, "the interrupted run's exit code is not 1")
    check("KeyboardInterrupt" in stderr, "no KeyboardInterrupt in stderr")
    check(after is not None and after.stdout == "1\n", "the kernel did not run print(1)")


def check_stream(state: StepState, plain: ExecutionResult, asked: ExecutionResult) -> None:
    state.detail = f"{plain.status} {plain.stdout!r}; with input: {asked.status} {asked.stdout!r}"
    check(plain.status == "finished" and plain.stdout == "streamed 42\n", "stdout differs")
    check(asked.status == "finished" and "hi carol" in asked.stdout, "input run differs")


def check_wrong_secret(state: StepState, exc: BaseException | None) -> None:
    if exc is None:
        raise CheckFailed("authorize() with a wrong secret succeeded")
    status = getattr(exc, "status", None)
    state.detail = f"{type(exc).__name__} {status}: {exc}"
    check(isinstance(exc, AuthenticationError), "not AuthenticationError")
    check(status == 401, "status is not 401")


def check_unknown(state: StepState, exc: BaseException | None) -> None:
    if exc is None:
        raise CheckFailed("get_info() of an unknown session succeeded")
    state.detail = f"{type(exc).__name__} {getattr(exc, 'status', None)}: {exc}"
    check(isinstance(exc, KernelNotFoundError), "not KernelNotFoundError")


def describe_stats(stats: dict[str, Any] | None) -> str:
    text = repr(stats)
    if len(text) <= 60:
        return f"stats {text}"
    keys = sorted(stats or {})
    return f"stats with {len(keys)} keys ({', '.join(keys[:5])}, …)"


def describe_events(events: list[SessionEvent], error: BaseException | None) -> str:
    names = [e.event for e in events]
    reasons = {e.event: e.reason for e in events if e.reason}
    text = "→".join(names) if names else "none"
    if reasons:
        text += " reasons " + ", ".join(f"{k}={v}" for k, v in reasons.items())
    if error is not None:
        text += f" (stream error {type(error).__name__}: {error})"
    return text


def check_events(
    state: StepState, events: list[SessionEvent], error: BaseException | None, done: bool
) -> None:
    state.detail = describe_events(events, error) + ("" if done else "; stream still open")
    names = [e.event for e in events]
    check(error is None, "the event stream failed")
    check("session_terminated" in names, "no session_terminated event")


# -- the sync front --------------------------------------------------------------------


def sync_front(report: Report, config: APIConfig, tmp: Path) -> None:
    front = "sync"
    token = f"interop-sync-{uuid.uuid4().hex[:8]}"
    kern: Kernel | None = None
    destroyed = False
    with Session(config) as s:
        try:
            with report.step(front, "negotiate") as st:
                version = s.negotiate()
                check_negotiated(st, version, s.server.manager if s.server else None)

            with report.step(front, "create") as st:
                kern = Kernel.get_or_create(IMAGE, client_token=token, session=s)
                check_created(st, kern)

            def need() -> Kernel:
                if kern is None or kern.status != "RUNNING":
                    raise Skipped("no running session")
                return kern

            with report.step(front, "query") as st:
                check_query(st, need().execute('print("hello world")'))

            with report.step(front, "continued") as st:
                k = need()
                ran = k.run(TICKS)
                first = k.execute(TICKS)
                statuses, out = [first.status], first.stdout
                deadline = time.monotonic() + FOLLOW_DEADLINE
                result = first
                while not result.done and time.monotonic() < deadline:
                    result = k.execute("")
                    statuses.append(result.status)
                    out += result.stdout
                check_continued(st, ran, first, statuses, out)

            with report.step(front, "input") as st:
                check_input(st, need().run(ASK, input=["bob"]))

            with report.step(front, "error") as st:
                check_error(st, need().run("1/0"))

            with report.step(front, "files") as st:
                k = need()
                path, name, payload = make_upload(tmp, front)
                k.upload([path], base_dir=path.parent)
                listing = k.list_files(".")
                dest = tmp / "down-sync"
                written = k.download([name], dest)
                single = k.download_single(name)
                check_files(st, name, payload, listing, written, dest, single)

            with report.step(front, "logs") as st:
                check_logs(st, need().logs())

            with report.step(front, "interrupt") as st:
                k = need()
                trace = InterruptTrace()
                trace.first = k.execute(LOOP)
                k.interrupt()
                t0 = time.monotonic()
                result = trace.first
                while not result.done and time.monotonic() - t0 < INTERRUPT_DEADLINE:
                    result = k.execute("")
                    trace.feed(result)
                if result.done:
                    trace.stopped_after = time.monotonic() - t0
                    trace.after = k.run("print(1)")
                check_interrupt(st, trace)

            with report.step(front, "stream_execute") as st:
                k = need()
                with k.stream_execute('print("streamed", 6*7)') as stream:
                    plain = stream.result()
                with k.stream_execute(ASK) as stream:
                    asked = stream.result(input=["carol"])
                check_stream(st, plain, asked)

            with report.step(front, "wrong_secret") as st:
                caught: BaseException | None = None
                with Session(APIConfig.from_env(secret_key="wrong-secret-0000")) as bad:
                    try:
                        bad.authorize()
                    except SornaError as exc:
                        caught = exc
                check_wrong_secret(st, caught)

            with report.step(front, "unknown_session") as st:
                caught = None
                try:
                    Kernel("no-such-session-xyz", session=s).get_info()
                except SornaError as exc:
                    caught = exc
                check_unknown(st, caught)

            events: list[SessionEvent] = []
            stream_error: list[BaseException] = []
            listener: threading.Thread | None = None
            if kern is not None:
                target = kern

                def listen() -> None:
                    try:
                        with target.events(reconnect=False) as stream:
                            for event in stream:
                                events.append(event)
                    except BaseException as exc:  # reported by the events step
                        stream_error.append(exc)

                listener = threading.Thread(target=listen, name="events", daemon=True)
                listener.start()
                time.sleep(1.0)  # let the stream subscribe before the session goes away

            with report.step(front, "destroy") as st:
                k = need()
                stats = k.destroy()
                destroyed = True
                st.detail = describe_stats(stats.stats if stats else None)
                seen = []
                deadline = time.monotonic() + 15.0
                gone: BaseException | None = None
                while time.monotonic() < deadline:
                    try:
                        seen.append(str(k.get_info().get("status")))
                    except KernelNotFoundError as exc:
                        gone = exc
                        break
                    time.sleep(0.5)
                st.detail += f"; get_info after: {describe_statuses(seen) or '-'}"
                st.detail += f" → {type(gone).__name__}" if gone else " (still found)"
                check(stats is not None and stats.stats is not None, "destroy() reported no stats")
                check(gone is not None, "get_info() kept answering after destroy")

            with report.step(front, "events") as st:
                if listener is None:
                    raise Skipped("no session")
                listener.join(timeout=15.0)
                check_events(
                    st, events, stream_error[0] if stream_error else None, not listener.is_alive()
                )
        finally:
            cleanup_sync(s, kern if not destroyed else None, token)


def cleanup_sync(s: Session, kern: Kernel | None, token: str) -> None:
    """Destroy what this front may have left behind (by id, else by name), and wait until
    the manager has let it go, so that the next front never runs beside it."""
    target = kern if kern is not None else Kernel(token, session=s)
    try:
        target.destroy(forced=True)
        print(f"[sync] cleanup: destroyed {target.kernel_id[:8]}…", flush=True)
    except KernelNotFoundError:
        return
    except SornaError as exc:
        print(redact(f"[sync] cleanup: destroy failed: {type(exc).__name__}: {exc}"), flush=True)
        return
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        try:
            target.get_info()
        except KernelNotFoundError:
            return
        except SornaError:
            pass
        time.sleep(0.5)
    print(f"[sync] cleanup: {target.kernel_id[:8]}… is still listed after 30 s", flush=True)


# -- the async front -------------------------------------------------------------------


async def async_front(report: Report, config: APIConfig, tmp: Path) -> None:
    front = "async"
    token = f"interop-async-{uuid.uuid4().hex[:8]}"
    kern: AsyncKernel | None = None
    destroyed = False
    listener: asyncio.Task[None] | None = None
    async with AsyncSession(config) as s:
        try:
            with report.step(front, "negotiate") as st:
                version = await s.negotiate()
                check_negotiated(st, version, s.server.manager if s.server else None)

            with report.step(front, "create") as st:
                kern = await AsyncKernel.get_or_create(IMAGE, client_token=token, session=s)
                check_created(st, kern)

            def need() -> AsyncKernel:
                if kern is None or kern.status != "RUNNING":
                    raise Skipped("no running session")
                return kern

            with report.step(front, "query") as st:
                check_query(st, await need().execute('print("hello world")'))

            with report.step(front, "continued") as st:
                k = need()
                ran = await k.run(TICKS)
                first = await k.execute(TICKS)
                statuses, out = [first.status], first.stdout
                deadline = time.monotonic() + FOLLOW_DEADLINE
                result = first
                while not result.done and time.monotonic() < deadline:
                    result = await k.execute("")
                    statuses.append(result.status)
                    out += result.stdout
                check_continued(st, ran, first, statuses, out)

            with report.step(front, "input") as st:
                check_input(st, await need().run(ASK, input=["bob"]))

            with report.step(front, "error") as st:
                check_error(st, await need().run("1/0"))

            with report.step(front, "files") as st:
                k = need()
                path, name, payload = make_upload(tmp, front)
                await k.upload([path], base_dir=path.parent)
                listing = await k.list_files(".")
                dest = tmp / "down-async"
                written = await k.download([name], dest)
                single = await k.download_single(name)
                check_files(st, name, payload, listing, written, dest, single)

            with report.step(front, "logs") as st:
                check_logs(st, await need().logs())

            with report.step(front, "interrupt") as st:
                k = need()
                trace = InterruptTrace()
                trace.first = await k.execute(LOOP)
                await k.interrupt()
                t0 = time.monotonic()
                result = trace.first
                while not result.done and time.monotonic() - t0 < INTERRUPT_DEADLINE:
                    result = await k.execute("")
                    trace.feed(result)
                if result.done:
                    trace.stopped_after = time.monotonic() - t0
                    trace.after = await k.run("print(1)")
                check_interrupt(st, trace)

            with report.step(front, "stream_execute") as st:
                k = need()
                async with await k.stream_execute('print("streamed", 6*7)') as stream:
                    plain = await stream.result()
                async with await k.stream_execute(ASK) as stream:
                    asked = await stream.result(input=["carol"])
                check_stream(st, plain, asked)

            with report.step(front, "wrong_secret") as st:
                caught: BaseException | None = None
                async with AsyncSession(APIConfig.from_env(secret_key="wrong-secret-0000")) as bad:
                    try:
                        await bad.authorize()
                    except SornaError as exc:
                        caught = exc
                check_wrong_secret(st, caught)

            with report.step(front, "unknown_session") as st:
                caught = None
                try:
                    await AsyncKernel("no-such-session-xyz", session=s).get_info()
                except SornaError as exc:
                    caught = exc
                check_unknown(st, caught)

            events: list[SessionEvent] = []
            stream_error: list[BaseException] = []
            if kern is not None:
                target = kern

                async def listen() -> None:
                    try:
                        async with target.events(reconnect=False) as stream:
                            async for event in stream:
                                events.append(event)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # reported by the events step
                        stream_error.append(exc)

                listener = asyncio.create_task(listen())
                await asyncio.sleep(1.0)

            with report.step(front, "destroy") as st:
                k = need()
                stats = await k.destroy()
                destroyed = True
                st.detail = describe_stats(stats.stats if stats else None)
                seen = []
                deadline = time.monotonic() + 15.0
                gone: BaseException | None = None
                while time.monotonic() < deadline:
                    try:
                        seen.append(str((await k.get_info()).get("status")))
                    except KernelNotFoundError as exc:
                        gone = exc
                        break
                    await asyncio.sleep(0.5)
                st.detail += f"; get_info after: {describe_statuses(seen) or '-'}"
                st.detail += f" → {type(gone).__name__}" if gone else " (still found)"
                check(stats is not None and stats.stats is not None, "destroy() reported no stats")
                check(gone is not None, "get_info() kept answering after destroy")

            with report.step(front, "events") as st:
                if listener is None:
                    raise Skipped("no session")
                done_in_time = True
                try:
                    await asyncio.wait_for(asyncio.shield(listener), timeout=15.0)
                except asyncio.TimeoutError:
                    done_in_time = False
                check_events(st, events, stream_error[0] if stream_error else None, done_in_time)
        finally:
            if listener is not None and not listener.done():
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await listener
            await cleanup_async(s, kern if not destroyed else None, token)


async def cleanup_async(s: AsyncSession, kern: AsyncKernel | None, token: str) -> None:
    target = kern if kern is not None else AsyncKernel(token, session=s)
    try:
        await target.destroy(forced=True)
        print(f"[async] cleanup: destroyed {target.kernel_id[:8]}…", flush=True)
    except KernelNotFoundError:
        return
    except SornaError as exc:
        print(redact(f"[async] cleanup: destroy failed: {type(exc).__name__}: {exc}"), flush=True)
        return
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        try:
            await target.get_info()
        except KernelNotFoundError:
            return
        except SornaError:
            pass
        await asyncio.sleep(0.5)
    print(f"[async] cleanup: {target.kernel_id[:8]}… is still listed after 30 s", flush=True)


# -- the README examples ---------------------------------------------------------------


def settle_name(s: Session, name: str, *, destroy_live: bool, timeout: float = 30.0) -> list[str]:
    """Wait until no session called ``name`` is TERMINATING; return the statuses seen.

    The manager answers a create with ``reuseIfExists`` by handing back a session of that
    name that is still TERMINATING (and a README example then executes in a dying
    session), so an example must not start before it is gone. ``destroy_live``: also
    destroy a live one (what an example that failed half-way left behind).
    """
    seen: list[str] = []
    leftover = Kernel(name, session=s)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = str(leftover.get_info().get("status"))
        except KernelNotFoundError:
            return seen
        seen.append(status)
        if status not in ("TERMINATING", "TERMINATED", "CANCELLED"):
            if not destroy_live:
                return seen  # a live session: the example reuses it
            with contextlib.suppress(KernelNotFoundError):
                leftover.destroy(forced=True)
            seen.append("destroyed")
        time.sleep(0.5)
    raise CheckFailed(f"a session named {name!r} is still there: {describe_statuses(seen)}")


def readme_examples(report: Report, config: APIConfig) -> None:
    for name, code in (("sync_example", README_SYNC), ("async_example", README_ASYNC)):
        with report.step("readme", name) as st, Session(config) as s:
            before = settle_name(s, README_TOKEN, destroy_live=False)
            if before:
                st.detail = f"(found an earlier {README_TOKEN}: {describe_statuses(before)}) "
            try:
                proc = subprocess.run(
                    [sys.executable, "-c", code],
                    capture_output=True,
                    text=True,
                    timeout=90,
                    env=os.environ.copy(),
                )
            finally:
                # A failed example may leave its session behind: never hold two.
                after = settle_name(s, README_TOKEN, destroy_live=True)
            if "destroyed" in after:
                st.detail += "(it left its session behind; destroyed) "
            out = proc.stdout.strip()
            err = proc.stderr.strip().splitlines()
            st.detail += f"exit {proc.returncode}, printed {out!r}"
            if proc.returncode != 0 and err:
                st.detail += f", stderr …{err[-1]!r}"
                Path(tempfile.gettempdir(), f"bai-interop-readme-{name}.stderr").write_text(
                    redact(proc.stderr)
                )
            if out == README_PRINTS:
                st.detail += " (as the README shows)"
            check(proc.returncode == 0, "the example failed")
            check("hello world" in out, "it did not print hello world")


# -- main ------------------------------------------------------------------------------


def main() -> int:
    try:
        config = APIConfig.from_env()
    except ConfigurationError as exc:
        print(f"backendai_scenario: {exc} (source /tmp/bai-lab/env first)", file=sys.stderr)
        return 2
    _SECRETS.append(config.secret_key)
    print(
        redact(
            f"Backend.AI interop: {config.endpoint} as {config.access_key}, image {IMAGE!r}, "
            f"version {config.version!r}"
        ),
        flush=True,
    )
    report = Report()
    with tempfile.TemporaryDirectory(prefix="bai-interop-") as tmpdir:
        tmp = Path(tmpdir)
        sync_front(report, config, tmp)
        asyncio.run(async_front(report, config, tmp))
        readme_examples(report, config)
    return 0 if report.summary() else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("backendai_scenario: interrupted (after cleaning up)", file=sys.stderr)
        sys.exit(130)
