"""A driver that stops reading must not freeze the gateway: queued writes, deadlines, caps.

The drivers are stopped with SIGSTOP; before writes were queued, a 1 MiB ``send`` to a stopped
driver blocked the event loop for good (these tests then hang until pytest-timeout).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from sorna_sdk.local._runtime.languages import available_languages
from sorna_sdk.local._runtime.process import BUFFER_CAP, DriverProcess
from sorna_sdk.local._runtime.protocol import FrameDecoder, FrameTooLarge, encode_frame
from sorna_sdk.local._runtime.registry import KernelRegistry
from sorna_sdk.local.gateway import LocalGateway

from .helpers import deadline, run, text

MIB = 1024 * 1024
STALL = 1.5  # the write deadline these tests use (the default is 10 s)


class Ticker:
    """Counts how often the loop lets it run, and the longest gap between two runs."""

    def __init__(self) -> None:
        self.ticks = 0
        self.worst = 0.0
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            self.ticks += 1
            self.worst = max(self.worst, now - last)
            last = now

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def stop(proc: DriverProcess) -> None:
    os.kill(proc.pid, signal.SIGSTOP)


async def test_send_to_a_stopped_driver_does_not_block_the_loop(registry: KernelRegistry) -> None:
    stalled, _ = await registry.get_or_create("o", "token-stalled", "python3")
    other, _ = await registry.get_or_create("o", "token-other", "python3")
    proc = stalled._proc
    proc.write_deadline = STALL
    ticker = Ticker()
    stop(proc)
    started = time.monotonic()
    proc.send("exec", "x = '" + "a" * MIB + "'")
    assert time.monotonic() - started < 0.1  # queued, not written
    assert proc.pending_write > 0
    # While the stalled driver holds 1 MiB of ours, the loop serves everyone else.
    for i in range(3):
        assert text(await run(other, f"print({i} * 2)")) == f"{i * 2}\n"
    assert proc.alive
    await asyncio.wait_for(proc.exited.wait(), STALL + 5)
    assert time.monotonic() - started >= STALL - 0.1
    await ticker.stop()
    assert ticker.worst < 0.5 and ticker.ticks > 50
    assert proc.death_reason == f"the kernel stopped reading its input for {STALL:g} s"
    _items, died = proc.take()
    assert died is not None and died.kind == "died" and died.reason == proc.death_reason
    assert text(await run(other, "print('still fine')")) == "still fine\n"


async def test_a_real_gateway_keeps_answering_during_a_stall() -> None:
    async with LocalGateway(pool_size=0) as gw, httpx.AsyncClient(base_url=gw.endpoint) as http:
        kernel, _ = await gw.registry.get_or_create("o", "token-gw-stall", "python3")
        proc = kernel._proc
        proc.write_deadline = STALL
        stop(proc)
        proc.send("exec", "y = '" + "b" * MIB + "'")
        for _ in range(3):
            started = time.monotonic()
            answer = await asyncio.wait_for(http.get("/v2"), 1.0)
            assert answer.status_code == 200
            assert time.monotonic() - started < 1.0
        await asyncio.wait_for(proc.exited.wait(), STALL + 5)
        assert proc.death_reason is not None and "stopped reading its input" in proc.death_reason
        assert (await http.get("/v2")).status_code == 200


async def test_too_much_pending_input_kills_the_driver(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("o", "token-flood", "python3")
    proc = kernel._proc
    proc.max_pending_write = 2 * MIB
    stop(proc)
    proc.send("exec", "#" + "c" * (3 * MIB // 2))  # one frame on an empty queue: accepted
    assert proc.alive
    proc.send("exec", "#" + "d" * (3 * MIB // 2))  # over the bound: the driver is killed
    await asyncio.wait_for(proc.exited.wait(), 5)
    assert proc.death_reason is not None
    assert proc.death_reason.startswith("the kernel stopped reading its input (")
    assert proc.pending_write == 0


@pytest.mark.skipif("nodejs" not in available_languages(), reason="no node on PATH")
async def test_input_to_a_stopped_node_driver_is_queued_too(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("o", "token-node", "nodejs")
    first = await kernel.execute("query", "const line = input('? '); line.length", None)
    assert first.status == "waiting-input"
    proc = kernel._proc
    proc.write_deadline = STALL
    stop(proc)
    started = time.monotonic()
    proc.send("input", "e" * MIB)  # the input pipe holds 64 KiB; the rest waits for node
    assert time.monotonic() - started < 0.1
    await asyncio.wait_for(proc.exited.wait(), STALL + 5)
    assert proc.death_reason == f"the kernel stopped reading its input for {STALL:g} s"


async def test_large_frames_to_a_working_driver_arrive_whole(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("o", "token-big-code", "python3")
    code = "x = '" + "f" * (3 * MIB) + "'\nprint(len(x))"
    assert text(await run(kernel, code)) == f"{3 * MIB}\n"
    assert kernel._proc.pending_write == 0


async def test_a_slow_reader_within_the_deadline_is_kept(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("o", "token-slow", "python3")
    proc = kernel._proc
    proc.write_deadline = STALL
    stop(proc)
    code = "z = '" + "g" * MIB + "'\nprint(len(z))"
    first = await kernel.execute("query", code, None)  # 0.5 s of flush window: nothing yet
    assert first.status == "continued" and proc.pending_write > 0
    os.kill(proc.pid, signal.SIGCONT)  # reading again before the deadline
    results = await run(kernel, "")
    assert text(results) == f"{MIB}\n"
    assert proc.alive and proc.death_reason is None and proc.pending_write == 0


# ---- frames from the driver ------------------------------------------------------------------


def test_decoder_refuses_an_oversize_length_before_its_body() -> None:
    decoder = FrameDecoder(max_frame=1000)
    good = encode_frame("stdout", "hi")
    header = (5000).to_bytes(4, "big")
    with pytest.raises(FrameTooLarge) as info:
        decoder.feed(good + header)  # no body needed: the header alone is refused
    assert (info.value.size, info.value.limit) == (5000, 1000)
    assert info.value.frames == [("stdout", "hi")]  # what came before is kept
    assert decoder.buffered == 0
    with pytest.raises(FrameTooLarge):
        FrameDecoder(max_frame=1000).feed(encode_frame("media", ["x", "y" * 2000]))


def test_decoder_counts_a_partial_frame() -> None:
    decoder = FrameDecoder()
    frame = encode_frame("media", ["image/png", "z" * 10000])
    assert decoder.feed(frame[:6000]) == []
    assert decoder.buffered == 6000
    assert decoder.feed(frame[6000:]) == [("media", ["image/png", "z" * 10000])]
    assert decoder.buffered == 0


_WRITER = """
import json, os, socket, struct, time
ctl = socket.socket(fileno=int(os.environ['SORNA_CTL_FD']))
def send(kind, data):
    body = json.dumps({'t': kind, 'd': data}).encode()
    ctl.sendall(struct.pack('>I', len(body)) + body)
send('stdout', 'o' * (900 * 1024))
send('media', ['application/octet-stream', 'm' * (6 * 1024 * 1024)])
send('finished', None)
time.sleep(60)
"""


async def test_a_partial_frame_counts_toward_the_buffer_cap(tmp_path: Path) -> None:
    proc = DriverProcess.spawn(
        [sys.executable, "-c", _WRITER], cwd=tmp_path, env=dict(os.environ), max_frame=16 * MIB
    )
    try:
        async with deadline(10):
            while not proc.over_cap():
                proc.changed.clear()
                await proc.changed.wait()
            await asyncio.sleep(0.2)  # the driver keeps writing: nothing more is read
            # 900 K characters of text and about 1 MiB of the media frame, not 6 MiB of it.
            assert proc.buffered < BUFFER_CAP + 128 * 1024
            assert not proc.has_control()
            items, control = proc.take()
            assert "".join(i.data for i in items) == "o" * (900 * 1024) and control is None
            # With the text collected the frame is read to its end.
            items = []
            while control is None:
                if not proc.has_control() and not proc.over_cap():
                    proc.changed.clear()
                    await proc.changed.wait()
                    continue
                got, control = proc.take()
                items += got
        assert [i.kind for i in items] == ["media"] and len(items[0].data[1]) == 6 * MIB
        assert control.kind == "finished"
    finally:
        await proc.close(grace=0.1)
    assert not proc.alive
