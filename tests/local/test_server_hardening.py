"""Hardening of the gateway: public hello, interrupt, signing hashes, key files, the root
folder, sandbox settings, plain-HTTP warning, problem mapping, dropped PTY subscribers."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import stat
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from websockets.asyncio.client import connect

from sorna_sdk import AsyncKernel, AsyncSession
from sorna_sdk._constants import API_VERSION
from sorna_sdk._ws import _handshake
from sorna_sdk.auth import HMACAuth, sign
from sorna_sdk.local import LocalGateway, RunningGateway
from sorna_sdk.local._http.app import create_app
from sorna_sdk.local._keys import KeyfileError, load_or_create_keypair, read_secret_key_file
from sorna_sdk.local._runtime.errors import KernelBusy, KernelNotFound
from sorna_sdk.local._runtime.terminal import Terminal
from sorna_sdk.local.gateway import NO_SANDBOX_WARNING

from .helpers import PROBS, assert_well_formed, deadline, track_bridge_end


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    with LocalGateway.start_in_thread(pool_size=0, flush_window=0.5, sandbox="none") as running:
        yield running


@pytest.fixture
def api(gateway: RunningGateway) -> Iterator[httpx.Client]:
    auth = HMACAuth(gateway.access_key, gateway.secret_key, version=API_VERSION)
    with httpx.Client(base_url=gateway.endpoint, auth=auth, timeout=30) as http:
        yield http


# -- GET /v2 is public ----------------------------------------------------------------


def test_hello_answers_without_a_date(gateway: RunningGateway) -> None:
    with httpx.Client(base_url=gateway.endpoint, timeout=30) as http:
        for headers in ({}, {"Date": "garbage"}, {"Date": _date(timedelta(hours=-3))}):
            hello = http.get("/v2", headers=headers)
            assert_well_formed(hello)
            assert hello.status_code == 200
            assert hello.json() == {"version": API_VERSION}
            assert "x-ratelimit-limit" not in hello.headers
        assert http.get("/v2/").status_code == 200
        assert http.head("/v2").status_code == 405  # HEAD stays unrouted
        # Everything else still needs a date first (spec §3.3 order).
        refused = http.get("/v2/authorize")
        assert refused.status_code == 400
        assert refused.json()["type"] == PROBS + "invalid-auth-params"


# -- signing hashes --------------------------------------------------------------------


@pytest.mark.parametrize("hash_name", ["md5", "sha1", "sha224", "sha3_256", "blake2b"])
def test_weak_or_exotic_signing_hashes_are_refused(gateway: RunningGateway, hash_name: str) -> None:
    with httpx.Client(base_url=gateway.endpoint, timeout=30) as http:
        response = http.get(
            "/v2/authorize", headers=_signed(gateway, "GET", "/v2/authorize", hash_name)
        )
    assert response.status_code == 400
    assert response.json() == {
        "type": PROBS + "invalid-auth-params",
        "title": "Missing or invalid authorization parameters. "
        "(Unsupported request signing method (hash type))",
    }


@pytest.mark.parametrize("hash_name", ["sha256", "sha384", "sha512"])
def test_sha2_signing_hashes_are_accepted(gateway: RunningGateway, hash_name: str) -> None:
    with httpx.Client(base_url=gateway.endpoint, timeout=30) as http:
        response = http.get(
            "/v2/authorize", headers=_signed(gateway, "GET", "/v2/authorize", hash_name)
        )
    assert response.status_code == 200


# -- interrupt -------------------------------------------------------------------------


def test_interrupt_ends_a_running_program(api: httpx.Client) -> None:
    made = api.post(
        "/v2/kernel/create",
        json={"lang": "python3", "clientSessionToken": f"intr-{uuid.uuid4().hex}"},
    )
    assert made.status_code == 201
    kernel_id = made.json()["kernelId"]
    first = api.post(f"/v2/kernel/{kernel_id}", json={"mode": "query", "code": "while True: pass"})
    assert first.json()["result"]["status"] == "continued"
    interrupted = api.post(f"/v2/kernel/{kernel_id}/interrupt")
    assert_well_formed(interrupted)
    assert interrupted.status_code == 204
    assert interrupted.headers["content-length"] == "0"
    results = []
    end = time.monotonic() + 20
    while time.monotonic() < end:
        result = api.post(f"/v2/kernel/{kernel_id}", json={"mode": "query", "code": ""})
        results.append(result.json()["result"])
        if results[-1]["status"] != "continued":
            break
    assert results[-1]["status"] in ("finished", "interrupted")
    again = api.post(f"/v2/kernel/{kernel_id}", json={"mode": "query", "code": "print(6 * 7)"})
    assert again.json()["result"]["console"] == [["stdout", "42\n"]]
    # Idle: a no-op, still 204; the legacy /v1 prefix serves it too.
    assert api.post(f"/v1/kernel/{kernel_id}/interrupt").status_code == 204
    api.delete(f"/v2/kernel/{kernel_id}")
    gone = api.post(f"/v2/kernel/{kernel_id}/interrupt")
    assert gone.status_code == 404
    assert gone.json()["type"] == PROBS + "kernel-not-found"


def test_interrupt_is_signed_like_every_route(gateway: RunningGateway, api: httpx.Client) -> None:
    with httpx.Client(base_url=gateway.endpoint, timeout=30) as http:
        unsigned = http.post(f"/v2/kernel/{uuid.uuid4().hex}/interrupt")
    assert unsigned.status_code == 400
    unknown = api.post(f"/v2/kernel/{uuid.uuid4().hex}/interrupt")
    assert unknown.status_code == 404
    assert unknown.json()["type"] == PROBS + "kernel-not-found"
    assert api.get(f"/v2/kernel/{uuid.uuid4().hex}/interrupt").status_code == 405


# -- problem mapping, with a stub registry ---------------------------------------------


class StubKernel:
    kernel_id = "stub-kernel"
    lang = "python3"
    state = "idle"
    run_id = ""

    def __init__(self) -> None:
        self.interrupts = 0

    async def execute(
        self, mode: str, code: str, options: dict[str, Any] | None, **extensions: Any
    ) -> Any:
        raise KernelBusy("The kernel is running another program.")

    async def restart(self) -> None:
        pass

    async def interrupt(self) -> None:
        self.interrupts += 1

    def info(self) -> Any:
        raise NotImplementedError

    async def upload(self, files: list[tuple[str, bytes]]) -> None:
        pass

    def touch(self) -> None:
        pass

    def terminal(self) -> Terminal:
        raise NotImplementedError


class StubKernels:
    def __init__(self) -> None:
        self.kernel = StubKernel()

    async def get_or_create(self, owner: str, token: str, lang: str, **limits: Any) -> Any:
        return self.kernel, True

    def get(self, owner: str, kernel_id: str) -> StubKernel:
        if kernel_id != self.kernel.kernel_id:
            raise KernelNotFound(f"kernel {kernel_id} not found")
        return self.kernel

    async def destroy(self, owner: str, kernel_id: str) -> None:
        self.get(owner, kernel_id)

    def count(self, owner: str) -> int:
        return 1


@pytest.fixture
async def stub() -> AsyncIterator[tuple[StubKernels, httpx.AsyncClient]]:
    kernels = StubKernels()
    app = create_app(kernels, {"AKSTUB": "stub-secret"})  # type: ignore[arg-type]
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    auth = HMACAuth("AKSTUB", "stub-secret", version=API_VERSION)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", auth=auth) as http:
            yield kernels, http
    finally:
        await runner.cleanup()


async def test_kernel_busy_is_a_409_problem(stub: tuple[StubKernels, httpx.AsyncClient]) -> None:
    _kernels, http = stub
    busy = await http.post("/v2/kernel/stub-kernel", json={"mode": "query", "code": "1"})
    assert_well_formed(busy)
    assert busy.status_code == 409
    assert busy.json() == {
        "type": "https://api.sorna.io/probs/kernel-busy",
        "title": "The kernel is running another program.",
    }


def test_memory_below_the_floor_is_a_400(api: httpx.Client) -> None:
    body = {
        "lang": "python3",
        "clientSessionToken": f"floor-{uuid.uuid4().hex}",
        "limits": {"maxMem": 1, "execTimeout": 0},
    }
    response = api.post("/v2/kernel/create", json=body)
    assert response.status_code == 400
    assert response.json()["type"] == PROBS + "invalid-api-params"
    assert "maxMem" in response.json()["title"]


# -- key files -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602])
def test_a_keypair_file_others_can_access_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "local-keypair.json"
    keypair, _ = load_or_create_keypair(path)
    path.chmod(mode)
    with pytest.raises(KeyfileError) as caught:
        load_or_create_keypair(path)
    message = str(caught.value)
    assert f"permissions {mode:04o}" in message
    assert "too open" in message
    assert f"chmod 600 {path}" in message
    assert keypair.secret_key not in message
    with pytest.raises(KeyfileError):
        LocalGateway(keypair_file=path)
    path.chmod(0o600)
    assert load_or_create_keypair(path) == (keypair, False)


def test_secret_key_files(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("  s3cr3t-value \n")
    path.chmod(0o600)
    assert read_secret_key_file(path) == "s3cr3t-value"
    path.chmod(0o644)
    with pytest.raises(KeyfileError, match="too open") as caught:
        read_secret_key_file(path)
    assert "s3cr3t-value" not in str(caught.value)
    path.chmod(0o400)
    assert read_secret_key_file(path) == "s3cr3t-value"
    for content, needle in (("", "empty"), ("one\ntwo\n", "one line"), ("\xff", "UTF-8")):
        path.chmod(0o600)
        path.write_bytes(content.encode("latin-1"))
        with pytest.raises(KeyfileError, match=needle) as caught:
            read_secret_key_file(path)
        assert "two" not in str(caught.value)
    with pytest.raises(KeyfileError, match="does not exist"):
        read_secret_key_file(tmp_path / "missing")
    with pytest.raises(KeyfileError, match="regular file"):
        read_secret_key_file(tmp_path)


# -- the root folder -------------------------------------------------------------------


async def test_the_root_is_created_private(tmp_path: Path) -> None:
    root = tmp_path / "made" / "root"
    async with LocalGateway(pool_size=0, sandbox="none", root=root) as gw:
        assert gw.registry.settings.root == root
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
    async with LocalGateway(pool_size=0, sandbox="none") as gw:
        temp_root = gw.registry.settings.root
        assert stat.S_IMODE(temp_root.stat().st_mode) == 0o700
    assert not temp_root.exists()


async def test_an_existing_root_others_can_write_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "shared"
    root.mkdir()
    root.chmod(0o777)
    gateway = LocalGateway(pool_size=0, sandbox="none", root=root)
    with pytest.raises(PermissionError, match="writable by group or others"):
        await gateway.start()
    root.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="sorna_sdk.local"):
        async with LocalGateway(pool_size=0, sandbox="none", root=root):
            pass
    assert "readable by group or others (mode 0755)" in caplog.text
    caplog.clear()
    root.chmod(0o700)
    with caplog.at_level(logging.WARNING, logger="sorna_sdk.local"):
        async with LocalGateway(pool_size=0, sandbox="none", root=root):
            pass
    assert "readable by group or others" not in caplog.text


# -- sandbox settings, hidden paths ----------------------------------------------------


async def test_sandbox_auto_without_bubblewrap_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    asked: list[str] = []

    def resolve(mode: str) -> str:
        asked.append(mode)
        return "none"

    # as without bubblewrap
    monkeypatch.setattr("sorna_sdk.local._runtime.sandbox.resolve", resolve)
    keys = tmp_path / "conf" / "keys.json"
    with caplog.at_level(logging.WARNING, logger="sorna_sdk.local"):
        async with LocalGateway(pool_size=0, keypair_file=keys, kernel_network=True) as gw:
            assert gw.sandbox == "none"
            runtime = gw.registry.settings
            assert (runtime.sandbox, runtime.kernel_network) == ("none", True)
            assert keys.parent.resolve() in runtime.hidden_paths
    assert asked == ["auto"]
    assert [r.getMessage() for r in caplog.records].count(NO_SANDBOX_WARNING) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sorna_sdk.local"):
        async with LocalGateway(pool_size=0, sandbox="none"):
            pass
    assert NO_SANDBOX_WARNING not in caplog.text
    assert asked == ["auto", "none"]


async def test_sandbox_bwrap_reaches_the_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sorna_sdk.local._runtime.sandbox.resolve", lambda mode: "bwrap")
    async with LocalGateway(pool_size=0, sandbox="bwrap") as gw:
        assert gw.sandbox == "bwrap"
        assert gw.registry.settings.sandbox == "bwrap"
        assert gw.registry.settings.kernel_network is False
    assert gw.sandbox is None
    with pytest.raises(ValueError, match="sandbox"):  # type: ignore[unreachable]
        LocalGateway(sandbox="docker")  # type: ignore[arg-type, unused-ignore]


# -- plain HTTP beyond loopback --------------------------------------------------------


async def test_a_non_loopback_host_gets_a_plain_http_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="sorna_sdk.local"):
        async with LocalGateway(pool_size=0, sandbox="none", host="0.0.0.0"):  # noqa: S104
            pass
    assert "serving plain HTTP on http://0.0.0.0:" in caplog.text
    assert "not encrypted" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sorna_sdk.local"):
        for host in ("127.0.0.1", "localhost"):
            async with LocalGateway(pool_size=0, sandbox="none", host=host):
                pass
    assert "plain HTTP" not in caplog.text


# -- dropped PTY subscribers -----------------------------------------------------------


async def test_a_dropped_pty_subscriber_that_does_not_read_is_disconnected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ended = track_bridge_end(monkeypatch)
    async with (
        LocalGateway(pool_size=0, sandbox="none") as gw,
        AsyncSession(gw.config()) as session,
    ):
        kernel = await AsyncKernel.get_or_create("bash", session=session)
        local = gw.registry.get(gw.access_key, kernel.kernel_id)
        terminal = local._terminal = Terminal(
            local.workdir, high_water=64 * 1024, low_water=16 * 1024, stall_timeout=0.5
        )
        assert session._dialect is not None
        url, headers = _handshake(session, session._dialect.pty_path(kernel.kernel_id))
        command = base64.b64encode(b"head -c 1000000000 /dev/zero\n").decode()
        # max_queue=1: the client stops reading its socket, and keeps it open.
        async with connect(
            url, additional_headers=headers, compression=None, max_queue=1, close_timeout=1
        ) as ws:
            await ws.send(json.dumps({"type": "stdin", "chars": command}))
            async with deadline(10):
                while terminal.subscribers:  # noqa: ASYNC110 (no event to wait on)
                    await asyncio.sleep(0.05)
            dropped = time.monotonic()
            # Dropped for not reading (1013): the gateway lets go of the connection within
            # seconds, though the peer never reads the close frame queued behind the output.
            async with deadline(8):
                await ended.wait()
            assert time.monotonic() - dropped < 6


# -- helpers ---------------------------------------------------------------------------


def _date(offset: timedelta = timedelta()) -> str:
    return (datetime.now(timezone.utc) + offset).isoformat()


def _signed(gateway: RunningGateway, method: str, path: str, hash_name: str) -> dict[str, str]:
    date = _date()
    authorization = sign(
        method=method,
        path=path,
        date=date,
        host=f"127.0.0.1:{gateway.port}",
        content_type="application/octet-stream",
        body=b"",
        version=API_VERSION,
        access_key=gateway.access_key,
        secret_key=gateway.secret_key,
        hash_name=hash_name,
    )
    return {"Date": date, "X-Sorna-Version": API_VERSION, "Authorization": authorization}
