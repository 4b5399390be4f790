"""The aiohttp-backed transport of AsyncSession against raw asyncio servers.

The servers speak bytes, so each test decides exactly when a connection drops: before
anything is read (never sent), or after the whole request was read (maybe sent). The
SDK must repeat only what provably never reached the server.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import socket
import warnings
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
import pytest

from sorna_sdk import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AsyncKernel,
    AsyncSession,
)
from sorna_sdk._retry import Failure
from sorna_sdk._transports import classify
from sorna_sdk._transports._aiohttp import AiohttpTransport

from .fakes import config

HELLO = json.dumps({"version": "v2.20170315"}).encode()

#: What the server does with one request, after reading all of it.
Action = bytes | str


def _answer(body: bytes, status: str = "200 OK") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class RawServer:
    """Reads whole HTTP/1.1 requests and follows a script: answer, ``drop`` or ``hang``."""

    def __init__(self, *actions: Action) -> None:
        self.actions: deque[Action] = deque(actions)
        self.requests: list[bytes] = []
        self.port = 0
        self._stopping = asyncio.Event()
        self._handlers: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = writer
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                action = self.actions.popleft() if self.actions else "drop"
                if action == "drop":  # the request was read in full: it reached the server
                    return
                if action == "hang":
                    await self._stopping.wait()
                    return
                assert isinstance(action, bytes)
                writer.write(action)
                await writer.drain()
        finally:
            writer.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[RawServer]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self._stopping.set()
            server.close()
            for writer in self._handlers.values():
                writer.close()  # handlers waiting for a next request see the end of it
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await server.wait_closed()


TRANSPORTS: dict[str, Callable[[], httpx.AsyncBaseTransport | None]] = {
    "aiohttp": lambda: None,  # the session's default
    "httpx": httpx.AsyncHTTPTransport,
}


@pytest.fixture(params=sorted(TRANSPORTS))
def transport_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _session(endpoint: str, transport_name: str, **changes: Any) -> AsyncSession:
    transport = TRANSPORTS[transport_name]()
    session = AsyncSession(config(endpoint=endpoint, **changes), transport=transport)
    if transport_name == "aiohttp":
        assert isinstance(session._http._transport, AiohttpTransport)
    return session


async def test_execute_dropped_after_it_was_written_is_not_repeated(transport_name: str) -> None:
    async with RawServer("drop", "drop", "drop").running() as server:
        async with _session(server.endpoint, transport_name, max_retries=3) as session:
            kern = AsyncKernel("kernel-1", session=session)
            with pytest.raises(APIConnectionError) as caught:
                await kern.execute("print(1)")
    assert len(server.requests) == 1, "the execute was sent again"
    assert server.requests[0].startswith(b"POST /v2/kernel/kernel-1 HTTP/1.1\r\n")
    assert not isinstance(caught.value, APITimeoutError)
    assert "POST" in str(caught.value) and caught.value.method == "POST"
    cause = caught.value.__cause__
    assert isinstance(cause, httpx.RemoteProtocolError), repr(cause)
    assert classify(cause) is Failure.MAYBE_SENT


async def test_an_idempotent_call_dropped_after_sending_is_repeated(transport_name: str) -> None:
    async with RawServer("drop", "drop", _answer(HELLO)).running() as server:
        async with _session(server.endpoint, transport_name, max_retries=2) as session:
            hello = await session.hello()
    assert hello.version == "v2.20170315"
    assert len(server.requests) == 3


async def test_aiohttp_does_not_repeat_a_get_behind_the_sessions_back() -> None:
    # First answer keeps the connection; the second GET on it is dropped after reading.
    async with RawServer(_answer(HELLO), "drop").running() as server:
        async with _session(server.endpoint, "aiohttp", max_retries=0) as session:
            await session.hello()
            with pytest.raises(APIConnectionError):
                await session.hello()
    assert len(server.requests) == 2


async def test_a_read_timeout_is_typed_and_an_execute_not_repeated(transport_name: str) -> None:
    async with RawServer("hang", "hang").running() as server:
        async with _session(server.endpoint, transport_name, timeout=0.3, max_retries=2) as session:
            with pytest.raises(APITimeoutError) as caught:
                await AsyncKernel("kernel-1", session=session).execute("print(1)")
    assert len(server.requests) == 1
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_refused_connection_is_never_sent_and_typed() -> None:
    transport = AiohttpTransport()
    request = httpx.Request("POST", f"http://127.0.0.1:{_closed_port()}/v2/kernel/k", content=b"{}")
    try:
        with pytest.raises(httpx.ConnectError) as caught:
            await transport.handle_async_request(request)
    finally:
        await transport.aclose()
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)
    assert classify(caught.value) is Failure.NOT_SENT


async def test_a_refused_execute_is_retried_then_typed() -> None:
    attempts = 0

    class Counting(AiohttpTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal attempts
            attempts += 1
            return await super().handle_async_request(request)

    endpoint = f"http://127.0.0.1:{_closed_port()}"
    async with AsyncSession(
        config(endpoint=endpoint, max_retries=2), transport=Counting()
    ) as session:
        with pytest.raises(APIConnectionError) as caught:
            await AsyncKernel("k", session=session).execute("print(1)")
    assert attempts == 3  # nothing reached a server, so each try was safe
    assert not isinstance(caught.value, APITimeoutError)


class _MislabellingTransport(httpx.AsyncBaseTransport):
    """What httpx-aiohttp does with a dropped connection: ConnectTimeout from aiohttp's error."""

    def __init__(self) -> None:
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        try:
            raise aiohttp.ServerDisconnectedError()
        except aiohttp.ServerDisconnectedError as exc:
            raise httpx.ConnectTimeout(str(exc), request=request) from exc


async def test_a_user_transport_is_judged_by_the_underlying_cause() -> None:
    transport = _MislabellingTransport()
    async with AsyncSession(config(max_retries=3), transport=transport) as session:
        with pytest.raises(APITimeoutError):
            await AsyncKernel("k", session=session).execute("print(1)")
    assert transport.calls == 1


def test_classify_trusts_connect_failures_without_an_aiohttp_cause() -> None:
    request = httpx.Request("GET", "http://127.0.0.1/")
    assert classify(httpx.ConnectError("refused", request=request)) is Failure.NOT_SENT
    assert classify(httpx.ConnectTimeout("slow", request=request)) is Failure.NOT_SENT
    assert classify(httpx.ReadError("reset", request=request)) is Failure.MAYBE_SENT
    assert classify(httpx.RemoteProtocolError("gone", request=request)) is Failure.MAYBE_SENT
    try:
        raise httpx.ConnectTimeout("pool", request=request) from aiohttp.ConnectionTimeoutError()
    except httpx.ConnectTimeout as exc:
        assert classify(exc) is Failure.NOT_SENT


async def test_the_wire_carries_httpx_headers_only() -> None:
    seen: dict[str, dict[str, str]] = {}
    for name in sorted(TRANSPORTS):
        async with RawServer(_answer(b'{"result": {}}')).running() as server:
            async with _session(server.endpoint, name) as session:
                kern = AsyncKernel("k%20x", session=session)
                with pytest.raises(APIResponseValidationError):  # the answer does not matter
                    await kern.complete("pri", row=0, col=3)
        head, _, body = server.requests[0].partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        headers.pop("Date")
        headers.pop("Authorization")
        headers["Host"] = headers["Host"].rsplit(":", 1)[0]
        seen[name] = {"request-line": lines[0], "body": body.decode(), **headers}
    assert seen["aiohttp"] == seen["httpx"]
    assert seen["aiohttp"]["request-line"] == "POST /v2/kernel/k%2520x HTTP/1.1"


async def test_a_given_transport_or_client_wins() -> None:
    mock = httpx.MockTransport(lambda request: httpx.Response(200, content=HELLO))
    async with AsyncSession(config(), transport=mock) as session:
        assert session._http._transport is mock
        assert (await session.hello()).version == "v2.20170315"
    async with httpx.AsyncClient(transport=mock) as client:
        async with AsyncSession(config(), http_client=client) as session:
            assert session._http is client


async def test_without_aiohttp_the_session_uses_httpx_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    import sorna_sdk._transports as transports

    monkeypatch.setattr(transports, "_aiohttp_found", False)
    async with AsyncSession(config()) as session:
        assert isinstance(session._http._transport, httpx.AsyncHTTPTransport)


async def test_a_session_never_closed_goes_quietly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="asyncio")
    async with RawServer(_answer(HELLO)).running() as server:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            session = _session(server.endpoint, "aiohttp")
            await session.hello()
            del session
            gc.collect()
    assert not [w for w in caught if "nclosed" in str(w.message)], [str(w.message) for w in caught]
    assert not caplog.records, [r.getMessage() for r in caplog.records]


def test_one_session_serves_successive_event_loops() -> None:
    async def scenario() -> None:
        async with RawServer(_answer(HELLO), _answer(HELLO)).running() as server:
            session.config = session.config.replace(endpoint=server.endpoint)
            assert (await session.hello()).version == "v2.20170315"
            assert (await session.hello()).version == "v2.20170315"

    session = AsyncSession(config())
    asyncio.run(scenario())
    asyncio.run(scenario())
    asyncio.run(session.close())
