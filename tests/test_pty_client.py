"""The PTY client on both fronts against a scripted loopback WebSocket server."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

import sorna_sdk
from sorna_sdk import APIConfig, AsyncKernel, AsyncSession, Kernel, Session
from sorna_sdk.auth import parse_authorization, verify
from sorna_sdk.models import OutFrame, decode_client_frame

from .fakes import ACCESS_KEY, SECRET_KEY

NOT_FOUND = b'{"type": "https://api.sorna.io/probs/kernel-not-found", "title": "No such kernel."}'


class PtyServer:
    """Echoes stdin frames as out frames; records every frame; can refuse or close."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.handshakes: list[Request] = []
        self.close_with: tuple[int, str] | None = None
        self.server: Server = serve(self.handle, "127.0.0.1", 0, process_request=self.check)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def check(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes.append(request)
        if "missing" in request.path:
            headers = Headers([("Content-Type", "application/problem+json")])
            return Response(HTTPStatus.NOT_FOUND, "Not Found", headers, NOT_FOUND)
        header = parse_authorization(request.headers["Authorization"])
        ok = verify(
            header,
            secret_key=SECRET_KEY,
            method="GET",
            path=request.path,
            date=request.headers["Date"],
            host=request.headers["Host"],
            content_type=request.headers.get("Content-Type", "application/octet-stream"),
            body=b"",
            version=request.headers["X-Sorna-Version"],
        )
        if not ok:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "bad signature\n")
        return None

    def handle(self, connection: ServerConnection) -> None:
        if self.close_with is not None:
            connection.close(*self.close_with)
            return
        for message in connection:
            frame = decode_client_frame(message)
            self.frames.append(json.loads(message))
            if frame.type == "stdin":
                connection.send(OutFrame.from_bytes(frame.payload).encode())
            if frame.type == "restart":
                connection.close(1000, "bye")
                return

    def config(self) -> APIConfig:
        return APIConfig(
            access_key=ACCESS_KEY, secret_key=SECRET_KEY, endpoint=f"http://127.0.0.1:{self.port}"
        )

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def pty_server() -> Iterator[PtyServer]:
    server = PtyServer()
    yield server
    server.stop()


ALL_BYTES = bytes(range(256))


def test_sync_round_trip_frames_and_signed_handshake(pty_server: PtyServer) -> None:
    with Session(pty_server.config()) as session:
        with Kernel("k-1", session=session).stream_pty() as pty:
            pty.send(ALL_BYTES)
            received = b""
            while len(received) < 256:
                received += pty.read(timeout=5)
            assert received == ALL_BYTES
            pty.send("héllo")
            assert pty.read(timeout=5) == "héllo".encode()
            pty.resize(40, 132)
            with pytest.raises(sorna_sdk.InvalidArgumentError, match="rows must be an integer"):
                pty.resize(0, 80)  # what a terminal without a size reports
            pty.ping()
            pty.send_str('{"type": "resize", "rows": 10, "cols": 20}')
            with pytest.raises(sorna_sdk.InvalidArgumentError):
                pty.send_str('{"type": "nuke"}')
            pty.restart()
            assert list(pty) == []  # the server closed with 1000: iteration just ends
            assert pty.close_code == 1000
    (handshake,) = pty_server.handshakes
    assert handshake.path == "/v2/stream/kernel/k-1/pty"
    assert handshake.headers["Host"] == f"127.0.0.1:{pty_server.port}"
    assert pty_server.frames[-4:] == [
        {"type": "resize", "rows": 40, "cols": 132},
        {"type": "ping"},
        {"type": "resize", "rows": 10, "cols": 20},
        {"type": "restart"},
    ]


async def test_async_round_trip(pty_server: PtyServer) -> None:
    async with AsyncSession(pty_server.config()) as session:
        pty = await AsyncKernel("k-2", session=session).stream_pty()
        async with pty:
            await pty.send(ALL_BYTES)
            received = b""
            async for chunk in pty:
                received += chunk
                if len(received) >= 256:
                    break
            assert received == ALL_BYTES
            await pty.resize(24, 80)
            await pty.restart()
            with pytest.raises(sorna_sdk.PtyError) as closed:
                await pty.read(timeout=5)
            assert closed.value.code == 1000
    assert pty_server.frames[-2:] == [
        {"type": "resize", "rows": 24, "cols": 80},
        {"type": "restart"},
    ]


def test_refused_handshake_is_a_typed_error(pty_server: PtyServer) -> None:
    with Session(pty_server.config()) as session:
        with pytest.raises(sorna_sdk.KernelNotFoundError) as info:
            Kernel("missing", session=session).stream_pty()
        assert info.value.status == 404
    with Session(pty_server.config().replace(secret_key="wrong")) as session:
        with pytest.raises(sorna_sdk.AuthenticationError):
            Kernel("k-3", session=session).stream_pty()


async def test_async_refused_handshake_and_abnormal_close(pty_server: PtyServer) -> None:
    async with AsyncSession(pty_server.config()) as session:
        with pytest.raises(sorna_sdk.KernelNotFoundError):
            await AsyncKernel("missing", session=session).stream_pty()
        pty_server.close_with = (4404, "kernel destroyed")
        pty = await AsyncKernel("k-4", session=session).stream_pty()
        with pytest.raises(sorna_sdk.PtyError, match="4404: kernel destroyed") as info:
            async for _ in pty:
                pass
        assert info.value.code == 4404 and info.value.reason == "kernel destroyed"
        await pty.close()


def test_read_timeout_and_unreachable_server(pty_server: PtyServer) -> None:
    with Session(pty_server.config()) as session:
        with Kernel("k-5", session=session).stream_pty() as pty:
            with pytest.raises(TimeoutError):
                pty.read(timeout=0.05)
    pty_server.stop()
    with Session(pty_server.config()) as session:
        with pytest.raises(sorna_sdk.APIConnectionError):
            Kernel("k-6", session=session).stream_pty(open_timeout=2)


def test_async_read_timeout(pty_server: PtyServer) -> None:
    async def main() -> None:
        async with AsyncSession(pty_server.config()) as session:
            async with await AsyncKernel("k-7", session=session).stream_pty() as pty:
                with pytest.raises(TimeoutError):  # the builtin, on every Python
                    await pty.read(timeout=0.05)

    asyncio.run(main())
