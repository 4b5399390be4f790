"""Exact run semantics on real kernels: one program at a time (409 for more), interrupts in
every language, deaths noticed at once, restart racing destroy."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from sorna_sdk.local._runtime.errors import KernelBusy, KernelNotFound
from sorna_sdk.local._runtime.kernel import INTERRUPT_GRACE
from sorna_sdk.local._runtime.languages import available_languages
from sorna_sdk.local._runtime.registry import KernelRegistry, LocalKernel

from .helpers import Result, run, text

pytestmark = pytest.mark.timeout(90)

#: (language, code that sets state, a busy loop, code that prints the state)
LOOPS = [
    ("python3", "x = 41", "while True:\n    pass", "print(x + 1)"),
    ("python3", "x = 41", "import time\ntime.sleep(1000)", "print(x + 1)"),
    ("python3", "x = 41", "input('who? ')", "print(x + 1)"),
    ("lua5", "x = 41", "while true do end", "print(x + 1)"),
    ("bash", "echo 42 > state.txt", "while true; do :; done", "cat state.txt"),
    ("bash", "echo 42 > state.txt", "sleep 1000", "cat state.txt"),
    ("nodejs", "var x = 41", "while (true) {}", "console.log(x + 1)"),
    (
        "nodejs",
        "var x = 41",
        "(async () => { await new Promise(() => {}) })()",
        "console.log(x + 1)",
    ),
]


async def until_done(kernel: LocalKernel) -> list[Result]:
    results = [await kernel.execute("query", "", None)]
    while results[-1].status == "continued":
        results.append(await kernel.execute("query", "", None))
    return results


@pytest.mark.parametrize(("lang", "setup", "loop", "check"), LOOPS, ids=lambda v: str(v)[:24])
async def test_interrupt_stops_the_program_within_a_second_and_keeps_state(
    registry: KernelRegistry, lang: str, setup: str, loop: str, check: str
) -> None:
    if lang not in available_languages():
        pytest.skip(f"{lang} is not installed on this machine")
    kernel, _ = await registry.get_or_create("o", "token-1234", lang)
    assert (await run(kernel, setup))[-1].status == "finished"
    first = await kernel.execute("query", loop, None)
    assert first.status in ("continued", "waiting-input")
    started = time.monotonic()
    await kernel.interrupt()
    results = await until_done(kernel)
    elapsed = time.monotonic() - started
    assert results[-1].status == "interrupted", results
    assert results[-1].options == {"exitCode": 130}
    assert elapsed < 1.0 + 0.5, elapsed  # stopped by the language's own means, not killed
    assert "kernel was restarted" not in text(results, "stderr")
    assert text(await run(kernel, check)) == "42\n"
    assert registry.count("o") == 1


async def test_a_program_that_ignores_the_interrupt_is_killed_and_the_kernel_kept(
    registry: KernelRegistry,
) -> None:
    kernel, _ = await registry.get_or_create("o", "token-1234", "python3")
    old_pid = kernel.pid
    stubborn = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(1000)"
    assert (await kernel.execute("query", stubborn, None)).status == "continued"
    started = time.monotonic()
    await kernel.interrupt()
    results = await until_done(kernel)
    assert results[-1].status == "interrupted"
    assert "the kernel was restarted" in text(results, "stderr")
    assert time.monotonic() - started < INTERRUPT_GRACE + 3.0
    assert kernel.pid != old_pid and kernel.alive
    assert text(await run(kernel, "print('fresh')")) == "fresh\n"
    assert registry.get("o", kernel.kernel_id) is kernel


async def test_interrupt_while_idle_is_a_no_op(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("o", "token-1234", "python3")
    await run(kernel, "x = 1")
    await kernel.interrupt()
    assert text(await run(kernel, "print(x)")) == "1\n"


async def test_new_code_while_running_is_refused_not_dropped(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("o", "token-1234", "python3")
    first = await kernel.execute("query", "import time\ntime.sleep(1.5)\nprint('first')", None)
    assert first.status == "continued"
    with pytest.raises(KernelBusy) as info:
        await kernel.execute("query", "print('second')", None)
    assert info.value.status == 409 and info.value.problem == "kernel-busy"
    rest = await until_done(kernel)
    assert text([first, *rest]) == "first\n"
    assert text(await run(kernel, "print('second')")) == "second\n"


async def test_ten_concurrent_long_queries_each_get_their_own_output_or_a_409(
    registry: KernelRegistry,
) -> None:
    kernel, _ = await registry.get_or_create("o", "token-1234", "python3")

    async def caller(index: int) -> tuple[int, str]:
        code = f"import time\ntime.sleep(0.6)\nprint('caller {index}')"
        try:
            results = await run(kernel, code)
        except KernelBusy:
            return index, "busy"
        return index, text(results)

    outcomes = await asyncio.gather(*(caller(i) for i in range(10)))
    ran = [(i, out) for i, out in outcomes if out != "busy"]
    assert ran, outcomes
    for index, output in ran:
        assert output == f"caller {index}\n", outcomes  # never another caller's output
    assert kernel.running


async def test_a_driver_killed_mid_run_is_noticed_at_once(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("o", "token-1234", "python3")
    first = await kernel.execute(
        "query", "print('before', flush=True)\nimport time\ntime.sleep(30)", None
    )
    assert first.status == "continued"
    os.kill(kernel.pid, signal.SIGKILL)
    for _ in range(100):
        if registry.count("o") == 0:
            break
        await asyncio.sleep(0.02)
    assert registry.count("o") == 0  # quota reflects it before anyone asks
    with pytest.raises(KernelNotFound):
        kernel.info()
    last = await kernel.execute("query", "", None)  # the run's end is still delivered
    assert last.console == [["stderr", "[kernel died: exit code -9]\n"]]
    fresh, created = await registry.get_or_create("o", "token-1234", "python3")
    assert created and fresh is not kernel


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def test_restart_racing_destroy_answers_404_and_leaks_nothing(
    registry: KernelRegistry,
) -> None:
    pids: list[int] = []
    for round_ in range(15):
        kernel, _ = await registry.get_or_create("o", f"race-token-{round_}", "python3")
        pids.append(kernel.pid)

        async def restart(k: LocalKernel = kernel) -> str:
            try:
                await k.restart()
                pids.append(k.pid)
                return "ok"
            except KernelNotFound:
                return "404"

        async def destroy(k: LocalKernel = kernel) -> str:
            try:
                await registry.destroy("o", k.kernel_id)
                return "ok"
            except KernelNotFound:
                return "404"

        outcomes = await asyncio.gather(restart(), destroy(), restart(), return_exceptions=True)
        assert all(o in ("ok", "404") for o in outcomes), outcomes  # never anything else
        with pytest.raises(KernelNotFound):
            registry.get("o", kernel.kernel_id)
    await asyncio.sleep(0.3)
    assert [pid for pid in pids if _alive(pid)] == []
    assert registry.count("o") == 0


async def test_a_cancelled_execute_loses_no_output(registry: KernelRegistry) -> None:
    """aiohttp cancels the handler of a client that went away: the next call gets it all."""
    kernel, _ = await registry.get_or_create("o", "token-1234", "python3")
    code = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.3)"
    task = asyncio.create_task(kernel.execute("query", code, None))
    await asyncio.sleep(0.45)  # output 0 and 1 are taken, the flush window is still open
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    rest = await until_done(kernel)
    assert text(rest) == "0\n1\n2\n"
    assert rest[-1].status == "finished"
