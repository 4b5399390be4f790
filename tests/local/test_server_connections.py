"""The gateway's connections: keep-alive, head and body deadlines, the cap, file descriptors."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from sorna_sdk import AsyncKernel, AsyncSession
from sorna_sdk._constants import API_VERSION
from sorna_sdk.auth import sign
from sorna_sdk.local import GatewaySettings, LocalGateway
from sorna_sdk.pty import StreamPty

from .helpers import PROBS, deadline

REPO = Path(__file__).resolve().parents[2]
HELLO = b"GET /v2 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@asynccontextmanager
async def serving(**settings: Any) -> AsyncIterator[LocalGateway]:
    async with LocalGateway(pool_size=0, sandbox="none", **settings) as gateway:
        yield gateway


async def connect(gateway: LocalGateway) -> Conn:
    return await asyncio.open_connection("127.0.0.1", gateway.port)


def close(conn: Conn) -> None:
    conn[1].close()


async def response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One response: its status and body (``Content-Length`` framed)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return int(lines[0].split()[1]), await reader.readexactly(length)


async def until_closed(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection, within ``seconds``."""
    data = b""
    async with deadline(seconds):
        try:
            while chunk := await reader.read(65536):
                data += chunk
        except ConnectionResetError:
            pass
    return data


async def trickle(writer: asyncio.StreamWriter, data: bytes, interval: float) -> None:
    """Send ``data`` one byte per ``interval`` seconds, until the server hangs up."""
    try:
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(interval)
    except (ConnectionError, RuntimeError):
        pass  # closed by the server: what is being tested


async def test_idle_keepalive_connections_are_closed() -> None:
    async with serving(keepalive_timeout=1.0, header_timeout=30.0) as gateway:
        conns = await asyncio.gather(*(connect(gateway) for _ in range(300)))
        try:
            for _reader, writer in conns:
                writer.write(HELLO)
            answers = await asyncio.gather(*(response(reader) for reader, _ in conns))
            assert {status for status, _body in answers} == {200}
            assert gateway.connections == 300  # kept alive
            start = time.monotonic()
            rest = await asyncio.gather(*(until_closed(reader, 4.0) for reader, _ in conns))
            assert rest == [b""] * 300
            assert time.monotonic() - start >= 0.8
            await settle(lambda: gateway.connections == 0)
        finally:
            for conn in conns:
                close(conn)


async def test_slowloris_connections_are_closed_at_the_head_deadline() -> None:
    async with serving(header_timeout=1.0, keepalive_timeout=30.0) as gateway:
        conns = await asyncio.gather(*(connect(gateway) for _ in range(50)))
        start = time.monotonic()
        senders = [
            asyncio.ensure_future(trickle(writer, HELLO[:-2] + b"X-Slow: " + b"a" * 200, 0.2))
            for _reader, writer in conns
        ]
        try:
            answers = await asyncio.gather(*(until_closed(reader, 4.0) for reader, _ in conns))
            elapsed = time.monotonic() - start
        finally:
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)
            for conn in conns:
                close(conn)
        assert 0.9 <= elapsed <= 4.0
        for answer in answers:
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
            body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
            assert body["type"] == PROBS + "generic-bad-request"
        await settle(lambda: gateway.connections == 0)


async def test_a_connection_that_sends_nothing_is_closed_silently() -> None:
    async with serving(header_timeout=0.5, keepalive_timeout=30.0) as gateway:
        reader, writer = await connect(gateway)
        try:
            start = time.monotonic()
            assert await until_closed(reader, 3.0) == b""  # no 408 to read as a later answer
            assert time.monotonic() - start >= 0.4
        finally:
            writer.close()


async def test_a_slow_second_request_is_closed_at_the_head_deadline() -> None:
    async with serving(header_timeout=1.0, keepalive_timeout=30.0) as gateway:
        reader, writer = await connect(gateway)
        try:
            writer.write(HELLO)
            assert (await response(reader))[0] == 200
            await asyncio.sleep(1.5)  # idle longer than the head deadline: still open
            sender = asyncio.ensure_future(trickle(writer, HELLO, 0.2))
            start = time.monotonic()
            answer = await until_closed(reader, 4.0)
            assert time.monotonic() - start >= 0.9
            assert answer.startswith(b"HTTP/1.1 408 ")
            await sender
        finally:
            writer.close()


async def test_a_slow_body_is_closed_at_the_body_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="sorna_sdk.local")
    async with serving(body_timeout=1.0, header_timeout=30.0, keepalive_timeout=30.0) as gateway:
        body = json.dumps({"echo": "x" * 500}).encode()
        reader, writer = await connect(gateway)
        try:
            writer.write(signed_head(gateway, "GET", "/v2/authorize", body))
            sender = asyncio.ensure_future(trickle(writer, body, 0.2))
            start = time.monotonic()
            assert await until_closed(reader, 4.0) == b""
            assert time.monotonic() - start >= 0.9
            await sender
        finally:
            writer.close()
        await settle(lambda: gateway.connections == 0)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_slow_but_timely_clients_are_served() -> None:
    async with serving(header_timeout=1.5, body_timeout=1.5, keepalive_timeout=2.5) as gateway:
        reader, writer = await connect(gateway)
        try:
            await trickle(writer, HELLO, 0.5 / len(HELLO))  # the head in pieces, within 1.5 s
            assert (await response(reader))[0] == 200
            await asyncio.sleep(1.8)  # idle past the head deadline, within keep-alive
            writer.write(HELLO + HELLO)  # pipelined
            assert [(await response(reader))[0] for _ in range(2)] == [200, 200]
            body = json.dumps({"echo": "slow"}).encode()
            writer.write(signed_head(gateway, "GET", "/v2/authorize", body))
            await trickle(writer, body, 0.8 / len(body))
            status, answer = await response(reader)
            assert (status, json.loads(answer)["echo"]) == (200, "slow")
        finally:
            writer.close()


async def test_pty_streams_outlive_the_request_deadlines() -> None:
    async with (
        serving(header_timeout=0.5, body_timeout=0.5, keepalive_timeout=5.0) as gateway,
        AsyncSession(gateway.config()) as session,
    ):
        kernel = await AsyncKernel.get_or_create("bash", session=session)
        async with await kernel.stream_pty() as pty:
            await pty.send('echo "@@$((20+1))@@"\n')
            await read_until_marker(pty, b"@@21@@")
            await asyncio.sleep(1.5)
            await pty.send('echo "@@$((20+2))@@"\n')
            await read_until_marker(pty, b"@@22@@")
        await asyncio.sleep(0.8)  # the session's kept-alive connection, idle past the deadline
        assert (await kernel.get_info()).lang == "bash"


async def test_connections_over_the_cap_are_refused_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="sorna_sdk.local")
    async with serving(max_connections=3, keepalive_timeout=30.0) as gateway:
        conns = [await connect(gateway) for _ in range(3)]
        try:
            for reader, writer in conns:
                writer.write(HELLO)
                assert (await response(reader))[0] == 200
            refused = [await connect(gateway) for _ in range(5)]
            for reader, writer in refused:
                answer = await until_closed(reader, 1.0)
                writer.close()
                assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
                body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
                assert body["type"] == PROBS + "service-unavailable"
            assert gateway.connections == 3
            close(conns.pop())
            await settle(lambda: gateway.connections == 2)
            conns.append(await connect(gateway))
            conns[-1][1].write(HELLO)
            assert (await response(conns[-1][0]))[0] == 200
        finally:
            for conn in conns:
                close(conn)
    refusals = [r for r in caplog.records if "refusing connections" in r.getMessage()]
    assert len(refusals) == 1  # one line for the burst, not one per connection


def test_connection_settings_are_validated() -> None:
    defaults = GatewaySettings()
    assert (defaults.keepalive_timeout, defaults.header_timeout, defaults.body_timeout) == (
        75.0,
        20.0,
        60.0,
    )
    assert defaults.max_connections == 1000
    for field in ("keepalive_timeout", "header_timeout", "body_timeout"):
        with pytest.raises(ValueError, match=field):
            GatewaySettings(**{field: 0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_connections"):
        GatewaySettings(max_connections=0)


def test_the_soft_file_limit_is_raised_at_start() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip("the hard RLIMIT_NOFILE is too low to lower the soft one")
    code = """
        import asyncio, resource
        from sorna_sdk.local import LocalGateway
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        async def main():
            async with LocalGateway(pool_size=0, sandbox="none"):
                print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)
        asyncio.run(main())
    """
    raised, hard_limit = (int(x) for x in python(code).stdout.split())
    assert raised > 256
    if hard_limit != resource.RLIM_INFINITY:
        assert raised == hard_limit


def test_accept_errors_are_logged_once_per_interval() -> None:
    # A gateway with 64 file descriptors, and 100 connections: accept() fails with EMFILE,
    # and asyncio logs it (with a traceback) each second for as long as it lasts.
    code = """
        import asyncio, logging, resource, socket, sys, time
        from sorna_sdk.local import LocalGateway
        logging.basicConfig(stream=sys.stderr, level=logging.ERROR)
        interval = float(sys.argv[1])
        async def main():
            async with LocalGateway(
                pool_size=0, sandbox="none", raise_nofile_limit=False,
                accept_error_log_interval=interval,
            ) as gw:
                socks = []
                soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                resource.setrlimit(resource.RLIMIT_NOFILE, (len(list_fds()) + 8, hard))
                try:
                    for _ in range(40):
                        sock = socket.socket()
                        sock.setblocking(False)
                        try:
                            sock.connect(("127.0.0.1", gw.port))
                        except BlockingIOError:
                            pass
                        socks.append(sock)
                except OSError:
                    pass
                await asyncio.sleep(3.5)
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
                for sock in socks:
                    sock.close()
        def list_fds():
            import os
            return os.listdir("/proc/self/fd")
        asyncio.run(main())
    """
    throttled = python(code, "10").stderr.count("socket.accept() out of system resource")
    plain = python(code, "0").stderr.count("socket.accept() out of system resource")
    assert plain >= 3  # the flood this prevents: one line (and traceback) per second
    assert throttled == 1


async def test_the_accept_error_filter_passes_other_errors_and_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    before = loop.get_exception_handler()
    emfile = OSError(errno.EMFILE, "Too many open files")
    with socket.socket() as sock:
        context = {"message": "socket.accept() out of system resource", "exception": emfile}
        context["socket"] = sock
        async with serving(accept_error_log_interval=0.5):
            with caplog.at_level(logging.ERROR, logger="asyncio"):
                for _ in range(3):
                    loop.call_exception_handler(dict(context))
                loop.call_exception_handler({"message": "something else"})
                await asyncio.sleep(0.6)
                loop.call_exception_handler(dict(context))
        assert loop.get_exception_handler() is before  # put back by close()
    messages = [r.getMessage().split("\n", 1)[0] for r in caplog.records]
    assert messages[0] == "socket.accept() out of system resource"
    assert messages[1] == "something else"
    assert messages[2] == "socket.accept() out of system resource (2 more not logged)"
    assert len(messages) == 3


# -- helpers ------------------------------------------------------------------------------


def signed_head(gateway: LocalGateway, method: str, path: str, body: bytes) -> bytes:
    """A signed request's head (request line and headers) for ``body`` sent as JSON."""
    date = datetime.now(timezone.utc).isoformat()
    host = f"127.0.0.1:{gateway.port}"
    authorization = sign(
        method=method,
        path=path,
        date=date,
        host=host,
        content_type="application/json",
        body=body,
        version=API_VERSION,
        access_key=gateway.access_key,
        secret_key=gateway.secret_key,
    )
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}",
        f"Date: {date}",
        f"X-Sorna-Version: {API_VERSION}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        f"Authorization: {authorization}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_until_marker(pty: StreamPty, marker: bytes, timeout: float = 10.0) -> None:
    data = b""
    async with deadline(timeout):
        while marker not in data:
            data += await pty.read()


async def settle(condition: Any, timeout: float = 5.0) -> None:
    async with deadline(timeout):
        while not condition():  # noqa: ASYNC110 (gateway counters have no event to wait on)
            await asyncio.sleep(0.02)


def python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORNA_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )


def test_204_heads_get_their_content_length_back() -> None:
    """aiohttp drops Content-Length from 204s; sorna-client 0.9.8 needs it (make interop)."""
    from sorna_sdk.local._http.connections import _with_length

    head = b"HTTP/1.1 204 No Content\r\nContent-Type: application/octet-stream\r\n\r\n"
    assert _with_length(head) == (
        b"HTTP/1.1 204 No Content\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    kept = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
    assert _with_length(kept) == kept
    for other in (b"HTTP/1.1 200 OK\r\n\r\n", b"204 bytes of body\r\n\r\n", b"HTTP/1.1 204 "):
        assert _with_length(other) == other
