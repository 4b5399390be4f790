"""Execution behaviour end to end: input, long output, timeouts, crashes, concurrency, memory."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

import sorna_sdk
from sorna_sdk import AsyncKernel, AsyncSession, ExecutionResult, Kernel, Session

from ..local.helpers import kernel_processes
from .conftest import assert_run_at_once, running_gateway, session_on


def test_input_round_trip_with_execute(sorna_session: Session) -> None:
    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        first = kern.execute('name = input("name? ")\nprint("hello", name)')
        assert first.status == "waiting-input"
        assert first.stdout == "name? "
        assert first.is_password is False
        second = kern.execute("Bob")
        assert second.status == "finished"
        assert second.stdout == "hello Bob\n"


def test_password_input_through_run(sorna_session: Session) -> None:
    prompts: list[ExecutionResult] = []

    def answer(waiting: ExecutionResult) -> str:
        prompts.append(waiting)
        return "hunter2"

    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        result = kern.run("import getpass\nprint(len(getpass.getpass('pw: ')))", input=answer)
    assert result.status == "finished"
    assert result.stdout.endswith("7\n")
    assert prompts[0].is_password is True
    assert "pw: " in prompts[0].stdout


def test_lua_input(sorna_session: Session) -> None:
    with Kernel.get_or_create("lua5", session=sorna_session) as kern:
        result = kern.run('local s = io.read()\nprint("got " .. s)', input=["moon"])
    assert result.stdout.endswith("got moon\n")


def test_ten_thousand_lines_over_five_seconds_arrive_complete_and_in_order(
    sorna_session: Session,
) -> None:
    code = (
        "import time, sys\n"
        "for i in range(10000):\n"
        "    print(f'line {i:05d}')\n"
        "    if i % 500 == 499:\n"
        "        time.sleep(0.25)\n"
    )
    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        results = [kern.execute(code)]
        while results[-1].status == "continued":
            results.append(kern.execute(""))
    assert results[-1].status == "finished"
    assert len(results) >= 2, "a 5 s run must come back as continued at least once"
    text = "".join(r.stdout for r in results)
    assert text == "".join(f"line {i:05d}\n" for i in range(10000))


def test_exec_timeout_kills_the_kernel_and_its_children(sorna_session: Session) -> None:
    kern = Kernel.get_or_create("python3", exec_timeout=1, session=sorna_session)
    start = time.monotonic()
    result = kern.run(
        "import subprocess\nchild = subprocess.Popen(['sleep', '300'])\n"
        "print(child.pid, flush=True)\nwhile True: pass"
    )
    assert result.status == "exec-timeout"
    assert time.monotonic() - start < 10
    assert int(result.stdout.split()[0]) > 0
    deadline = time.monotonic() + 5
    while kernel_processes(kern.kernel_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kernel_processes(kern.kernel_id) == []  # the child (sleep 300) went with it
    with pytest.raises(sorna_sdk.KernelNotFoundError):
        kern.get_info()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_kernel_killed_from_outside_gives_a_clear_error(sorna_session: Session) -> None:
    kern = Kernel.get_or_create("python3", session=sorna_session)
    assert int(kern.execute("import os; print(os.getpid())").stdout) > 0
    for pid in kernel_processes(kern.kernel_id):  # its host pids, from outside the sandbox
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    error: sorna_sdk.SornaError | None = None
    while time.monotonic() < deadline:
        try:
            kern.execute("print(1)")
        except sorna_sdk.KernelNotFoundError as exc:
            error = exc
            break
        time.sleep(0.05)
    assert error is not None, "a dead kernel must be reported"
    assert "terminated" in error.title or "not found" in error.title.lower()  # type: ignore[attr-defined]
    # The gateway keeps serving.
    with Kernel.get_or_create("python3", session=sorna_session) as other:
        assert other.execute("print('ok')").stdout == "ok\n"


async def test_ten_concurrent_get_or_creates_yield_one_kernel(
    sorna_async_session: AsyncSession,
) -> None:
    kernels = await asyncio.gather(
        *(
            AsyncKernel.get_or_create("python3", "same-token-10", session=sorna_async_session)
            for _ in range(10)
        )
    )
    assert len({k.kernel_id for k in kernels}) == 1
    assert sum(1 for k in kernels if k.created) == 1
    await kernels[0].destroy()


async def test_twenty_kernels_execute_at_once(sorna_async_session: AsyncSession) -> None:
    kernels = await asyncio.gather(
        *(AsyncKernel.get_or_create("python3", session=sorna_async_session) for _ in range(20))
    )
    assert len({k.kernel_id for k in kernels}) == 20
    await assert_run_at_once(kernels, sleep=0.5, limit=5)


def test_idle_kernels_are_reaped() -> None:
    with running_gateway(idle_timeout=0.5) as gateway, session_on(gateway) as session:
        kern = Kernel.get_or_create("python3", session=session)
        kern.execute("print(1)")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                kern.get_info()
            except sorna_sdk.KernelNotFoundError:
                break
            time.sleep(0.2)
        else:
            pytest.fail("an idle kernel was not reaped")


def test_stopping_the_gateway_ends_every_kernel() -> None:
    with running_gateway() as gateway, session_on(gateway) as session:
        pids = []
        for lang in ("python3", "lua5"):
            kern = Kernel.get_or_create(lang, session=session)
            kern.execute("import os; print(os.getpid())" if lang == "python3" else "print(1)")
            pids += kernel_processes(kern.kernel_id)
        assert pids and all(_alive(p) for p in pids)
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)


@pytest.fixture
def gateway_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Session]]:
    """The real ``serve`` command in a child process, for measuring its memory."""
    root = tmp_path_factory.mktemp("gw-root")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path_factory.mktemp("xdg"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sorna_sdk.local", "serve", "--port", "0", "--root", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    exports = dict(
        proc.stdout.readline().strip().removeprefix("export ").split("=", 1) for _ in range(3)
    )
    config = sorna_sdk.APIConfig(
        access_key=exports["SORNA_ACCESS_KEY"],
        secret_key=exports["SORNA_SECRET_KEY"],
        endpoint=exports["SORNA_ENDPOINT"],
    )
    try:
        with Session(config) as session:
            yield proc.pid, session
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        proc.stdout.close()


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        match = re.search(r"VmRSS:\s+(\d+) kB", status.read())
    assert match is not None
    return int(match.group(1))


def test_gateway_memory_stays_bounded_over_2000_executions(
    gateway_process: tuple[int, Session],
) -> None:
    pid, session = gateway_process
    with Kernel.get_or_create("python3", session=session) as kern:
        for i in range(300):  # warm up allocator pools and caches
            kern.execute(f"print({i})")
        before = _rss_kib(pid)
        for i in range(2000):
            assert kern.execute(f"print({i})").stdout == f"{i}\n"
        after = _rss_kib(pid)
    growth = after - before
    assert growth < 8 * 1024, f"gateway RSS grew by {growth} KiB over 2,000 executions"


async def test_racing_creates_never_pass_the_concurrency_limit() -> None:
    from sorna_sdk.local import LocalGateway

    async with LocalGateway(concurrency_limit=3, pool_size=0) as gateway:
        async with AsyncSession(gateway.config(max_retries=0)) as session:
            outcomes = await asyncio.gather(
                *(
                    AsyncKernel.get_or_create("python3", f"race-token-{i}", session=session)
                    for i in range(8)
                ),
                return_exceptions=True,
            )
            created = [o for o in outcomes if isinstance(o, AsyncKernel)]
            refused = [o for o in outcomes if isinstance(o, sorna_sdk.QuotaExceededError)]
            assert len(created) == 3 and len(refused) == 5, outcomes
            # The winners stay usable: nothing was created and then destroyed behind them.
            results = await asyncio.gather(*(k.execute("print('alive')") for k in created))
            assert all(r.stdout == "alive\n" for r in results)
