"""AsyncSession on each HTTP transport against the real gateway: the same answers either way.

``aiohttp`` is the session's default when aiohttp is installed; ``httpx`` is httpx's own
pool, passed explicitly as an application would to keep it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from sorna_sdk import APIConfig, AsyncKernel, AsyncSession
from sorna_sdk._transports._aiohttp import AiohttpTransport

NEWEST = "v9.20250722"  # the gateway's Backend.AI dialect has the file and event routes


def _session(config: APIConfig, transport_name: str) -> AsyncSession:
    transport = httpx.AsyncHTTPTransport() if transport_name == "httpx" else None
    opened = AsyncSession(config, transport=transport)
    expected = httpx.AsyncHTTPTransport if transport_name == "httpx" else AiohttpTransport
    assert isinstance(opened._http._transport, expected)
    return opened


@pytest.fixture(params=["aiohttp", "httpx"])
def transport_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def session(transport_name: str, sorna_config: APIConfig) -> AsyncIterator[AsyncSession]:
    async with _session(sorna_config.replace(version=NEWEST), transport_name) as opened:
        yield opened


async def test_calls_uploads_and_downloads(session: AsyncSession, tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("π and friends\n" * 2000)
    (tmp_path / "main.py").write_text("print(open('data.txt').read().count('π'))\n")
    token = f"transports-{uuid.uuid4().hex[:8]}"
    async with await AsyncKernel.get_or_create("python", token, session=session) as kern:
        assert (await kern.execute("print(6 * 7)")).stdout == "42\n"
        await kern.upload(["data.txt", "main.py"], base_dir=tmp_path)
        names = {entry.filename for entry in (await kern.list_files()).files}
        assert {"data.txt", "main.py"} <= names
        assert (await kern.run("exec(open('main.py').read())")).stdout == "2000\n"
        assert await kern.download_single("data.txt") == (tmp_path / "data.txt").read_bytes()
        [written] = await kern.download("data.txt", tmp_path / "out")
        assert written.read_bytes() == (tmp_path / "data.txt").read_bytes()
        infos = await asyncio.gather(*(kern.get_info() for _ in range(30)))
        assert {info.lang for info in infos} == {"python"}


async def test_live_output_over_long_polling(session: AsyncSession) -> None:
    seen: list[str] = []
    code = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.2)\n"
    token = f"transports-{uuid.uuid4().hex[:8]}"
    async with await AsyncKernel.get_or_create("python", token, session=session) as kern:
        result = await kern.run(
            code, on_output=lambda item: seen.append(item.text), transport="http"
        )
    assert result.stdout == "0\n1\n2\n"
    assert "".join(seen) == "0\n1\n2\n"


async def test_session_events_stream(session: AsyncSession, transport_name: str) -> None:
    token = f"transports-{uuid.uuid4().hex[:8]}"
    kern = await AsyncKernel.get_or_create("python", token, session=session)
    names: list[str] = []
    async with _session(session.config, transport_name) as other:
        watched = AsyncKernel(kern.kernel_id, client_token=token, session=other)

        async def listen() -> None:
            async with watched.events() as events:
                async for event in events:
                    names.append(event.event)

        listener = asyncio.create_task(listen())
        await asyncio.sleep(0.5)  # the stream is open before the session ends
        await kern.destroy()
        await asyncio.wait_for(listener, 15)
    assert names[-1] == "session_terminated", names
