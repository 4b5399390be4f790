"""Gateway lifecycles (in-process and threaded), keypairs, settings, rate limiter, pytest plugin."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sorna_sdk._constants import API_VERSION
from sorna_sdk.auth import HMACAuth
from sorna_sdk.local import GatewaySettings, LocalGateway
from sorna_sdk.local._http.ratelimit import RateLimiter
from sorna_sdk.local._keys import (
    ENV_LOCAL_ACCESS_KEY,
    ENV_LOCAL_SECRET_KEY,
    KeyfileError,
    Keypair,
    default_keypair_path,
    generate_keypair,
    load_or_create_keypair,
    resolve_keypair,
)

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its parent counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def run_code(http: httpx.Client, kernel_id: str, code: str) -> str:
    response = http.post(f"/v2/kernel/{kernel_id}", json={"mode": "query", "code": code})
    assert response.status_code == 200, response.text
    return "".join(data for kind, data in response.json()["result"]["console"] if kind == "stdout")


async def test_local_gateway_in_process() -> None:
    gateway = LocalGateway(pool_size=0)
    assert gateway.port == 0
    assert gateway.secret_key not in repr(gateway)
    async with gateway:
        assert gateway.port > 0
        assert gateway.endpoint == f"http://127.0.0.1:{gateway.port}"
        config = gateway.config()
        assert (config.endpoint, config.access_key) == (gateway.endpoint, gateway.access_key)
        assert config.secret_key == gateway.secret_key
        assert gateway.secret_key not in repr(gateway) + repr(config)
        root = gateway.registry.settings.root
        assert root.is_dir()
        auth = HMACAuth(gateway.access_key, gateway.secret_key, version=API_VERSION)
        async with httpx.AsyncClient(base_url=gateway.endpoint, auth=auth) as http:
            made = await http.post(
                "/v2/kernel/create", json={"lang": "python3", "clientSessionToken": "inproc-1"}
            )
            kernel_id = made.json()["kernelId"]
            ran = await http.post(
                f"/v2/kernel/{kernel_id}",
                json={"mode": "query", "code": "import os; print(os.getpid())"},
            )
            seen = int(ran.json()["result"]["console"][0][1])
            kernel = gateway.registry.get(gateway.access_key, kernel_id)
            pid = kernel._proc.host_pid(seen)  # under the sandbox, kernel code sees its own pids
            assert pid is not None
        assert process_alive(pid)
    for _ in range(100):  # the PID namespace ends with bubblewrap, a moment later
        if not process_alive(pid):
            break
        await asyncio.sleep(0.05)
    assert not process_alive(pid)
    assert not root.exists()
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"{gateway.endpoint}/v2")


async def test_start_failure_cleans_up(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        gateway = LocalGateway(port=port, pool_size=0, root=tmp_path / "root")
        with pytest.raises(OSError):
            await gateway.start()
    with pytest.raises(RuntimeError):
        _ = gateway.registry
    await gateway.close()  # idempotent after a failed start


def test_running_gateway_in_a_thread() -> None:
    running = LocalGateway.start_in_thread(pool_size=0)
    try:
        assert running.secret_key not in repr(running)
        assert running.port == running.gateway.port > 0
        assert running.config().endpoint == running.endpoint
        changed = running.config(secret_key="other", max_retries=0)
        assert (changed.secret_key, changed.max_retries) == ("other", 0)
        response = httpx.get(f"{running.endpoint}/v2", headers={"Date": _now()})
        assert response.json() == {"version": API_VERSION}
    finally:
        running.stop()
    running.stop()  # idempotent
    assert running.loop.is_closed()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{running.endpoint}/v2", headers={"Date": _now()})


def test_start_in_thread_reports_failures() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            LocalGateway.start_in_thread(port=taken.getsockname()[1], pool_size=0)


def test_gateway_uses_the_keypair_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    first = LocalGateway(keypair_file=path)
    second = LocalGateway(keypair_file=path)
    assert (first.access_key, first.secret_key) == (second.access_key, second.secret_key)
    explicit = LocalGateway(access_key="AK", secret_key="SK", keypair_file=path)
    assert (explicit.access_key, explicit.secret_key) == ("AK", "SK")
    ephemeral = LocalGateway()
    assert ephemeral.access_key != first.access_key


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="both"):
        GatewaySettings(access_key="AK")
    with pytest.raises(ValueError, match="port"):
        GatewaySettings(port=70000)
    with pytest.raises(ValueError, match="rate_limit"):
        GatewaySettings(rate_limit=0)
    for bad in (0, -1, 6 * 3600 + 1):
        with pytest.raises(ValueError, match="exec_timeout"):
            GatewaySettings(exec_timeout=bad)
    settings = GatewaySettings(access_key="AK", secret_key="very-secret")
    assert "very-secret" not in repr(settings)
    assert settings.host == "127.0.0.1"
    assert settings.replace(port=5).port == 5


def test_generated_keypair_shape() -> None:
    keypair = generate_keypair()
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", keypair.access_key)
    assert len(keypair.secret_key) == 40
    assert re.fullmatch(r"[A-Za-z0-9_-]{40}", keypair.secret_key)
    assert keypair.secret_key not in repr(keypair)
    assert generate_keypair() != keypair


def test_keypair_file_is_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "config" / "sorna-sdk" / "local-keypair.json"
    keypair, created = load_or_create_keypair(path)
    assert created
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {
        "access_key": keypair.access_key,
        "secret_key": keypair.secret_key,
    }
    again, created_again = load_or_create_keypair(path)
    assert (again, created_again) == (keypair, False)


def test_corrupt_keypair_file(tmp_path: Path) -> None:
    path = tmp_path / "local-keypair.json"
    path.write_text('{"access_key": "AKIAX", "secret_key": 12, "note": "s3cr3t-value"')
    with pytest.raises(KeyfileError) as caught:
        load_or_create_keypair(path)
    assert str(path) in str(caught.value)
    assert "s3cr3t-value" not in str(caught.value)
    path.write_text('{"access_key": "AKIAX", "secret_key": 12}')
    with pytest.raises(KeyfileError):
        load_or_create_keypair(path)


def test_default_keypair_path() -> None:
    xdg = default_keypair_path({"XDG_CONFIG_HOME": "/x/conf"})
    assert xdg == Path("/x/conf/sorna-sdk/local-keypair.json")
    assert default_keypair_path({}) == Path.home() / ".config/sorna-sdk/local-keypair.json"


def test_resolve_keypair_order(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    env = {ENV_LOCAL_ACCESS_KEY: "AKENV", ENV_LOCAL_SECRET_KEY: "SKENV"}
    assert resolve_keypair("AKARG", "SKARG", environ=env, path=path) == (
        Keypair("AKARG", "SKARG"),
        "arguments",
    )
    assert resolve_keypair(environ=env, path=path) == (Keypair("AKENV", "SKENV"), "environment")
    generated, source = resolve_keypair(environ={}, path=path)
    assert source == "generated"
    assert resolve_keypair(environ={}, path=path) == (generated, "file")
    with pytest.raises(ValueError, match="both"):
        resolve_keypair("AKARG", None, environ={}, path=path)
    with pytest.raises(ValueError, match=ENV_LOCAL_SECRET_KEY):
        resolve_keypair(environ={ENV_LOCAL_ACCESS_KEY: "AK"}, path=path)


def test_rate_limiter_window() -> None:
    now = [1000.0]
    limiter = RateLimiter(2, window=900.0, clock=lambda: now[0])
    assert limiter.peek("ak").remaining == 2
    first, second, third = (limiter.hit("ak") for _ in range(3))
    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert (first.remaining, second.remaining, third.remaining) == (1, 0, 0)
    assert first.reset_ms == 900_000
    assert limiter.hit("other").allowed  # per key
    now[0] += 450.0
    assert limiter.peek("ak").reset_ms == 450_000
    now[0] += 450.0
    assert limiter.hit("ak").allowed  # a new window
    assert third.headers() == {
        "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(third.reset_ms),
    }


def test_import_without_aiohttp_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['aiohttp'] = None\n"
        "try:\n    import sorna_sdk.local\nexcept ImportError as exc:\n    print(exc)\n"
    )
    done = _python(code)
    assert "pip install 'sorna-sdk[local]'" in done.stdout


def test_plugin_import_does_not_load_aiohttp() -> None:
    done = _python("import sys, sorna_sdk.testing; print('aiohttp' in sys.modules)")
    assert done.stdout.strip() == "False"


def test_public_names() -> None:
    import sorna_sdk.local as local

    assert local.__all__ == sorted(local.__all__)
    assert set(local.__all__) == {"GatewaySettings", "LocalGateway", "RunningGateway"}
    assert "not a sandbox" in (local.__doc__ or "")
    assert "127.0.0.1" in (local.__doc__ or "")


def test_pytest_plugin_fixtures(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(
        """
        import pytest
        from sorna_sdk.local import RunningGateway

        def test_sync(sorna_gateway, sorna_config, sorna_session):
            assert isinstance(sorna_gateway, RunningGateway)
            assert sorna_gateway.host == "127.0.0.1"
            assert sorna_config.endpoint == sorna_gateway.endpoint
            assert sorna_session.authorize(echo="sync")["echo"] == "sync"

        @pytest.mark.asyncio
        async def test_async(sorna_async_session, sorna_gateway):
            assert (await sorna_async_session.authorize(echo="async"))["echo"] == "async"
        """
    )
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    args = [
        "-W",
        "error",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        "-p",
        "no:cacheprovider",
    ]
    if not importlib.metadata.entry_points(group="pytest11", name="sorna_sdk"):
        args += ["-p", "sorna_sdk.testing"]  # not installed: load the plugin by hand
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=2)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat()
