"""The kernel terminal (spec §6): a real bash under a real pty, over real loopback WebSockets."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from sorna_sdk import AsyncKernel, AsyncSession, Kernel, Session
from sorna_sdk._ws import _handshake as _signed_handshake
from sorna_sdk.exceptions import AuthenticationError, KernelNotFoundError, PtyError
from sorna_sdk.local import LocalGateway
from sorna_sdk.local._runtime.terminal import CLOSE_DROPPED, Subscription, Terminal, TerminalClosed
from sorna_sdk.pty import StreamPty, SyncStreamPty
from sorna_sdk.session import _SessionBase

from .helpers import deadline, track_bridge_end

pytestmark = pytest.mark.timeout(60)


def _handshake(session: _SessionBase, kernel_id: str) -> tuple[str, dict[str, str]]:
    """The signed URL and headers of a kernel's PTY route, for talking to it raw."""
    assert session._dialect is not None
    return _signed_handshake(session, session._dialect.pty_path(kernel_id))


@pytest.fixture
async def gateway() -> AsyncIterator[LocalGateway]:
    async with LocalGateway(pool_size=0) as gw:
        yield gw


@pytest.fixture
async def session(gateway: LocalGateway) -> AsyncIterator[AsyncSession]:
    async with AsyncSession(gateway.config()) as s:
        yield s


@pytest.fixture
async def kernel(session: AsyncSession) -> AsyncKernel:
    return await AsyncKernel.get_or_create("bash", session=session)


async def read_until(pty: StreamPty, marker: bytes, timeout: float = 10.0) -> bytes:
    """Output up to and including ``marker``."""
    data = b""
    async with deadline(timeout):
        while marker not in data:
            data += await pty.read()
    return data


async def read_match(pty: StreamPty, pattern: bytes, timeout: float = 10.0) -> bytes:
    """The first group of ``pattern`` once it appears in the output."""
    data = b""
    async with deadline(timeout):
        while (match := re.search(pattern, data)) is None:
            data += await pty.read()
    return match.group(1)


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as ended)."""
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError, IndexError):
        return False
    return state != "Z"


async def drain_until(sub: Subscription, marker: bytes, timeout: float = 10.0) -> int:
    """Read ``sub`` until ``marker`` appears; the byte count."""
    data = b""
    count = 0
    async with deadline(timeout):
        while marker not in data:
            chunk = await sub.get()
            assert chunk is not None, "the subscription ended"
            count += len(chunk)
            data = data[-len(marker) :] + chunk
    return count


def terminal_of(gateway: LocalGateway, kernel: AsyncKernel) -> Terminal:
    return gateway.registry.get(gateway.access_key, kernel.kernel_id).terminal()


async def test_echo_round_trip(kernel: AsyncKernel) -> None:
    async with await kernel.stream_pty() as pty:
        await pty.send('echo "@@$((40+2))@@"\n')
        assert b"@@42@@" in await read_until(pty, b"@@42@@")


async def test_shell_runs_in_the_work_dir_without_gateway_secrets(
    gateway: LocalGateway, kernel: AsyncKernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SORNA_SECRET_KEY", "leak")
    workdir = gateway.registry.get(gateway.access_key, kernel.kernel_id).workdir
    async with await kernel.stream_pty() as pty:
        await pty.send('echo "@@$PWD@@${SORNA_SECRET_KEY-none}@@$TERM@@"\n')
        out = await read_until(pty, b"xterm-256color@@")
    assert f"@@{workdir}@@none@@xterm-256color@@".encode() in out


async def test_resize_is_seen_by_stty(kernel: AsyncKernel) -> None:
    async with await kernel.stream_pty() as pty:
        await pty.resize(40, 132)
        await pty.send('echo "@@$(stty size)@@"\n')
        assert b"@@40 132@@" in await read_until(pty, b"132@@")


async def test_all_byte_values_travel_intact_in_raw_mode(
    gateway: LocalGateway, kernel: AsyncKernel
) -> None:
    every_byte = bytes(range(256))
    async with await kernel.stream_pty() as pty:
        await pty.send(
            'stty raw -echo; printf "@@%s@@" $((1+2)); head -c 256 > bytes.bin;'
            ' printf "<<%s>>" $((2+3)); cat bytes.bin; printf "<<%s>>" $((3+4)); stty sane\n'
        )
        await read_until(pty, b"@@3@@")  # the tty is raw and head is about to read
        await pty.send(every_byte)
        out = await read_until(pty, b"<<7>>")
    assert out.split(b"<<5>>", 1)[1].split(b"<<7>>", 1)[0] == every_byte
    workdir = gateway.registry.get(gateway.access_key, kernel.kernel_id).workdir
    assert (workdir / "bytes.bin").read_bytes() == every_byte


async def test_restart_gives_a_fresh_shell_on_the_same_connection(
    gateway: LocalGateway, kernel: AsyncKernel
) -> None:
    async with await kernel.stream_pty() as pty:
        await pty.send('MARK=kept; echo "@@${MARK:-unset}@@"\n')
        await read_until(pty, b"@@kept@@")
        old_pid = terminal_of(gateway, kernel).pid
        await pty.restart()
        await pty.send('echo "@@${MARK:-unset}@@"\n')
        assert b"@@unset@@" in await read_until(pty, b"@@unset@@")
        assert terminal_of(gateway, kernel).pid not in (None, old_pid)


async def test_exit_closes_the_stream_and_a_new_stream_gets_a_fresh_shell(
    gateway: LocalGateway, kernel: AsyncKernel
) -> None:
    async with await kernel.stream_pty() as pty:
        await pty.send('MARK=kept; echo "@@${MARK:-unset}@@"\n')
        await read_until(pty, b"@@kept@@")
        terminal = terminal_of(gateway, kernel)
        old_pid = terminal.pid
        await pty.send("echo last-words; exit 3\n")
        seen = b""
        with pytest.raises(PtyError) as closed:
            async with deadline(10):
                while True:
                    seen += await pty.read()
        assert b"last-words" in seen  # the shell's last output arrives before the close
        assert (closed.value.code, closed.value.reason) == (1000, "the shell exited (status 3)")
        assert terminal.pid is None  # no respawn under a closed stream
    async with await kernel.stream_pty() as pty:
        await pty.send('echo "@@${MARK:-unset}@@"\n')
        assert b"@@unset@@" in await read_until(pty, b"@@unset@@")
        assert terminal.pid not in (None, old_pid)
        await pty.send("exit\n")  # type: ignore[unreachable]
        async with deadline(10):
            async for _ in pty:  # iteration ends quietly at a shell's exit (close code 1000)
                pass


def test_reconnect_keeps_the_same_shell() -> None:
    with LocalGateway.start_in_thread(pool_size=0) as gw, Session(gw.config()) as s:
        kern = Kernel.get_or_create("bash", session=s)
        with kern.stream_pty() as pty:
            assert isinstance(pty, SyncStreamPty)
            pty.send('MARK=kept; echo "@@${MARK:-unset}@@"\n')
            data = b""
            while b"@@kept@@" not in data:
                data += pty.read(timeout=10)
        with kern.stream_pty() as pty:
            pty.send('echo "@@${MARK:-unset}@@"\n')
            data = b""
            while b"@@kept@@" not in data and b"@@unset@@" not in data:
                data += pty.read(timeout=10)
        assert b"@@kept@@" in data
        assert b"@@unset@@" not in data


async def test_bad_signature_is_refused_before_upgrade(
    gateway: LocalGateway, kernel: AsyncKernel
) -> None:
    async with AsyncSession(gateway.config(secret_key="not-the-secret")) as bad:
        with pytest.raises(AuthenticationError) as info:
            await AsyncKernel(kernel.kernel_id, session=bad).stream_pty()
    assert info.value.status == 401


async def test_unknown_kernel_is_refused_before_upgrade(session: AsyncSession) -> None:
    with pytest.raises(KernelNotFoundError) as info:
        await AsyncKernel("0" * 32, session=session).stream_pty()
    assert info.value.status == 404


async def test_unsigned_upgrade_gets_problem_json(gateway: LocalGateway) -> None:
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    async with httpx.AsyncClient(base_url=gateway.endpoint) as http:
        response = await http.get("/v2/stream/kernel/abc/pty", headers=headers)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/invalid-auth-params")


async def test_destroying_the_kernel_closes_the_stream_with_4404(
    gateway: LocalGateway, kernel: AsyncKernel
) -> None:
    pty = await kernel.stream_pty()
    await pty.send('(trap "" HUP; exec sleep 1000) & echo "@@$!@@"\n')  # deaf to SIGHUP
    terminal = terminal_of(gateway, kernel)
    job = terminal.host_pid(int(await read_match(pty, rb"@@(\d+)@@")))  # the sandbox's pid
    shell = terminal.pid
    assert shell is not None and job is not None and process_alive(job)
    await kernel.destroy()
    with pytest.raises(PtyError) as info:
        async with deadline(10):
            async for _chunk in pty:
                pass
    assert info.value.code == 4404
    assert info.value.reason == "kernel destroyed"
    await pty.close()
    # Killed at once, but the kernel reaps asynchronously: gone within a moment.
    async with deadline(5):
        while process_alive(shell) or process_alive(job):  # noqa: ASYNC110 (no event)
            await asyncio.sleep(0.02)


async def test_gateway_shutdown_closes_the_stream_with_1001() -> None:
    async with LocalGateway(pool_size=0) as gw, AsyncSession(gw.config()) as s:
        kern = await AsyncKernel.get_or_create("bash", session=s)
        pty = await kern.stream_pty()
        await pty.send('echo "@@$((1+1))@@"\n')
        await read_until(pty, b"@@2@@")
        closing = asyncio.create_task(gw.close())
        with pytest.raises(PtyError) as info:
            async with deadline(10):
                async for _chunk in pty:
                    pass
        await closing
        await pty.close()
    assert info.value.code == 1001


async def test_slow_reader_is_held_back_and_loses_nothing(
    gateway: LocalGateway, kernel: AsyncKernel
) -> None:
    total = 20_000_000
    async with await kernel.stream_pty() as pty:
        await pty.send('echo "@@$((2+2))@@"\n')
        await read_until(pty, b"@@4@@")
        terminal = terminal_of(gateway, kernel)
        await pty.send(f'head -c {total} /dev/zero; echo "@@$((1+1))@@"\n')
        await asyncio.sleep(2.5)  # not reading: the gateway must stop reading the pty
        assert not terminal.reading
        assert terminal.buffered_bytes <= terminal.high_water + 64 * 1024
        zeros = 0
        tail = b""
        async with deadline(30):
            while b"@@2@@" not in tail:
                chunk = await pty.read()
                zeros += chunk.count(0)
                tail = tail[-8:] + chunk
        assert zeros == total
        assert terminal.buffered_bytes < terminal.high_water


async def test_malformed_frames_close_with_1007_and_the_gateway_keeps_serving(
    session: AsyncSession, kernel: AsyncKernel
) -> None:
    url, headers = _handshake(session, kernel.kernel_id)
    bad_frames: list[str | bytes] = [
        "not json",
        json.dumps({"type": "stdin", "chars": "%%%"}),
        json.dumps({"type": "resize", "rows": 0, "cols": 80}),
        json.dumps({"type": "launch-missiles"}),
        json.dumps([1, 2]),
        b"\x00binary",
    ]
    for frame in bad_frames:
        async with connect(url, additional_headers=headers, compression=None) as ws:
            await ws.send(frame)
            with pytest.raises(ConnectionClosed) as info:
                async with deadline(5):
                    while True:
                        await ws.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == (1003 if isinstance(frame, bytes) else 1007), frame
        assert info.value.rcvd.reason, frame
    async with await kernel.stream_pty() as pty:
        await pty.send('echo "@@$((40+2))@@"\n')
        assert b"@@42@@" in await read_until(pty, b"@@42@@")


async def test_ping_keeps_the_kernel_alive() -> None:
    async with LocalGateway(pool_size=0, idle_timeout=1.0) as gw, AsyncSession(gw.config()) as s:
        pinged = await AsyncKernel.get_or_create("bash", session=s)
        idle = await AsyncKernel.get_or_create("bash", session=s)
        async with await pinged.stream_pty() as pty, await idle.stream_pty() as idle_pty:
            for _ in range(10):
                await pty.ping()
                await asyncio.sleep(0.25)
            info = await pinged.get_info()
            assert info.idle < 1000  # type: ignore[attr-defined]
            # An open stream alone does not keep a kernel alive; reaping closes it with 4404.
            with pytest.raises(PtyError) as closed:
                async with deadline(5):
                    async for _chunk in idle_pty:
                        pass
            assert closed.value.code == 4404
        with pytest.raises(KernelNotFoundError):
            await idle.get_info()


async def test_kernel_restart_restarts_the_terminal(
    gateway: LocalGateway, kernel: AsyncKernel
) -> None:
    async with await kernel.stream_pty() as pty:
        await pty.send('MARK=kept; echo "@@${MARK:-unset}@@"\n')
        await read_until(pty, b"@@kept@@")
        old_pid = terminal_of(gateway, kernel).pid
        await kernel.restart()
        await pty.send('echo "@@${MARK:-unset}@@"\n')
        assert b"@@unset@@" in await read_until(pty, b"@@unset@@")
    assert old_pid is not None and not process_alive(old_pid)


async def test_output_fans_out_and_a_lagging_subscriber_is_dropped(tmp_path: Path) -> None:
    terminal = Terminal(tmp_path, high_water=64 * 1024, low_water=16 * 1024, max_buffer=512 * 1024)
    try:
        fast, slow = await terminal.subscribe(), await terminal.subscribe()
        await terminal.write(b'head -c 3000000 /dev/zero; echo "@@$((1+1))@@"\n')
        seen = b""
        async with deadline(20):
            while b"@@2@@" not in seen[-64:]:
                seen = seen[-64:] + (await fast.get() or b"")
        assert slow.close_code == CLOSE_DROPPED
        assert slow.buffered == 0
        assert await slow.get() is None
        assert terminal.subscribers == 1
    finally:
        await terminal.close()
    assert fast.close_code == 4404


async def test_a_stuck_subscriber_is_dropped_after_the_stall_timeout(tmp_path: Path) -> None:
    terminal = Terminal(tmp_path, high_water=64 * 1024, low_water=16 * 1024, stall_timeout=0.5)
    try:
        stuck = await terminal.subscribe()
        await terminal.write(b"head -c 3000000 /dev/zero\n")
        await asyncio.sleep(1.5)  # paused for longer than the stall timeout
        assert stuck.close_code == CLOSE_DROPPED
        assert terminal.buffered_bytes == 0
        assert not terminal.reading  # nobody left to read for: the shell waits
        again = await terminal.subscribe()
        assert await drain_until(again, b"\0" * 1024) > 0  # output resumes for a newcomer
    finally:
        await terminal.close()


async def test_a_dropped_writer_s_pending_input_is_discarded(tmp_path: Path) -> None:
    terminal = Terminal(
        tmp_path, high_water=64 * 1024, low_water=16 * 1024, stall_timeout=0.5, input_high=64 * 1024
    )
    try:
        stuck = await terminal.subscribe()
        # Raw mode: a full input queue then holds the writer back (a canonical-mode tty would
        # silently drop the overflow instead).
        await terminal.write(b"stty raw -echo; head -c 100000000 /dev/zero\n", stuck)
        async with deadline(10):  # wait until head floods the unread subscriber
            while terminal.reading:  # noqa: ASYNC110 (a property to poll, no event to wait on)
                await asyncio.sleep(0.02)
        # The shell reads no input while its output is not read: this write has to wait.
        writing = asyncio.ensure_future(terminal.write(b"x" * 1_000_000, stuck))
        await asyncio.sleep(0.1)
        assert not writing.done()
        # Dropped for not reading: the waiting write fails instead of waiting for a next
        # subscriber, and its input is not kept for whoever connects next.
        with pytest.raises(TerminalClosed):
            async with deadline(5):
                await writing
        assert stuck.close_code == CLOSE_DROPPED
        assert terminal.buffered_bytes == 0
        with pytest.raises(TerminalClosed):
            await terminal.write(b"late\n", stuck)
    finally:
        await terminal.close()


async def test_a_dropped_writer_s_stream_ends_and_its_input_is_not_replayed(
    gateway: LocalGateway,
    session: AsyncSession,
    kernel: AsyncKernel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ended = track_bridge_end(monkeypatch)
    local = gateway.registry.get(gateway.access_key, kernel.kernel_id)
    terminal = local._terminal = Terminal(
        local.workdir,
        high_water=64 * 1024,
        low_water=16 * 1024,
        stall_timeout=0.5,
        input_high=64 * 1024,
    )
    url, headers = _handshake(session, kernel.kernel_id)

    def stdin(data: bytes) -> str:
        return json.dumps({"type": "stdin", "chars": base64.b64encode(data).decode()})

    async with connect(
        url, additional_headers=headers, compression=None, max_queue=1, close_timeout=1
    ) as ws:

        async def flood() -> None:
            await ws.send(stdin(b"head -c 1000000000 /dev/zero\n"))
            for _ in range(8):  # MBs of input while never reading the output
                await ws.send(stdin(b"x" * 500_000))

        sender = asyncio.ensure_future(flood())
        try:
            for _ in range(300):  # dropped after the stall timeout, its input discarded
                if not (terminal.subscribers or terminal.buffered_bytes):
                    break
                await asyncio.sleep(0.05)
            assert terminal.subscribers == 0
            assert terminal.buffered_bytes == 0
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await sender
    # The handler ends (no task or socket left behind) once the client is gone.
    async with deadline(20):
        await ended.wait()
    assert terminal.buffered_bytes == 0
