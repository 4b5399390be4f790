"""Execution through the Backend.AI dialect end to end: results, continued runs, input,
interrupts, batch builds, completion, concurrency and a busy kernel."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

import sorna_sdk
from sorna_sdk import AsyncKernel, AsyncSession, Completions, ExecutionResult, Kernel, Session
from sorna_sdk.local import RunningGateway
from sorna_sdk.models import BatchOptionsDict

from ..e2e.conftest import assert_run_at_once, running_gateway
from .conftest import NEWEST, OLDEST, unique

pytestmark = pytest.mark.timeout(60)

#: About 2.5 s of output, 100 lines at a time: several flush windows of the gateway.
TICKS = 2500
TICKER = (
    "import time\n"
    f"for i in range({TICKS}):\n"
    "    print(f'tick {i:04d}')\n"
    "    if i % 100 == 99:\n"
    "        time.sleep(0.1)\n"
)
EXPECTED = "".join(f"tick {i:04d}\n" for i in range(TICKS))
FOREVER = "import time\nprint('start', flush=True)\nwhile True:\n    time.sleep(0.05)"


def test_query_result(session: Session) -> None:
    with Kernel.get_or_create("python", unique("query"), session=session) as kern:
        result = kern.execute('print("hello world")')
        assert result["console"] == [["stdout", "hello world\n"]]
        assert result.status == "finished"
        assert result.exit_code == 0
        assert result.run_id
        mixed = kern.execute(
            "import sys\nprint('a', flush=True)\nprint('b', file=sys.stderr, flush=True)\n"
            "print('c')"
        )
        assert [item.type for item in mixed.console][:2] == ["stdout", "stderr"]
        assert mixed.stdout == "a\nc\n" and mixed.stderr == "b\n"


def test_error_in_user_code(session: Session) -> None:
    with Kernel.get_or_create("python", unique("error"), session=session) as kern:
        result = kern.execute("1 / 0")
        assert result.status == "finished"
        assert "ZeroDivisionError" in result.stderr
        assert result.exit_code == 1
        assert kern.execute("print('alive')").stdout == "alive\n"


async def test_continued_runs_lose_nothing(gateway: RunningGateway) -> None:
    """The same 2.5 s program on four sessions at once, at both versions: collected by run(),
    and by hand with execute('')."""

    async def with_run(session: AsyncSession) -> None:
        name = unique("tick-run")
        async with await AsyncKernel.get_or_create("python", name, session=session) as kern:
            result = await kern.run(TICKER)
            assert result.status == "finished"
            assert result.stdout == EXPECTED

    async def by_hand(session: AsyncSession) -> None:
        name = unique("tick-man")
        async with await AsyncKernel.get_or_create("python", name, session=session) as kern:
            results = [await kern.execute(TICKER)]
            while results[-1].status == "continued":
                results.append(await kern.execute(""))
            assert results[-1].status == "finished"
            assert len(results) >= 3, "a 2.5 s run must come back continued more than once"
            assert all(r.status == "continued" for r in results[:-1])
            run_ids = {r.run_id for r in results}
            assert len(run_ids) == 1 and None not in run_ids, run_ids  # one run, named
            assert "".join(r.stdout for r in results) == EXPECTED
            assert (await kern.execute("print('next')")).stdout == "next\n"

    async with (
        AsyncSession(gateway.config(version=NEWEST)) as newest,
        AsyncSession(gateway.config(version=OLDEST)) as oldest,
    ):
        start = time.monotonic()
        await asyncio.gather(with_run(newest), by_hand(newest), with_run(oldest), by_hand(oldest))
        assert time.monotonic() - start >= 2.0


def test_input_with_run(session: Session) -> None:
    with Kernel.get_or_create("python", unique("input"), session=session) as kern:
        result = kern.run(
            'a = input("who? ")\nb = input("and? ")\nprint("hi", a, b)', input=["bob", "carol"]
        )
        assert result.status == "finished"
        assert result.stdout == "who? and? hi bob carol\n"


def test_input_with_execute_and_passwords(session: Session) -> None:
    prompts: list[ExecutionResult] = []

    def answer(waiting: ExecutionResult) -> str:
        prompts.append(waiting)
        return "hunter2"

    with Kernel.get_or_create("python", unique("input2"), session=session) as kern:
        first = kern.execute('name = input("name? ")\nprint("hello", name)')
        assert first.status == "waiting-input"
        assert first.stdout == "name? "
        assert first.is_password is False
        second = kern.execute("Bob")
        assert second.status == "finished"
        assert second.stdout == "hello Bob\n"
        hidden = kern.run("import getpass\nprint(len(getpass.getpass('pw: ')))", input=answer)
        assert hidden.stdout.endswith("7\n")
        assert prompts and prompts[0].is_password is True


def test_interrupt_ends_a_continued_run(session: Session) -> None:
    with Kernel.get_or_create("python", unique("intr"), session=session) as kern:
        first = kern.execute(FOREVER)
        assert first.status == "continued"
        assert first.stdout == "start\n"
        kern.interrupt()
        start = time.monotonic()
        last = kern.execute("")
        for _ in range(20):
            if last.done:
                break
            last = kern.execute("")
        assert last.status in ("interrupted", "finished"), last
        assert time.monotonic() - start < 5
        if last.status == "finished":  # as Backend.AI reports it
            assert "KeyboardInterrupt" in last.stderr
            assert last.exit_code == 130
        assert kern.execute("print('after')").stdout == "after\n"


def test_interrupt_from_elsewhere_ends_run(gateway: RunningGateway, session: Session) -> None:
    with Kernel.get_or_create("python", unique("intr2"), session=session) as kern:
        outcome: list[ExecutionResult | BaseException] = []

        def runner() -> None:
            try:
                outcome.append(kern.run(FOREVER))
            except BaseException as exc:  # reported below
                outcome.append(exc)

        thread = threading.Thread(target=runner, daemon=True)
        thread.start()
        time.sleep(0.7)
        assert thread.is_alive(), outcome
        with Session(gateway.config(version=session.api_version)) as other:
            Kernel(kern.kernel_id, session=other).interrupt()
        thread.join(10)
        assert not thread.is_alive()
        (result,) = outcome
        assert isinstance(result, ExecutionResult), result
        assert result.status in ("interrupted", "finished")
        assert result.stdout.startswith("start\n")


def test_exec_timeout_ends_the_run_and_the_session(
    gateway: RunningGateway, session: Session
) -> None:
    """The gateway has no exec-timeout setting for Backend.AI creates (the dialect has no such
    field), so the kernel is made through the Sorna dialect with a 1 s limit and run here."""
    with Session(gateway.config()) as sorna:
        made = Kernel.get_or_create("python3", unique("timeout"), exec_timeout=1, session=sorna)
    kern = Kernel(made.kernel_id, session=session)
    start = time.monotonic()
    result = kern.run(FOREVER)
    assert result.status == "exec-timeout"
    assert result.stdout.startswith("start\n")
    assert 0.9 < time.monotonic() - start < 10
    with pytest.raises(sorna_sdk.KernelNotFoundError):
        kern.get_info()


def test_the_gateways_exec_timeout_applies_to_backendai_sessions(version: str) -> None:
    with (
        running_gateway(exec_timeout=1, pool_size=0) as short,
        Session(short.config(version=version)) as session,
    ):
        kern = Kernel.get_or_create("python", unique("short"), session=session)
        start = time.monotonic()
        result = kern.run(FOREVER)
        assert result.status == "exec-timeout"
        assert result.stdout.startswith("start\n")
        assert 0.9 < time.monotonic() - start < 10
        with pytest.raises(sorna_sdk.KernelNotFoundError):
            kern.get_info()


def test_second_query_while_running_is_kernel_busy(session: Session) -> None:
    with Kernel.get_or_create("python", unique("busy"), session=session) as kern:
        assert kern.execute("import time\ntime.sleep(30)").status == "continued"
        with pytest.raises(sorna_sdk.KernelBusyError) as info:
            Kernel(kern.kernel_id, session=session).execute("print(2)")
        assert info.value.status == 409
        assert info.value.type.startswith("https://api.backend.ai/probs/")
        # The handle that started the run refuses new code before sending it.
        with pytest.raises(sorna_sdk.InvalidArgumentError):
            kern.execute("print(3)")
        kern.interrupt()
        last = kern.execute("")
        for _ in range(20):
            if last.done:
                break
            last = kern.execute("")
        assert last.done
        assert kern.execute("print(4)").stdout == "4\n"


def test_batch_build_then_exec(session: Session, tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "util.py").write_text("def shout(s):\n    return s.upper()\n")
    (tmp_path / "main.py").write_text(
        "import sys\nsys.path.insert(0, 'lib')\nfrom util import shout\nprint(shout('ran'))\n"
    )
    opts: BatchOptionsDict = {"build": "echo built", "buildLog": True, "exec": "python3 main.py"}
    with Kernel.get_or_create("python", unique("batch"), session=session) as kern:
        kern.upload(["main.py", "lib/util.py"], base_dir=tmp_path)
        merged = kern.run("", mode="batch", opts=opts)
        assert merged.status == "finished"
        assert "built\n" in merged.stdout
        assert merged.stdout.endswith("RAN\n")
        steps = [kern.execute("", mode="batch", opts=opts)]
        for _ in range(50):
            if steps[-1].done:
                break
            steps.append(kern.execute("", mode="batch", opts=opts))
        statuses = [s.status for s in steps]
        assert "build-finished" in statuses, statuses
        assert statuses[-1] == "finished"
        assert "".join(s.stdout for s in steps).endswith("RAN\n")


def test_complete(session: Session) -> None:
    with Kernel.get_or_create("python", unique("complete"), session=session) as kern:
        kern.execute("alpha_value = 1\nalpha_other = 2")
        completions = kern.complete("alpha_", row=0, col=6)
        assert isinstance(completions, Completions)
        assert {"alpha_value", "alpha_other"} <= set(completions.suggestions)
        via_execute = kern.execute(
            "alpha_", mode="complete", opts={"row": 0, "col": 6, "line": "alpha_"}
        )
        (item,) = via_execute.console
        assert item.type == "completion"
        assert {"alpha_value", "alpha_other"} <= set(item.data)


async def test_executes_on_different_sessions_run_at_once(gateway: RunningGateway) -> None:
    async with AsyncSession(gateway.config(version=NEWEST)) as session:
        await _run_at_once(session)


async def _run_at_once(session: AsyncSession) -> None:
    kernels = await asyncio.gather(
        *(
            AsyncKernel.get_or_create("python", unique(f"conc{i}"), session=session)
            for i in range(5)
        )
    )
    assert len({k.kernel_id for k in kernels}) == 5
    await assert_run_at_once(kernels, sleep=0.6, limit=2.5)
