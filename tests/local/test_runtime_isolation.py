"""One kernel cannot break the gateway: whole-tree kills, the bwrap sandbox, limits, frame caps.

Every escape test starts a ``sleep`` with a unique marker in its command line, checks that it
really left the driver's process group (so a group kill alone would miss it), then ends the
kernel and scans ``/proc`` for the marker. They run without a sandbox and under bubblewrap.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from sorna_sdk.local._runtime.languages import available_languages
from sorna_sdk.local._runtime.registry import KernelRegistry, LocalKernel, RuntimeSettings
from sorna_sdk.local.gateway import LocalGateway

from .helpers import deadline, run, text

BWRAP_PROBLEM: str | None
try:
    from sorna_sdk.local._runtime.sandbox import bwrap_problem

    BWRAP_PROBLEM = bwrap_problem()
except ImportError:  # before the sandbox existed: only the "none" cases can run
    BWRAP_PROBLEM = "sorna_sdk.local._runtime.sandbox is missing"

needs_bwrap = pytest.mark.skipif(
    BWRAP_PROBLEM is not None, reason=f"bubblewrap cannot run here: {BWRAP_PROBLEM}"
)
MODES = [pytest.param("none", id="none"), pytest.param("bwrap", id="bwrap", marks=needs_bwrap)]
needs_node = pytest.mark.skipif("nodejs" not in available_languages(), reason="no node on PATH")
_serial = itertools.count(1)


def settings_for(tmp_path: Path, mode: str, **changes: Any) -> RuntimeSettings:
    base: dict[str, Any] = {
        "root": tmp_path / "kernels",
        "flush_window": 0.5,
        "pool_size": 0,
        "sandbox": mode,
    }
    return RuntimeSettings(**{**base, **changes})


def _use_settings(reg: KernelRegistry) -> None:
    # registry.py built DriverLauncher(root, pool_size), which knows nothing of the sandbox or
    # the limits: give it one built from all the settings (a no-op once registry.py does so).
    if BWRAP_PROBLEM == "sorna_sdk.local._runtime.sandbox is missing":
        return  # the code before the sandbox: its launcher takes no settings
    from sorna_sdk.local._runtime.pool import DriverLauncher

    reg._launcher = DriverLauncher(reg.settings)


@asynccontextmanager
async def registry_for(settings: RuntimeSettings) -> AsyncIterator[KernelRegistry]:
    reg = KernelRegistry(settings)
    _use_settings(reg)
    await reg.start()
    try:
        yield reg
    finally:
        await reg.close()


def new_marker() -> str:
    """A sleep duration nobody else uses: ``sleep <marker>`` finds the process in /proc."""
    return f"{1000 + os.getpid() % 1000}.{next(_serial):03d}{time.monotonic_ns() % 10000:04d}"


def marked(marker: str) -> list[int]:
    """Living processes whose command line contains ``sleep <marker>``."""
    needle = f"sleep\0{marker}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state not in ("Z", "X"):
            found.append(int(entry))
    return found


def pgid_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])


async def wait_for_marked(marker: str, timeout: float = 10.0) -> list[int]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pids := marked(marker):
            return pids
        await asyncio.sleep(0.02)
    raise AssertionError(f"no process with marker {marker} appeared")


async def gone(marker: str, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not marked(marker):
            return True
        await asyncio.sleep(0.02)
    return not marked(marker)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


async def pid_gone(pid: int, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not _running(pid):
            return True
        await asyncio.sleep(0.02)
    return not _running(pid)


async def escape(kernel: LocalKernel, code: str, marker: str) -> list[int]:
    """Run ``code``; the marked processes it left, checked to be outside the driver's group."""
    results = await run(kernel, code)
    assert results[-1].status == "finished", results
    pids = await wait_for_marked(marker)
    assert all(pgid_of(pid) != kernel.pid for pid in pids)  # a group kill would miss them
    return pids


def _fork_exec(marker: str, middle: str) -> str:
    return (
        "import os\n"
        "if os.fork() == 0:\n"
        f"    {middle}\n"
        f"    os.execvp('sleep', ['sleep', '{marker}'])\n"
    )


ESCAPES: dict[str, tuple[str, str]] = {
    "bash-setsid": ("bash", "setsid sleep {m} > /dev/null 2>&1 &"),
    "python-setsid": ("python3", _fork_exec("{m}", "os.setsid()")),
    "python-setpgid": ("python3", _fork_exec("{m}", "os.setpgid(0, 0)")),
    "double-fork": ("bash", "( sleep {m} > /dev/null 2>&1 & )"),
    "bash-set-m": ("bash", "bash -c 'set -m; sleep {m} > /dev/null 2>&1 &'"),
    "nohup": ("bash", "nohup sleep {m} > /dev/null 2>&1 &"),
    "disown": ("bash", "sleep {m} > /dev/null 2>&1 & disown"),
    "popen-new-session": (
        "python3",
        "import subprocess\nsubprocess.Popen(['sleep', '{m}'], start_new_session=True)",
    ),
}


# ---- (b) no process of a kernel survives it ---------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(ESCAPES))
async def test_destroy_ends_escaped_processes(tmp_path: Path, mode: str, name: str) -> None:
    lang, template = ESCAPES[name]
    marker = new_marker()
    async with registry_for(settings_for(tmp_path, mode)) as reg:
        kernel, _ = await reg.get_or_create("o", "token-escape", lang)
        await escape(kernel, template.format(m=marker), marker)
        await reg.destroy("o", kernel.kernel_id)
        assert await gone(marker)


@pytest.mark.parametrize("mode", MODES)
async def test_destroy_ends_a_terminal_child(tmp_path: Path, mode: str) -> None:
    marker = new_marker()
    settings = settings_for(tmp_path, mode)
    async with registry_for(settings) as reg:
        kernel, _ = await reg.get_or_create("o", "token-pty", "python3")
        if mode != "none":
            from sorna_sdk.local._runtime.sandbox import Sandbox
            from sorna_sdk.local._runtime.terminal import Terminal

            # kernel.py builds Terminal(workdir): this is the one it is to build.
            sandbox = Sandbox.from_settings(settings)
            kernel._terminal = Terminal(kernel.workdir, sandbox=sandbox)
        terminal = kernel.terminal()
        sub = await terminal.subscribe()
        await terminal.write(f"nohup setsid sleep {marker} > /dev/null 2>&1 &\n".encode())
        pids = await wait_for_marked(marker)
        shell = terminal.pid
        assert shell is not None and all(pgid_of(pid) != shell for pid in pids)
        await reg.destroy("o", kernel.kernel_id)
        assert await gone(marker)
        assert sub.close_code == 4404


@pytest.mark.parametrize("mode", MODES)
async def test_exec_timeout_ends_every_process_of_the_run(tmp_path: Path, mode: str) -> None:
    python_marker, bash_marker = new_marker(), new_marker()
    async with registry_for(settings_for(tmp_path, mode)) as reg:
        py, _ = await reg.get_or_create("o", "token-timeout", "python3", exec_timeout=1)
        code = (
            "import subprocess\n"
            f"subprocess.Popen(['sleep', '{python_marker}'], start_new_session=True)\n"
            "while True: pass\n"
        )
        sh, _ = await reg.get_or_create("o", "token-timeout", "bash", exec_timeout=1)
        results, bash_results = await asyncio.gather(
            run(py, code), run(sh, f"setsid sleep {bash_marker} > /dev/null 2>&1 & sleep 100")
        )
        assert results[-1].status == "exec-timeout"
        assert bash_results[-1].status == "exec-timeout"
        assert await gone(python_marker)
        assert await gone(bash_marker)
        assert reg.count("o") == 0


@pytest.mark.parametrize("mode", MODES)
async def test_registry_close_ends_every_kernel_tree(tmp_path: Path, mode: str) -> None:
    markers = [new_marker() for _ in range(3)]
    async with registry_for(settings_for(tmp_path, mode)) as reg:
        py, _ = await reg.get_or_create("o", "token-close", "python3")
        await escape(py, ESCAPES["popen-new-session"][1].format(m=markers[0]), markers[0])
        sh, _ = await reg.get_or_create("o", "token-close", "bash")
        await escape(sh, ESCAPES["double-fork"][1].format(m=markers[1]), markers[1])
        await escape(sh, ESCAPES["bash-setsid"][1].format(m=markers[2]), markers[2])
    for marker in markers:
        assert await gone(marker)


async def test_gateway_shutdown_ends_escaped_processes() -> None:
    markers = [new_marker(), new_marker()]
    async with LocalGateway(pool_size=1) as gw:
        py, _ = await gw.registry.get_or_create("o", "token-gw", "python3")
        await escape(py, _fork_exec(markers[0], "os.setsid()"), markers[0])
        sh, _ = await gw.registry.get_or_create("o", "token-gw", "bash")
        await escape(sh, ESCAPES["disown"][1].format(m=markers[1]), markers[1])
    for marker in markers:
        assert await gone(marker)


_CRASHING_GATEWAY = """
import asyncio, sys
from pathlib import Path
from sorna_sdk.local._runtime.pool import DriverLauncher
from sorna_sdk.local._runtime.registry import KernelRegistry, RuntimeSettings

async def main():
    settings = RuntimeSettings(root=Path(sys.argv[1]), pool_size=0, sandbox=sys.argv[2])
    reg = KernelRegistry(settings)
    reg._launcher = DriverLauncher(settings)
    await reg.start()
    kernel, _ = await reg.get_or_create("o", "token-crash", "bash")
    await kernel.execute("query", sys.argv[3], None)
    print("ready", flush=True)
    await asyncio.sleep(100)

asyncio.run(main())
"""


@pytest.mark.parametrize("mode", MODES)
async def test_a_gateway_killed_with_sigkill_leaves_no_kernel_process(
    tmp_path: Path, mode: str
) -> None:
    marker = new_marker()
    code = ESCAPES["bash-setsid"][1].format(m=marker)
    gateway = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CRASHING_GATEWAY, str(tmp_path / "kernels"), mode, code,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert gateway.stdout is not None
        assert await asyncio.wait_for(gateway.stdout.readline(), 20) == b"ready\n"
        await wait_for_marked(marker)
    finally:
        gateway.kill()  # no cleanup at all: the supervisor's lifeline, or bwrap's parent, dies
        await gateway.wait()
    assert await gone(marker)


@pytest.mark.parametrize("mode", MODES)
async def test_a_killed_supervisor_or_bwrap_takes_the_driver_along(
    tmp_path: Path, mode: str
) -> None:
    # The drivers' PR_SET_PDEATHSIG and SORNA_GATEWAY_PID check follow their real parent.
    async with registry_for(settings_for(tmp_path, mode)) as reg:
        kernel, _ = await reg.get_or_create("o", "token-parent", "python3")
        proc = kernel._proc
        driver = proc.pid
        assert proc.tree_pid != driver
        os.kill(proc.tree_pid, signal.SIGKILL)
        await asyncio.wait_for(proc.exited.wait(), 5)
        assert await pid_gone(driver)


@pytest.mark.parametrize("mode", MODES)
async def test_a_driver_that_dies_takes_its_tree_along(tmp_path: Path, mode: str) -> None:
    marker = new_marker()
    async with registry_for(settings_for(tmp_path, mode)) as reg:
        py, _ = await reg.get_or_create("o", "token-die", "python3")
        await escape(py, ESCAPES["popen-new-session"][1].format(m=marker), marker)
        (result,) = await run(py, "import os\nos._exit(3)")
        assert "[kernel died: exit code 3]" in text([result], "stderr")
        assert await gone(marker)


# ---- (c) the bwrap sandbox ----------------------------------------------------------------------

_LOOK_AROUND = """
import os, json, socket
secret = bytes.fromhex({secret_hex!r})
gateway = bytes.fromhex({gateway_hex!r})
seen = {{"env": [k for k, v in os.environ.items() if secret.decode() in v], "proc": [],
        "gateway_visible": False, "keyfile": None}}
for pid in [p for p in os.listdir('/proc') if p.isdigit()]:
    for name in ('cmdline', 'environ'):
        try:
            data = open(f'/proc/{{pid}}/{{name}}', 'rb').read()
        except OSError:
            continue
        if secret in data:
            seen["proc"].append(f"{{pid}}/{{name}}")
        if name == 'cmdline' and data == gateway:
            seen["gateway_visible"] = True
try:
    seen["keyfile"] = open({keyfile!r}).read()
except OSError as exc:
    seen["keyfile"] = type(exc).__name__
print(json.dumps(seen))
"""


@pytest.mark.parametrize("mode", MODES)
async def test_kernel_cannot_read_the_gateway_secret(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-" + os.urandom(8).hex()
    monkeypatch.setenv("SORNA_SECRET_KEY", secret)
    monkeypatch.setenv("SORNA_LOCAL_SECRET_KEY", secret)
    keys = tmp_path / "config"
    keys.mkdir()
    keyfile = keys / "local-keypair.json"
    keyfile.write_text(secret)
    settings = settings_for(tmp_path, mode, hidden_paths=(keys,))
    async with registry_for(settings) as reg:
        kernel, _ = await reg.get_or_create("o", "token-secret", "python3")
        code = _LOOK_AROUND.format(
            secret_hex=secret.encode().hex(),
            gateway_hex=Path("/proc/self/cmdline").read_bytes().hex(),  # noqa: ASYNC240
            keyfile=str(keyfile),
        )
        seen = json.loads(text(await run(kernel, code)))
    assert seen["env"] == []
    assert seen["proc"] == []
    if mode == "none":  # the check sees what is there to see: no sandbox, no secret kept
        assert seen["gateway_visible"] and seen["keyfile"] == secret
    else:
        assert not seen["gateway_visible"]  # no process of the gateway's side at all
        assert seen["keyfile"] == "FileNotFoundError"


@needs_bwrap
async def test_kernel_sees_and_writes_only_its_own_folder(tmp_path: Path) -> None:
    async with registry_for(settings_for(tmp_path, "bwrap")) as reg:
        a, _ = await reg.get_or_create("o", "token-a", "python3")
        b, _ = await reg.get_or_create("o", "token-b", "python3")
        await run(b, "open('mine.txt', 'w').write('b-only')")
        code = f"""
import os
root, other = {str(a.workdir.parent)!r}, {str(b.workdir)!r}
print(sorted(os.listdir(root)))
print(os.path.exists(other), os.path.exists(other + '/mine.txt'))
for path in (other + '/x', root + '/y', '/usr/z', os.path.expanduser('~/w'), '/w'):
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, 'w').write('no')
        print('wrote', path)
    except OSError as exc:
        print('refused', exc.errno)
open('/tmp/private.txt', 'w').write('tmp ok')
open('here.txt', 'w').write('here ok')
print(open('/tmp/private.txt').read(), open('here.txt').read())
"""
        lines = text(await run(a, code)).splitlines()
        assert (a.workdir / "here.txt").read_text() == "here ok"  # its folder is the real one
    assert lines[0] == repr([a.workdir.name])
    assert lines[1] == "False False"
    assert lines[2:7] == ["refused 30"] * 5  # EROFS everywhere else
    assert lines[7] == "tmp ok here ok"
    assert not (b.workdir / "x").exists()
    assert not os.path.exists("/tmp/private.txt")  # noqa: ASYNC240 - the kernel's /tmp was private


@needs_bwrap
async def test_an_interpreter_in_a_hidden_folder_still_runs(tmp_path: Path) -> None:
    venv = Path(sys.prefix)
    settings = settings_for(tmp_path, "bwrap", hidden_paths=(venv, Path(sys.base_prefix)))
    async with registry_for(settings) as reg:
        kernel, _ = await reg.get_or_create("o", "token-hidden-venv", "python3")
        code = f"import os\nprint(sorted(os.listdir({str(venv / 'bin')!r})))"
        shown = text(await run(kernel, code))
    assert Path(sys.executable).name in shown
    assert "ruff" not in shown and "mypy" not in shown  # the rest of the folder is hidden


@needs_bwrap
async def test_pids_inside_the_sandbox_translate_to_the_gateways(tmp_path: Path) -> None:
    marker = new_marker()
    async with registry_for(settings_for(tmp_path, "bwrap")) as reg:
        kernel, _ = await reg.get_or_create("o", "token-pids", "python3")
        code = (
            "import os, subprocess\n"
            f"child = subprocess.Popen(['sleep', '{marker}'])\n"
            "print(os.getpid(), child.pid)"
        )
        inside, child = (int(x) for x in text(await run(kernel, code)).split())
        assert inside == 2  # bwrap is pid 1 of the kernel's PID namespace
        assert kernel._proc.host_pid(inside) == kernel.pid != inside
        assert kernel._proc.host_pid(child) in marked(marker)
        assert kernel._proc.host_pid(12345) is None


@needs_bwrap
@pytest.mark.parametrize("network", [False, True])
async def test_kernel_network_is_off_unless_enabled(tmp_path: Path, network: bool) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    code = f"""
import socket
for address in (('127.0.0.1', {port}), ('1.1.1.1', 53)):
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.connect(address)
        print('connected')
    except OSError as exc:
        print(type(exc).__name__, exc.errno)
    finally:
        s.close()
"""
    try:
        settings = settings_for(tmp_path, "bwrap", kernel_network=network)
        async with registry_for(settings) as reg:
            kernel, _ = await reg.get_or_create("o", "token-net", "python3")
            lines = text(await run(kernel, code)).splitlines()
    finally:
        listener.close()
    if network:
        assert lines[0] == "connected"  # the host's loopback: the gateway is reachable
    else:
        assert lines[0] == "ConnectionRefusedError 111"  # a loopback of its own
        assert lines[1] == "OSError 101"  # ENETUNREACH: no route anywhere


@needs_bwrap
async def test_terminal_runs_inside_the_sandbox(tmp_path: Path) -> None:
    from sorna_sdk.local._runtime.sandbox import Sandbox
    from sorna_sdk.local._runtime.terminal import Terminal

    keys = tmp_path / "config"
    keys.mkdir()
    (keys / "local-keypair.json").write_text("secret")
    settings = settings_for(tmp_path, "bwrap", hidden_paths=(keys,))
    async with registry_for(settings) as reg:
        a, _ = await reg.get_or_create("o", "token-a", "python3")
        b, _ = await reg.get_or_create("o", "token-b", "python3")
        sandbox = Sandbox.from_settings(settings)
        terminal = Terminal(a.workdir, sandbox=sandbox, max_mem_kib=1 << 20)
        try:
            sub = await terminal.subscribe()
            command = (
                f"ls -A {a.workdir.parent}; ls {b.workdir} {keys}/local-keypair.json; "
                "touch /usr/pty-x; touch ok-here && echo wrote-here; grep CapEff /proc/self/status;"
                " cat /proc/1/comm; ulimit -d; echo @@D''ONE@@\n"
            )
            await terminal.write(command.encode())
            out = b""
            async with deadline(10):
                while b"@@DONE@@" not in out:
                    chunk = await sub.get()
                    assert chunk is not None
                    out += chunk
            assert (a.workdir / "ok-here").exists()  # its folder is the real one
        finally:
            await terminal.close()
    shown = out.decode(errors="replace").split("@@D''ONE@@", 1)[1]  # after the echoed command
    assert f"\r\n{a.workdir.name}\r\n" in shown  # the only folder under the root
    assert f"cannot access '{b.workdir}': No such file or directory" in shown
    assert f"cannot access '{keys}/local-keypair.json': No such file or directory" in shown
    assert "touch: cannot touch '/usr/pty-x': Read-only file system" in shown
    assert "wrote-here" in shown
    assert "CapEff:\t0000000000000000" in shown
    assert "\r\nbwrap\r\n" in shown  # pid 1 is bubblewrap: the PID namespace
    assert "\r\n1048576\r\n" in shown  # the kernel's memory limit, in KiB


# ---- (d) limits ----------------------------------------------------------------------------------

_ALLOC = {
    "python3": (
        "try:\n    block = bytearray(600 * 1024 * 1024)\n    print('allocated')\n"
        "except MemoryError:\n    print('refused')"
    ),
    "nodejs": (
        "try { const b = Buffer.alloc(600 * 1024 * 1024, 1); console.log('allocated'); }"
        " catch (e) { console.log('refused'); }"
    ),
}


def limits_of(pid: int) -> dict[str, str]:
    rows = Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]
    return {row[:26].strip(): row[26:47].strip() for row in rows}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lang", ["python3", pytest.param("nodejs", marks=needs_node)])
async def test_memory_limit_is_enforced(tmp_path: Path, mode: str, lang: str) -> None:
    settings = settings_for(tmp_path, mode, max_processes=300)
    async with registry_for(settings) as reg:
        kernel, _ = await reg.get_or_create("o", "token-mem", lang, max_mem_kib=256 * 1024)
        limits = limits_of(kernel.pid)
        assert limits["Max data size"] == str(256 * 1024 * 1024)
        assert limits["Max core file size"] == "0"
        nproc = int(limits["Max processes"])
        assert nproc == 300 if os.getuid() == 0 else nproc >= 300  # root: set, not enforced
        assert text(await run(kernel, _ALLOC[lang])) == "refused\n"
        other, _ = await reg.get_or_create("o", "token-other", "python3")
        assert text(await run(other, "print(6 * 7)")) == "42\n"  # the gateway is fine


async def test_pooled_driver_gets_the_memory_limit(tmp_path: Path) -> None:
    async with registry_for(settings_for(tmp_path, "none", pool_size=1)) as reg:
        await asyncio.sleep(0.3)  # the pool fills
        kernel, _ = await reg.get_or_create("o", "token-pool", "python3", max_mem_kib=200 * 1024)
        assert limits_of(kernel.pid)["Max data size"] == str(200 * 1024 * 1024)
        assert text(await run(kernel, _ALLOC["python3"])) == "refused\n"


async def test_bash_jobs_inherit_the_limits(tmp_path: Path) -> None:
    async with registry_for(settings_for(tmp_path, "none", max_processes=123)) as reg:
        kernel, _ = await reg.get_or_create("o", "token-bash", "bash", max_mem_kib=128 * 1024)
        out = text(await run(kernel, "ulimit -d; ulimit -c; ulimit -u"))
    lines = out.split()
    assert lines[:2] == [str(128 * 1024), "0"]
    assert int(lines[2]) == 123 if os.getuid() == 0 else int(lines[2]) >= 123


@pytest.mark.skipif(os.getuid() == 0, reason="Linux exempts root from RLIMIT_NPROC")
async def test_process_limit_is_enforced_for_other_users(tmp_path: Path) -> None:
    async with registry_for(settings_for(tmp_path, "none", max_processes=20)) as reg:
        kernel, _ = await reg.get_or_create("o", "token-nproc", "python3")
        code = (
            "import subprocess\nprocs = []\ntry:\n"
            "    for _ in range(200):\n        procs.append(subprocess.Popen(['sleep', '5']))\n"
            "except OSError:\n    print('refused after', len(procs) < 200)\n"
            "for p in procs:\n    p.kill()\n"
        )
        assert text(await run(kernel, code)) == "refused after True\n"


# ---- (e) frame caps ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lang", ["python3", pytest.param("nodejs", marks=needs_node)])
async def test_oversize_media_frame_kills_only_that_kernel(
    tmp_path: Path, mode: str, lang: str
) -> None:
    settings = settings_for(tmp_path, mode, max_media_bytes=1024 * 1024)
    big = {
        "python3": "sorna.display_media('application/octet-stream', b'x' * (3 << 20))",
        "nodejs": "sorna.display_media('application/octet-stream', Buffer.alloc(3 << 20, 120))",
    }[lang]
    async with registry_for(settings) as reg:
        other, _ = await reg.get_or_create("o", "token-ok", "python3")
        kernel, _ = await reg.get_or_create("o", "token-big", lang)
        proc = kernel._proc
        (fine,) = await run(kernel, "sorna.display_media('text/plain', 'ok')")  # both languages
        assert fine.console == [["media", ["text/plain", "ok"]]]  # under the cap: it goes
        results = await run(kernel, big)
        assert results[-1].status == "finished"
        assert "kernel died" in text(results, "stderr")
        assert proc.death_reason is not None
        assert proc.death_reason.startswith("output frame too large")
        assert not proc.alive and proc.buffered < 1024 * 1024
        assert text(await run(other, "print('still here')")) == "still here\n"
