"""Kernel lifecycle on real processes: timeouts, deaths, registry, restart, pool, shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sorna_sdk.local._runtime.errors import InvalidParameters, KernelNotFound, ServiceUnavailable
from sorna_sdk.local._runtime.languages import available_languages
from sorna_sdk.local._runtime.limits import KernelLimits, resolve_limits
from sorna_sdk.local._runtime.pool import DriverLauncher
from sorna_sdk.local._runtime.registry import KernelRegistry, RuntimeSettings

from .helpers import run, text


def settings(tmp_path: Path, **kwargs: Any) -> RuntimeSettings:
    base: dict[str, Any] = {"root": tmp_path / "kernels", "flush_window": 0.5, "pool_size": 0}
    return RuntimeSettings(**{**base, **kwargs})


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[KernelRegistry]:
    reg = KernelRegistry(settings(tmp_path))
    await reg.start()
    yield reg
    await reg.close()


def is_gone(pid: int) -> bool:
    """True when the process no longer exists or is a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


async def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if is_gone(pid):
            return True
        await asyncio.sleep(0.05)
    return is_gone(pid)


def living_children() -> list[int]:
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] not in ("Z", "X"):
            found.append(int(entry))
    return found


async def test_exec_timeout_kills_grandchildren_and_destroys(tmp_path: Path) -> None:
    reg = KernelRegistry(settings(tmp_path))
    await reg.start()
    try:
        kernel, _ = await reg.get_or_create("o", "token-1234", "python3", exec_timeout=1)
        assert kernel.info().exec_timeout_ms == 1000
        code = (
            "import subprocess\n"
            "p = subprocess.Popen(['sleep', '1000'])\n"
            "print(p.pid, flush=True)\n"
            "while True: pass\n"
        )
        started = time.monotonic()
        results = await run(kernel, code)
        assert results[-1].status == "exec-timeout"
        assert 0.9 <= time.monotonic() - started < 5
        child = int(text(results).split()[0])
        assert await wait_gone(child)
        assert await wait_gone(kernel.pid)
        with pytest.raises(KernelNotFound):
            reg.get("o", kernel.kernel_id)
        with pytest.raises(KernelNotFound):
            await kernel.execute("query", "print(1)", None)
        await asyncio.sleep(0.1)
        assert not kernel.workdir.exists()
    finally:
        await reg.close()


async def test_timeout_budget_pauses_while_waiting_for_input(tmp_path: Path) -> None:
    reg = KernelRegistry(settings(tmp_path))
    await reg.start()
    try:
        kernel, _ = await reg.get_or_create("o", "token-1234", "python3", exec_timeout=1)
        first = await kernel.execute("query", "s = input()\nprint(s)", None)
        assert first.status == "waiting-input"
        await asyncio.sleep(1.2)
        second = await kernel.execute("query", "late", None)
        assert second.status == "finished"
        assert text([second]) == "late\n"
    finally:
        await reg.close()


async def test_killed_from_outside_reports_death(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("o", "token-1234", "python3")
    first = await kernel.execute(
        "query", "print('before', flush=True)\nimport time\ntime.sleep(30)", None
    )
    assert first.status == "continued"
    assert text([first]) == "before\n"
    os.kill(kernel.pid, signal.SIGKILL)
    last = await kernel.execute("query", "", None)
    assert last.status == "finished"
    assert last.console == [["stderr", "[kernel died: exit code -9]\n"]]
    with pytest.raises(KernelNotFound) as info:
        registry.get("o", kernel.kernel_id)
    assert "terminated" in info.value.title
    assert registry.count("o") == 0


async def test_os_exit_in_user_code_is_a_death(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("o", "token-1234", "python3")
    (result,) = await run(kernel, "print('bye')\nimport os\nos._exit(3)")
    assert result.console == [["stdout", "bye\n"], ["stderr", "[kernel died: exit code 3]\n"]]
    with pytest.raises(KernelNotFound):
        await kernel.execute("query", "print(1)", None)


async def test_idle_death_is_noticed(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("o", "token-1234", "python3")
    os.kill(kernel.pid, signal.SIGKILL)
    assert await wait_gone(kernel.pid)
    await asyncio.sleep(0.1)
    with pytest.raises(KernelNotFound) as info:
        registry.get("o", kernel.kernel_id)
    assert "terminated" in info.value.title
    again, created = await registry.get_or_create("o", "token-1234", "python3")
    assert created and again.kernel_id != kernel.kernel_id


async def test_concurrent_get_or_create_gives_one_kernel(registry: KernelRegistry) -> None:
    pairs = await asyncio.gather(
        *(registry.get_or_create("o", "token-1234", "python") for _ in range(10))
    )
    assert len({k.kernel_id for k, _ in pairs}) == 1
    assert sum(created for _, created in pairs) == 1
    assert registry.count("o") == 1
    other, created = await registry.get_or_create("p", "token-1234", "python3")
    assert created and other.kernel_id != pairs[0][0].kernel_id
    with pytest.raises(KernelNotFound):
        registry.get("p", pairs[0][0].kernel_id)


async def test_key_locks_do_not_outlive_their_callers(registry: KernelRegistry) -> None:
    pairs = await asyncio.gather(
        *(registry.get_or_create("o", "token-locks", "python") for _ in range(5))
    )
    assert sum(created for _, created in pairs) == 1
    assert registry._key_locks == {}  # nobody holds or waits: no lock kept per key
    for i in range(20):
        kernel, _ = await registry.get_or_create("o", f"token-many-{i}", "python")
        await registry.destroy("o", kernel.kernel_id)
    assert registry._key_locks == {}
    again, created = await registry.get_or_create("o", "token-locks", "python")
    assert not created and again.kernel_id == pairs[0][0].kernel_id


async def test_create_during_shutdown_is_service_unavailable(tmp_path: Path) -> None:
    reg = KernelRegistry(settings(tmp_path))
    await reg.start()
    await reg.close()
    with pytest.raises(ServiceUnavailable) as info:
        await reg.get_or_create("o", "token-late", "python")
    assert (info.value.status, info.value.problem) == (503, "service-unavailable")


async def test_restart_resets_state_and_keeps_workdir(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("o", "token-1234", "python3")
    old_pid = kernel.pid
    await run(kernel, "x = 1\nopen('kept.txt', 'w').write('k')")
    await kernel.restart()
    assert kernel.pid != old_pid
    assert await wait_gone(old_pid)
    assert registry.get("o", kernel.kernel_id) is kernel
    (result,) = await run(kernel, "print('x' in globals(), open('kept.txt').read())")
    assert text([result]) == "False k\n"


async def test_destroy_removes_process_and_workdir(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("o", "token-1234", "python3")
    await run(kernel, "import subprocess\nsubprocess.Popen(['sleep', '1000'])")
    pid, workdir = kernel.pid, kernel.workdir
    assert workdir.is_dir()
    await registry.destroy("o", kernel.kernel_id)
    assert await wait_gone(pid)
    assert not workdir.exists()
    with pytest.raises(KernelNotFound):
        await registry.destroy("o", kernel.kernel_id)


async def test_idle_reaper(tmp_path: Path) -> None:
    reg = KernelRegistry(settings(tmp_path, idle_timeout=0.3))
    await reg.start()
    try:
        kernel, _ = await reg.get_or_create("o", "token-1234", "python3")
        await asyncio.sleep(1.0)
        assert reg.count("o") == 0
        assert await wait_gone(kernel.pid)
    finally:
        await reg.close()


async def test_pool_memory_limit_and_cwd(tmp_path: Path) -> None:
    reg = KernelRegistry(settings(tmp_path, pool_size=1))
    await reg.start()
    try:
        await asyncio.sleep(0.2)  # let the pool fill
        started = time.monotonic()
        kernel, _ = await reg.get_or_create("o", "token-1234", "python3", max_mem_kib=300 * 1024)
        assert time.monotonic() - started < 0.5
        assert kernel.info().memory_limit_kib == 300 * 1024
        code = (
            "import os\nprint(os.getcwd())\n"
            "try:\n    b = bytearray(1024 * 1024 * 1024)\nexcept MemoryError:\n    print('limited')"
        )
        (result,) = await run(kernel, code)
        assert text([result]) == f"{kernel.workdir}\nlimited\n"
        lua, _ = await reg.get_or_create("o", "token-1234", "lua5")
        assert text(await run(lua, "print(1 + 1)")) == "2\n"
    finally:
        await reg.close()


async def test_close_leaves_no_processes(tmp_path: Path) -> None:
    others = set(living_children())  # e.g. a session-wide gateway's warm pool
    reg = KernelRegistry(settings(tmp_path, pool_size=1))
    await reg.start()
    pids = []
    for lang in ("python3", "lua5", "nodejs", "bash"):
        if lang not in available_languages():
            continue
        kernel, _ = await reg.get_or_create("o", "token-1234", lang)
        pids.append(kernel.pid)
    py = reg.get("o", kernel.kernel_id)
    bash_run = await py.execute("query", "sleep 1000 & echo $!; sleep 1000", None)
    grandchild = int(text([bash_run]).split()[0])
    await asyncio.sleep(0.2)
    assert set(living_children()) - others
    await reg.close()
    for pid in [*pids, grandchild]:
        assert await wait_gone(pid)
    assert set(living_children()) - others == set()
    assert list((tmp_path / "kernels").iterdir()) == []


@pytest.mark.parametrize("lang", ["python3", "nodejs"])
async def test_driver_exits_on_control_eof(tmp_path: Path, lang: str) -> None:
    if lang not in available_languages():
        pytest.skip(f"{lang} is not available")
    launcher = DriverLauncher(tmp_path, 0)
    proc = await launcher.launch(lang, tmp_path, 0)
    proc.send("exec", "")  # a run with no output still ends with "finished"
    started = time.monotonic()
    await proc.close(grace=5.0)
    assert time.monotonic() - started < 2.0  # the EOF path, not the SIGKILL fallback
    assert not proc.alive
    await launcher.close()


def test_limits_defaults_and_clamping(tmp_path: Path) -> None:
    # Defaults hold unless the settings say otherwise: 30 minutes and 2 GiB.
    defaults = RuntimeSettings(root=tmp_path)
    assert resolve_limits(defaults, 0, 0) == KernelLimits(exec_timeout=1800.0, max_mem_kib=2 << 20)
    unlimited = RuntimeSettings(
        root=tmp_path, max_exec_timeout=10, max_mem_kib=1 << 20, min_mem_kib=512,
        default_exec_timeout=0, default_max_mem_kib=0,
    )  # fmt: skip
    assert resolve_limits(unlimited, 0, 0) == KernelLimits(exec_timeout=0.0, max_mem_kib=0)
    assert resolve_limits(unlimited, 4 << 20, 100) == KernelLimits(
        exec_timeout=10.0, max_mem_kib=1 << 20
    )
    strict = RuntimeSettings(
        root=tmp_path, default_exec_timeout=5, default_max_mem_kib=512, min_mem_kib=256
    )
    assert resolve_limits(strict, 0, 0) == KernelLimits(exec_timeout=5.0, max_mem_kib=512)
    assert resolve_limits(strict, 256, 2) == KernelLimits(exec_timeout=2.0, max_mem_kib=256)
    with pytest.raises(InvalidParameters, match="at least 256 KiB"):
        resolve_limits(strict, 1, 0)
