"""The driver protocol (``sorna_sdk/local/_runtime/protocol.py``), checked against every driver.

Each case runs once per language record in ``languages.LANGUAGES``, so a new record gets every
case (and fails until it has its :class:`Samples` below); a language this machine cannot run
is skipped. Drivers start as the runtime starts them (``DriverLauncher.spawn``: the same
command line, environment, supervisor and limits) and are driven frame by frame through
``DriverProcess``, below the kernel's run semantics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sorna_sdk.local._runtime.languages import LANGUAGES, Language, available_languages
from sorna_sdk.local._runtime.limits import RuntimeSettings
from sorna_sdk.local._runtime.pool import DriverLauncher
from sorna_sdk.local._runtime.process import DriverProcess, Item
from sorna_sdk.local._runtime.protocol import (
    SIGINT_EXIT,
    TEXT_CHUNK,
    completion_candidates,
    configure_data,
    exec_data,
    exit_code,
    finished_error,
    ready_pid,
    waiting_input_data,
)
from sorna_sdk.local._runtime.sandbox import bwrap_problem

from .helpers import deadline

pytestmark = pytest.mark.timeout(60)

BIG = 200_000  # characters of one write: more than three frames' worth


@dataclass(frozen=True)
class Samples:
    """Code in one language for each check (what each must do is said per field)."""

    hello: str  #: prints "hello\n"
    fail: str  #: an uncaught error (or a failing command): exitCode 1, something on stderr
    order: str  #: "a\n" to stdout, then "b\n" to stderr, then "c\n" to stdout
    big: str  #: one write of BIG "x" and a newline to stdout
    raw: str  #: prints "a\n", then a child process prints "raw\n", then prints "b\n"
    read: str  #: reads a line s and prints "got <s>\n" (no input: reads stdin, prints status)
    busy: str  #: loops forever without output
    #: ``fail``'s error object in ``finished``: (its name, a part of its value); ``None``: the
    #: language reports no error object (an exit status only)
    error: tuple[str, str] | None
    exit3: str | None = None  #: ends the run with status 3, where the language can
    #: (setup code, prefix, a candidate that completing the prefix must offer)
    complete: tuple[str, str, str] | None = None


SAMPLES: dict[str, Samples] = {
    "python3": Samples(
        hello="print('hello')",
        fail="raise ValueError('boom')",
        order="import sys\nprint('a')\nprint('b', file=sys.stderr)\nprint('c')",
        big=f"print('x' * {BIG})",
        raw="import os\nprint('a')\nos.system('echo raw')\nprint('b')",
        read="s = input('? ')\nprint('got', s)",
        busy="while True:\n    pass",
        error=("ValueError", "boom"),
        exit3="raise SystemExit(3)",
        complete=("conformance_value = 1", "conformance_v", "conformance_value"),
    ),
    "lua5": Samples(
        hello="print('hello')",
        fail="error('boom')",
        order="print('a') io.stderr:write('b\\n') io.write('c\\n')",
        big=f"print(string.rep('x', {BIG}))",
        raw="print('a') os.execute('echo raw') print('b')",
        read="local s = io.read() print('got ' .. s)",
        busy="while true do end",
        error=("LuaError", "boom"),
    ),
    "bash": Samples(
        hello="echo hello",
        fail="echo boom >&2; false",
        # Raw output on two pipes: the order across them holds for writes apart in time.
        order="echo a; sleep 0.2; echo b >&2; sleep 0.2; echo c",
        big=f"head -c {BIG} /dev/zero | tr '\\0' x; echo",
        raw="echo a; bash -c 'echo raw'; echo b",
        read='read line; echo "read status $?"',
        busy="while :; do :; done",
        error=None,
        exit3="exit 3",
    ),
    "nodejs": Samples(
        hello="console.log('hello')",
        fail="throw new Error('boom')",
        order="console.log('a'); console.error('b'); process.stdout.write('c\\n')",
        big=f"console.log('x'.repeat({BIG}))",
        raw=(
            "console.log('a');"
            " require('child_process').execSync('echo raw', { stdio: 'inherit' });"
            " console.log('b')"
        ),
        read="const s = input('? '); console.log('got ' + s)",
        busy="while (true) {}",
        error=("Error", "boom"),
    ),
}

LANGS = [pytest.param(lang.name, id=lang.name) for lang in LANGUAGES]
BWRAP_PROBLEM = bwrap_problem()


def record(name: str) -> Language:
    langs = available_languages()
    if name not in langs:
        missing = next(lang for lang in LANGUAGES if lang.name == name).missing()
        pytest.skip(f"{name} is not available here (needs {', '.join(map(str, missing))})")
    assert name in SAMPLES, f"add conformance samples for the new language {name!r}"
    return langs[name]


# ---- talking to a driver frame by frame ---------------------------------------------------------


async def next_control(proc: DriverProcess, timeout: float = 10.0) -> tuple[list[Item], Item]:
    """The items up to the next control item, once that item has arrived.

    Nothing is taken before it arrives: a take is a sync point of its own (raw output would
    be released early), and these checks are about the driver's frames.
    """
    async with deadline(timeout):
        while not proc.has_control():
            proc.changed.clear()
            await proc.changed.wait()
    items, control = proc.take()
    assert control is not None
    return items, control


async def exchange(
    proc: DriverProcess, kind: str, data: Any, timeout: float = 10.0
) -> tuple[list[Item], Item]:
    proc.send(kind, data)
    return await next_control(proc, timeout)


def console(items: list[Item]) -> list[tuple[str, str]]:
    """``(kind, text)`` with adjacent pieces of one stream joined."""
    joined: list[tuple[str, str]] = []
    for item in items:
        if joined and joined[-1][0] == item.kind and isinstance(item.data, str):
            joined[-1] = (item.kind, joined[-1][1] + item.data)
        else:
            joined.append((item.kind, item.data))
    return joined


def text(items: list[Item], kind: str = "stdout") -> str:
    return "".join(i.data for i in items if i.kind == kind and isinstance(i.data, str))


def finished(control: Item, items: list[Item]) -> int:
    """The exit code of a ``finished`` control (anything else fails with the output)."""
    assert control.kind == "finished", (control, console(items))
    assert control.data is None or isinstance(control.data, dict), control.data
    return exit_code(control.data)


@pytest.fixture
async def launcher(tmp_path: Path) -> AsyncIterator[DriverLauncher]:
    started = DriverLauncher(RuntimeSettings(root=tmp_path, pool_size=0))
    yield started
    await started.close()


async def start(launcher: DriverLauncher, lang: str, workdir: Path) -> DriverProcess:
    """Spawn and configure the driver as the runtime does; check ``ready``."""
    proc = launcher.spawn(lang, workdir, 0)
    items, control = await exchange(proc, "configure", configure_data(lang, str(workdir), 0), 20)
    assert control.kind == "ready", (control, console(items))
    pid = ready_pid(control.data)
    assert isinstance(pid, int) and pid > 0, control.data
    assert proc.driver_pid() is not None
    return proc


@pytest.fixture
async def driver(
    request: pytest.FixtureRequest, launcher: DriverLauncher, tmp_path: Path
) -> AsyncIterator[tuple[Language, Samples, DriverProcess]]:
    lang = record(request.param)
    proc = await start(launcher, lang.name, tmp_path)
    yield lang, SAMPLES[lang.name], proc
    await proc.close(grace=1.0)


def with_driver(test: Any) -> Any:
    return pytest.mark.parametrize("driver", LANGS, indirect=True)(test)


Driver = tuple[Language, Samples, DriverProcess]


# ---- the checks ---------------------------------------------------------------------------------


@with_driver
async def test_exec_answers_output_then_finished_with_its_exit_code(driver: Driver) -> None:
    _, samples, proc = driver
    items, control = await exchange(proc, "exec", samples.hello)
    assert finished(control, items) == 0
    assert console(items) == [("stdout", "hello\n")]
    items, control = await exchange(proc, "exec", samples.fail)
    assert finished(control, items) == 1
    assert text(items, "stderr")
    if samples.exit3 is not None:
        items, control = await exchange(proc, "exec", samples.exit3)
        assert finished(control, items) == 3
        assert "error" not in control.data  # an explicit exit is not an error
    items, control = await exchange(proc, "exec", "")  # an empty run still finishes
    assert finished(control, items) == 0


@with_driver
async def test_exec_accepts_the_object_form_and_ignores_unknown_options(driver: Driver) -> None:
    _, samples, proc = driver
    for options in ({}, {"noSuchOption": [1, 2]}, {"lastValue": False, "figureFormats": ["png"]}):
        items, control = await exchange(proc, "exec", {"code": samples.hello, "options": options})
        assert finished(control, items) == 0, options
        assert console(items) == [("stdout", "hello\n")], options
    assert exec_data(samples.fail, {"x": 1}) == {"code": samples.fail, "options": {"x": 1}}
    items, control = await exchange(proc, "exec", exec_data(samples.fail, {"x": 1}))
    assert finished(control, items) == 1
    assert text(items, "stderr")
    items, control = await exchange(proc, "exec", exec_data(samples.hello))  # a plain str
    assert finished(control, items) == 0 and text(items) == "hello\n"


@with_driver
async def test_a_failed_run_reports_its_error_where_the_language_can(driver: Driver) -> None:
    _, samples, proc = driver
    items, control = await exchange(proc, "exec", samples.hello)
    assert finished(control, items) == 0
    assert control.data is None or "error" not in control.data  # success: no error object
    items, control = await exchange(proc, "exec", samples.fail)
    assert finished(control, items) != 0
    error = finished_error(control.data)
    if samples.error is None:
        assert "error" not in control.data, control.data
        return
    assert error is not None, control.data
    assert error == control.data["error"]  # nothing malformed, nothing extra
    name, part = samples.error
    assert error["name"] == name and part in error["value"], error
    lines = error["traceback"]
    assert lines and all(line.endswith("\n") for line in lines), lines
    assert "".join(lines) == text(items, "stderr")  # the text the driver printed


@with_driver
async def test_shell_runs_bash_and_reports_its_status(driver: Driver, tmp_path: Path) -> None:
    _, _, proc = driver
    items, control = await exchange(proc, "shell", "echo sh; pwd; echo warn >&2; exit 3")
    assert control.kind == "finished" and control.data == {"exitCode": 3}
    assert text(items) == f"sh\n{tmp_path}\n"
    assert text(items, "stderr") == "warn\n"
    items, control = await exchange(proc, "shell", "true")
    assert control.kind == "finished" and control.data == {"exitCode": 0}  # always present
    items, control = await exchange(proc, "shell", "kill -TERM $$")
    assert control.kind == "finished" and control.data == {"exitCode": 128 + 15}


@with_driver
async def test_input_round_trip(driver: Driver) -> None:
    lang, samples, proc = driver
    items, control = await exchange(proc, "exec", samples.read)
    if not lang.input:
        assert finished(control, items) == 0, "a language without input sees an empty stdin"
        assert text(items) == "read status 1\n"
        return
    assert control.kind == "waiting-input", (control, console(items))
    assert control.data == {"is_password": False} == waiting_input_data(control.data)
    items, control = await exchange(proc, "input", "yo")
    assert finished(control, items) == 0
    assert text(items).endswith("got yo\n")


@with_driver
async def test_complete_answers_completion(driver: Driver) -> None:
    lang, samples, proc = driver
    if lang.completion:
        assert samples.complete is not None, "a language with completion needs a sample"
        setup, prefix, expected = samples.complete
        items, control = await exchange(proc, "exec", setup)
        assert finished(control, items) == 0
    else:
        prefix, expected = "pri", ""
    options = {"row": 0, "col": len(prefix), "line": prefix, "post": ""}
    items, control = await exchange(proc, "complete", {"code": prefix, "options": options})
    assert control.kind == "completion" and isinstance(control.data, list), control
    assert items == []
    candidates = completion_candidates(control.data)
    if lang.completion:
        assert expected in candidates
    else:
        assert candidates == []


@with_driver
async def test_output_keeps_its_order_across_stdout_and_stderr(driver: Driver) -> None:
    _, samples, proc = driver
    items, control = await exchange(proc, "exec", samples.order)
    assert finished(control, items) == 0
    assert console(items) == [("stdout", "a\n"), ("stderr", "b\n"), ("stdout", "c\n")]


@with_driver
async def test_large_output_comes_in_frames_of_at_most_64_ki_characters(driver: Driver) -> None:
    _, samples, proc = driver
    items, control = await exchange(proc, "exec", samples.big)
    assert finished(control, items) == 0
    assert text(items) == "x" * BIG + "\n"
    sizes = [len(i.data) for i in items if i.kind == "stdout"]
    assert len(sizes) >= -(-(BIG + 1) // TEXT_CHUNK) and max(sizes) <= TEXT_CHUNK, sizes


@with_driver
async def test_raw_output_of_a_child_lands_between_the_frames_around_it(driver: Driver) -> None:
    _, samples, proc = driver
    items, control = await exchange(proc, "exec", samples.raw)
    assert finished(control, items) == 0
    assert console(items) == [("stdout", "a\nraw\nb\n")]


@with_driver
async def test_sigint_ends_a_busy_run_with_exit_code_130(driver: Driver) -> None:
    _, samples, proc = driver
    proc.send("exec", samples.busy)
    await asyncio.sleep(0.3)
    assert not proc.has_control()  # still busy
    started = time.monotonic()
    proc.interrupt()
    items, control = await next_control(proc, timeout=5.0)
    assert time.monotonic() - started < 1.0  # the kernel's grace before it kills the tree
    assert finished(control, items) == SIGINT_EXIT
    items, control = await exchange(proc, "exec", samples.hello)  # the driver lives on
    assert finished(control, items) == 0 and text(items) == "hello\n"


@with_driver
async def test_sigint_while_idle_is_ignored(driver: Driver) -> None:
    _, samples, proc = driver
    proc.interrupt()
    await asyncio.sleep(0.2)
    assert proc.alive and not proc.has_control()
    items, control = await exchange(proc, "exec", samples.hello)
    assert finished(control, items) == 0 and text(items) == "hello\n"


@with_driver
async def test_unknown_kinds_are_ignored(driver: Driver) -> None:
    _, samples, proc = driver
    proc.send("no-such-kind", {"x": 1})
    items, control = await exchange(proc, "exec", samples.hello)
    assert finished(control, items) == 0 and text(items) == "hello\n"


@with_driver
async def test_eof_on_the_control_socket_ends_the_driver(driver: Driver) -> None:
    _, _, proc = driver
    started = time.monotonic()
    await proc.close(grace=5.0)  # SHUT_WR first; the tree is killed only after the grace
    assert time.monotonic() - started < 2.0
    assert not proc.alive and proc.death_reason is None


@pytest.mark.skipif(BWRAP_PROBLEM is not None, reason=f"no bubblewrap: {BWRAP_PROBLEM}")
@pytest.mark.parametrize("lang", LANGS)
async def test_drivers_speak_the_protocol_inside_the_sandbox(tmp_path: Path, lang: str) -> None:
    # Under bwrap only the interpreters' files and the drivers folder are visible: the Python
    # driver must still find the frame codec it shares with the gateway.
    name = record(lang).name
    workdir = tmp_path / "kernels" / "k"
    workdir.mkdir(parents=True)
    settings = RuntimeSettings(root=tmp_path / "kernels", pool_size=0, sandbox="bwrap")
    sandboxed = DriverLauncher(settings)
    try:
        proc = await start(sandboxed, name, workdir)
        samples = SAMPLES[name]
        items, control = await exchange(proc, "exec", samples.raw)
        assert finished(control, items) == 0
        assert console(items) == [("stdout", "a\nraw\nb\n")]
        await proc.close(grace=5.0)
    finally:
        await sandboxed.close()
