"""The Backend.AI streams on both fronts: the execute WebSocket and the PTY WebSocket against
a scripted loopback ``websockets`` server, and the session-events SSE stream against an
``httpx.MockTransport``.

The wire shapes are those of backend.ai-manager 26.9.6 (``tests/data/backendai-transcripts``).
The WebSocket server is websockets' asyncio server in the test's event loop; the sync front
runs in a worker thread (``asyncio.to_thread``) so that the loop keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any, Literal

import httpx
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

import sorna_sdk
import sorna_sdk.events
from sorna_sdk import (
    APIConfig,
    AsyncKernel,
    AsyncSession,
    ExecutionResult,
    Kernel,
    KernelNotFoundError,
    Session,
    SessionEvent,
    StreamError,
    UnsupportedOperationError,
)
from sorna_sdk.auth import InvalidAuthorization, parse_authorization, verify
from sorna_sdk.models import ExecMode

from ..fakes import ACCESS_KEY, FIXED_DATE, SECRET_KEY, config

Front = Literal["sync", "async"]
FRONTS = pytest.mark.parametrize("front", ["sync", "async"])

V9 = "v9.20250722"
#: The fake-agent session of the recorded lab (scenario 73).
KERNEL_ID = "85a1da6a-97cb-4299-856b-1403195d1294"
NAME = "lab-fake-probe"
OTHER_ID = "0f7c2a61-5b7e-4f0e-9d7c-2d9a3c1e4b55"
OTHER_NAME = "someone-else"
#: The manager's answer to a stream of an unknown session (scenarios 54, 55, 60).
NOT_FOUND = (
    b'{"type":"https://api.backend.ai/probs/entity-not-found","title":"Entity not found.",'
    b'"error_code":"session_read_not-found","msg":"No SessionRow matches the given key"}'
)
MISSING = "lab-no-such-session"


# -- a scripted WebSocket server ----------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send one message (``str``: a TEXT frame, ``bytes``: a BINARY frame)."""

    message: str | bytes


@dataclass(frozen=True)
class Recv:
    """Receive one message and record it."""


@dataclass(frozen=True)
class Close:
    """Close the WebSocket with a close frame."""

    code: int = 1000
    reason: str = ""


@dataclass(frozen=True)
class Abort:
    """Drop the TCP connection without a close frame."""


@dataclass(frozen=True)
class Drain:
    """Record whatever arrives until the client closes."""


Step = Send | Recv | Close | Abort | Drain


@dataclass(frozen=True)
class Handshake:
    path: str
    headers: Headers
    verified: bool


@dataclass
class WsServer:
    """Plays ``script`` on each connection; records handshakes and received messages."""

    version: str = V9
    script: list[Step] = field(default_factory=list)
    handshakes: list[Handshake] = field(default_factory=list)
    received: list[str | bytes] = field(default_factory=list)
    port: int = 0

    def check(self, connection: ServerConnection, request: Request) -> Response | None:
        try:
            verified = verify(
                parse_authorization(request.headers.get("Authorization", "")),
                secret_key=SECRET_KEY,
                method="GET",
                path=request.path,
                date=request.headers.get("Date", ""),
                host=request.headers.get("Host", ""),
                content_type="application/octet-stream",
                body=b"",
                version=self.version,
                version_header="x-backendai-version",
                hash_body=False,
            )
        except (InvalidAuthorization, ValueError):
            verified = False
        self.handshakes.append(Handshake(request.path, request.headers, verified))
        if MISSING in request.path:
            headers = Headers(
                [
                    ("Content-Type", "application/problem+json; charset=utf-8"),
                    ("Content-Length", str(len(NOT_FOUND))),
                ]
            )
            return Response(HTTPStatus.NOT_FOUND, "Not Found", headers, NOT_FOUND)
        if not verified:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "bad signature\n")
        return None

    async def handle(self, connection: ServerConnection) -> None:
        try:
            for step in self.script:
                if isinstance(step, Send):
                    await connection.send(step.message)
                elif isinstance(step, Recv):
                    self.received.append(await asyncio.wait_for(connection.recv(), 5))
                elif isinstance(step, Close):
                    await connection.close(step.code, step.reason)
                    return
                elif isinstance(step, Abort):
                    connection.transport.abort()
                    return
                else:
                    async for message in connection:
                        self.received.append(message)
        except ConnectionClosed:
            pass

    def config(self, version: str | None = None) -> APIConfig:
        return config(endpoint=f"http://127.0.0.1:{self.port}", version=version or self.version)

    def sent_json(self, index: int) -> Any:
        """A received message parsed as JSON, checking it was a TEXT frame."""
        message = self.received[index]
        assert isinstance(message, str), f"message {index} was a binary frame: {message!r}"
        return json.loads(message)


@pytest.fixture
async def ws() -> AsyncIterator[WsServer]:
    server = WsServer()
    async with serve(
        server.handle, "127.0.0.1", 0, process_request=server.check, compression=None
    ) as running:
        server.port = next(iter(running.sockets)).getsockname()[1]
        yield server


def check_handshake(ws: WsServer, path: str, version: str = V9) -> None:
    (handshake,) = ws.handshakes
    assert handshake.path == path
    assert handshake.verified, "the handshake signature does not verify"
    headers = handshake.headers
    assert headers["X-BackendAI-Version"] == version
    assert headers["Host"] == f"127.0.0.1:{ws.port}"
    assert headers["Authorization"].startswith(
        f"BackendAI signMethod=HMAC-SHA256, credential={ACCESS_KEY}:"
    )
    assert headers["Content-Type"] == "application/octet-stream"
    datetime.fromisoformat(headers["Date"])  # an ISO 8601 date, as the manager expects


def frame(status: str, *console: tuple[str, str], **extra: Any) -> str:
    """A result frame as the manager sends it."""
    body: dict[str, Any] = {
        "status": status,
        "console": [list(item) for item in console],
        "exitCode": None,
        "options": None,
        "files": [],
    }
    body.update(extra)
    return json.dumps(body)


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- execute stream -------------------------------------------------------------------------


async def stream_frames(
    front: Front,
    cfg: APIConfig,
    code: str = "print(42)",
    *,
    mode: ExecMode = "query",
    opts: dict[str, Any] | None = None,
    kernel_id: str = KERNEL_ID,
) -> list[ExecutionResult]:
    """Every frame of one streamed run, by iterating the stream."""
    if front == "sync":

        def run() -> list[ExecutionResult]:
            with Session(cfg) as session:
                kern = Kernel(kernel_id, session=session)
                with kern.stream_execute(code, mode=mode, opts=opts) as stream:
                    frames = list(stream)
                    assert stream.done and stream.last is frames[-1]
                    return frames

        return await asyncio.to_thread(run)
    async with AsyncSession(cfg) as session:
        kern = AsyncKernel(kernel_id, session=session)
        async with await kern.stream_execute(code, mode=mode, opts=opts) as stream:
            frames = [result async for result in stream]
            assert stream.done and stream.last is frames[-1]
            return frames


async def stream_result(
    front: Front, cfg: APIConfig, code: str, *, input: Sequence[str] = ()
) -> ExecutionResult:
    """The merged result of one streamed run (``result(input=...)``)."""
    if front == "sync":

        def run() -> ExecutionResult:
            with Session(cfg) as session:
                with Kernel(KERNEL_ID, session=session).stream_execute(code) as stream:
                    return stream.result(input=list(input))

        return await asyncio.to_thread(run)
    async with AsyncSession(cfg) as session:
        async with await AsyncKernel(KERNEL_ID, session=session).stream_execute(code) as stream:
            return await stream.result(input=list(input))


@FRONTS
@pytest.mark.parametrize(
    ("version", "path"),
    [
        (V9, f"/stream/session/{KERNEL_ID}/execute"),
        ("v5.20191215", f"/stream/session/{KERNEL_ID}/execute"),
        ("v4.20190615", f"/stream/kernel/{KERNEL_ID}/execute"),
        ("v4.20190115", f"/stream/kernel/{KERNEL_ID}/execute"),
    ],
)
async def test_execute_handshake_path_and_signature(
    ws: WsServer, front: Front, version: str, path: str
) -> None:
    ws.version = version
    ws.script = [Recv(), Send(frame("finished", ("stdout", "42\n"), exitCode=0))]
    (result,) = await stream_frames(front, ws.config())
    assert result.status == "finished" and result.stdout == "42\n"
    check_handshake(ws, path, version)


@FRONTS
@pytest.mark.parametrize(
    ("code", "mode", "opts", "expected"),
    [
        pytest.param(
            "print(42)",
            "query",
            None,
            {"code": "print(42)", "mode": "query", "options": {}},
            id="query",
        ),
        pytest.param(
            "",
            "batch",
            {"build": "make", "exec": "./a.out"},
            {
                "code": "",
                "mode": "batch",
                "options": {"clean": None, "build": "make", "buildLog": True, "exec": "./a.out"},
            },
            id="batch",
        ),
    ],
)
async def test_execute_start_frame(
    ws: WsServer,
    front: Front,
    code: str,
    mode: ExecMode,
    opts: dict[str, Any] | None,
    expected: dict[str, Any],
) -> None:
    ws.script = [Recv(), Send(frame("finished", exitCode=0))]
    await stream_frames(front, ws.config(), code, mode=mode, opts=opts)
    assert len(ws.received) == 1
    assert ws.sent_json(0) == expected


@FRONTS
@pytest.mark.parametrize("terminal", ["finished", "exec-timeout"])
async def test_execute_frames_in_order_and_iteration_stops_at_the_end(
    ws: WsServer, front: Front, terminal: str
) -> None:
    ws.script = [
        Recv(),
        Send(frame("continued", ("stdout", "streamed "))),
        Send(frame("continued", ("stderr", "warning\n"), ("stdout", "4"))),
        Send(frame(terminal, ("stdout", "2\n"), exitCode=0)),
        # Anything after the terminal frame must not be read as part of the run.
        Send(frame("continued", ("stdout", "not part of the run"))),
        Close(),
    ]
    frames = await stream_frames(front, ws.config())
    assert all(isinstance(f, ExecutionResult) for f in frames)
    assert [f.status for f in frames] == ["continued", "continued", terminal]
    assert [f.stdout for f in frames] == ["streamed ", "4", "2\n"]
    assert frames[1].stderr == "warning\n"
    assert frames[1]["console"] == [["stderr", "warning\n"], ["stdout", "4"]]
    assert [f.exit_code for f in frames] == [None, None, 0]
    assert [f.done for f in frames] == [False, False, True]


@FRONTS
async def test_execute_result_answers_waiting_input_with_a_plain_text_frame(
    ws: WsServer, front: Front
) -> None:
    ws.script = [
        Recv(),
        Send(frame("waiting-input", ("stdout", "n? "), options={"is_password": False})),
        Recv(),
        Send(frame("finished", ("stdout", "streamed 42\n"), exitCode=0)),
    ]
    code = "print('streamed', int(input('n? ')) * 2)"
    result = await stream_result(front, ws.config(), code, input=["21"])
    assert result.status == "finished"
    assert result.stdout == "n? streamed 42\n"
    assert result["console"] == [["stdout", "n? streamed 42\n"]]  # one merged entry
    assert result.exit_code == 0
    assert ws.sent_json(0)["mode"] == "query"
    assert ws.received[1] == "21"  # a TEXT frame holding just the line, not JSON


@FRONTS
@pytest.mark.parametrize("status", ["error", "server-restarting"])
async def test_execute_error_frame_raises_stream_error_with_the_servers_msg(
    ws: WsServer, front: Front, status: str
) -> None:
    ws.script = [
        Recv(),
        Send(frame("continued", ("stdout", "partial"))),
        Send(json.dumps({"status": status, "msg": "Kernel runner crashed (agent i-lab01)"})),
        Drain(),
    ]
    with pytest.raises(StreamError, match=r"Kernel runner crashed \(agent i-lab01\)"):
        await stream_result(front, ws.config(), "print(1)")


@FRONTS
@pytest.mark.parametrize(
    ("script", "detail"),
    [
        pytest.param([Send(frame("continued", ("stdout", "a"))), Close()], "code 1000", id="1000"),
        pytest.param(
            [Send(frame("continued", ("stdout", "a"))), Close(1011, "agent lost")],
            "code 1011: agent lost",
            id="1011",
        ),
        pytest.param([Send(frame("continued", ("stdout", "a"))), Abort()], "code 1006", id="drop"),
        pytest.param([Close()], "code 1000", id="no-frame"),
    ],
)
async def test_execute_server_closing_mid_run_raises_stream_error(
    ws: WsServer, front: Front, script: list[Step], detail: str
) -> None:
    ws.script = [Recv(), *script]
    with pytest.raises(StreamError, match="closed before the run finished") as info:
        await stream_result(front, ws.config(), "print(1)")
    assert detail in str(info.value)


@FRONTS
async def test_execute_refused_handshake_raises_kernel_not_found(
    ws: WsServer, front: Front
) -> None:
    with pytest.raises(KernelNotFoundError) as info:
        await stream_frames(front, ws.config(), kernel_id=MISSING)
    assert info.value.status == 404
    assert info.value.error_code == "session_read_not-found"
    assert info.value.msg == "No SessionRow matches the given key"
    assert ws.handshakes[0].path == f"/stream/session/{MISSING}/execute"


@FRONTS
async def test_execute_stream_before_v4_20190115_is_refused_without_io(front: Front) -> None:
    dead = config(endpoint=f"http://127.0.0.1:{free_port()}", version="v4.20181215")
    with pytest.raises(UnsupportedOperationError, match=r"stream_execute\(\)") as info:
        await stream_frames(front, dead)
    assert "needs API v4.20190115 or newer" in str(info.value)
    # The same dead endpoint at the next version does try to connect (so the error above
    # came before any I/O, not from the connection).
    with pytest.raises(sorna_sdk.APIConnectionError):
        await stream_frames(front, dead.replace(version="v4.20190115"))


# -- PTY stream ------------------------------------------------------------------------------


def out_frame(data: bytes) -> bytes:
    """A PTY output frame as Backend.AI sends it: JSON in a BINARY message."""
    return json.dumps({"type": "out", "data": base64.b64encode(data).decode("ascii")}).encode()


FIRST = b"\x1b[1;32m$\x1b[0m hello \xff\xfe\r\n"
LAST = b"a.out  main.c\r\n"


@FRONTS
@pytest.mark.parametrize(
    ("version", "path"),
    [
        (V9, f"/stream/session/{KERNEL_ID}/pty"),
        ("v4.20181215", f"/stream/kernel/{KERNEL_ID}/pty"),
    ],
)
async def test_pty_binary_frames_and_text_stdin(
    ws: WsServer, front: Front, version: str, path: str
) -> None:
    ws.version = version
    ws.script = [Send(out_frame(FIRST)), Recv(), Recv(), Recv(), Send(out_frame(LAST)), Close()]
    cfg = ws.config()
    if front == "sync":

        def run() -> tuple[bytes, list[bytes], int | None]:
            with Session(cfg) as session:
                with Kernel(KERNEL_ID, session=session).stream_pty() as pty:
                    first = pty.read(timeout=5)
                    pty.send("ls\n")
                    pty.resize(24, 80)
                    pty.ping()
                    return first, list(pty), pty.close_code

        first, rest, code = await asyncio.to_thread(run)
    else:
        async with AsyncSession(cfg) as session:
            async with await AsyncKernel(KERNEL_ID, session=session).stream_pty() as pty:
                first = await pty.read(timeout=5)
                await pty.send("ls\n")
                await pty.resize(24, 80)
                await pty.ping()
                rest = [chunk async for chunk in pty]
                code = pty.close_code
    assert first == FIRST
    assert rest == [LAST]  # iteration ends quietly on the server's 1000 close
    assert code == 1000
    assert ws.sent_json(0) == {"type": "stdin", "chars": base64.b64encode(b"ls\n").decode()}
    assert ws.sent_json(1) == {"type": "resize", "rows": 24, "cols": 80}
    assert ws.sent_json(2) == {"type": "ping"}
    check_handshake(ws, path, version)


@FRONTS
async def test_pty_refused_handshake_raises_kernel_not_found(ws: WsServer, front: Front) -> None:
    cfg = ws.config()
    with pytest.raises(KernelNotFoundError) as info:
        if front == "sync":

            def run() -> None:
                with Session(cfg) as session:
                    Kernel(MISSING, session=session).stream_pty().close()

            await asyncio.to_thread(run)
        else:
            async with AsyncSession(cfg) as session:
                await (await AsyncKernel(MISSING, session=session).stream_pty()).close()
    assert info.value.status == 404
    assert info.value.error_code == "session_read_not-found"
    assert ws.handshakes[0].path == f"/stream/session/{MISSING}/pty"


# -- session events (SSE) ------------------------------------------------------------------


class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body in the given chunks; ``fail`` is raised after the last one."""

    def __init__(self, chunks: Sequence[bytes], fail: Exception | None = None) -> None:
        self.chunks = list(chunks)
        self.fail = fail

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.fail is not None:
            raise self.fail

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.fail is not None:
            raise self.fail


Reply = Callable[[], httpx.Response]


def sse(event: str, data: dict[str, Any] | None = None, *, retry: int | None = None) -> bytes:
    lines = [f"retry: {retry}"] if retry is not None else []
    lines.append(f"event: {event}")
    lines.append("data: " + (json.dumps(data, separators=(",", ":")) if data else ""))
    return ("\n".join(lines) + "\n\n").encode()


def session_event(
    event: str,
    *,
    reason: str = "passed-preconditions",
    name: str | None = NAME,
    session_id: str | None = KERNEL_ID,
    exit_code: int | None = None,
    retry: int | None = None,
) -> bytes:
    data = {
        "reason": reason,
        "sessionName": name,
        "ownerAccessKey": ACCESS_KEY,
        "sessionId": session_id,
        "exitCode": exit_code,
    }
    return sse(event, data, retry=retry)


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def stream(*events: bytes, size: int = 7, drop: bool = False) -> Reply:
    """An event-stream answer cut into ``size``-byte chunks (mid-line); ``drop`` cuts it."""
    data = b"".join(events)

    def reply() -> httpx.Response:
        fail = httpx.ReadError("connection reset by peer") if drop else None
        return httpx.Response(
            200,
            headers={"Content-Type": "text/event-stream"},
            stream=Body(chunked(data, size), fail),
        )

    return reply


def answer(status: int, content: bytes, content_type: str) -> Reply:
    return lambda: httpx.Response(status, headers={"Content-Type": content_type}, content=content)


def connect_error() -> httpx.Response:
    raise httpx.ConnectError("connection refused")


class SseServer:
    """Answers with ``replies`` in order, then with ``then`` forever; records requests."""

    def __init__(self, *replies: Reply, then: Reply | None = None) -> None:
        self.replies: deque[Reply] = deque(replies)
        self.then = then
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.replies:
            return self.replies.popleft()()
        if self.then is not None:
            return self.then()
        raise AssertionError(f"unexpected request {request.method} {request.url}")


class Ticker:
    """A clock that moves one second forward on every reading."""

    def __init__(self) -> None:
        self.now = FIXED_DATE

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The reconnect delays asked for (nothing really sleeps)."""
    delays: list[float] = []

    def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    async def fake_async_sleep(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr(sorna_sdk.events, "time", SimpleNamespace(sleep=fake_sleep))
    monkeypatch.setattr(sorna_sdk.events, "asyncio", SimpleNamespace(sleep=fake_async_sleep))
    return delays


async def read_events(
    front: Front,
    server: SseServer,
    *,
    version: str = V9,
    client_token: str | None = NAME,
    reconnect: bool = True,
    clock: Callable[[], datetime] | None = None,
    limit: int | None = None,
) -> list[SessionEvent]:
    """The events ``kern.events()`` yields (the first ``limit`` of them, if given)."""
    cfg = config(version=version)
    transport = httpx.MockTransport(server)
    events: list[SessionEvent] = []
    if front == "sync":
        with Session(cfg, transport=transport, clock=clock) as session:
            kern = Kernel(KERNEL_ID, session=session, client_token=client_token)
            with kern.events(reconnect=reconnect) as stream:
                for event in stream:
                    events.append(event)
                    if len(events) == limit:
                        break
        return events
    async with AsyncSession(cfg, transport=transport, clock=clock) as asession:
        akern = AsyncKernel(KERNEL_ID, session=asession, client_token=client_token)
        async with akern.events(reconnect=reconnect) as astream:
            async for event in astream:
                events.append(event)
                if len(events) == limit:
                    break
    return events


def summary(events: Sequence[SessionEvent]) -> list[tuple[Any, ...]]:
    return [(e.event, e.session_id, e.session_name, e.reason, e.exit_code) for e in events]


def check_signed(request: httpx.Request, version: str = V9) -> None:
    assert request.headers["X-BackendAI-Version"] == version
    assert request.headers["Content-Type"] == "application/octet-stream"
    assert request.headers["Accept"] == "text/event-stream"
    ok = verify(
        parse_authorization(request.headers["Authorization"]),
        secret_key=SECRET_KEY,
        method="GET",
        path=request.url.raw_path.decode("ascii"),
        date=request.headers["Date"],
        host=request.headers["Host"],
        content_type="application/octet-stream",
        body=b"",
        version=version,
        version_header="x-backendai-version",
        hash_body=False,
    )
    assert ok, f"the request signature does not verify: {request.headers}"


@FRONTS
@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
async def test_events_typed_filtered_and_ended_by_the_final_event(
    front: Front, size: int, sleeps: list[float]
) -> None:
    server = SseServer(
        stream(
            session_event("session_preparing"),
            session_event("session_started", name=OTHER_NAME, session_id=OTHER_ID),
            session_event("session_pulling", reason="image-pull"),
            session_event("session_terminated", name=OTHER_NAME, session_id=OTHER_ID),
            session_event("session_started", reason="running", name=None),  # by id only
            session_event("session_terminated", reason="user-requested", exit_code=0),
            session_event("session_started", reason="after the end"),
            size=size,
        )
    )
    events = await read_events(front, server)
    assert all(isinstance(e, SessionEvent) for e in events)
    assert summary(events) == [
        ("session_preparing", KERNEL_ID, NAME, "passed-preconditions", None),
        ("session_pulling", KERNEL_ID, NAME, "image-pull", None),
        ("session_started", KERNEL_ID, None, "running", None),
        ("session_terminated", KERNEL_ID, NAME, "user-requested", 0),
    ]
    assert events[0].owner_access_key == ACCESS_KEY
    (request,) = server.requests  # no reconnect after the final event
    assert request.url.path == "/events/session"
    assert list(request.url.params.multi_items()) == [("sessionName", NAME), ("scope", "*")]
    check_signed(request)
    assert sleeps == []


@FRONTS
async def test_events_cancelled_is_final_too(front: Front, sleeps: list[float]) -> None:
    server = SseServer(
        stream(
            session_event("session_enqueued"),
            session_event("session_cancelled", reason="pending-timeout"),
            session_event("session_enqueued", reason="after the end"),
        )
    )
    events = await read_events(front, server)
    assert [e.event for e in events] == ["session_enqueued", "session_cancelled"]
    assert len(server.requests) == 1 and sleeps == []


@FRONTS
async def test_events_server_close_ends_the_stream(front: Front, sleeps: list[float]) -> None:
    server = SseServer(
        stream(
            session_event("session_preparing"),
            sse("server_close"),
            session_event("session_started", reason="after server_close"),
        )
    )
    events = await read_events(front, server)
    assert [e.event for e in events] == ["session_preparing"]
    assert len(server.requests) == 1 and sleeps == []


@FRONTS
@pytest.mark.parametrize(
    ("retry", "delay"), [pytest.param(None, 2.0, id="default"), pytest.param(500, 0.5, id="retry")]
)
async def test_events_reconnect_after_a_drop_with_a_fresh_signed_date(
    front: Front, retry: int | None, delay: float, sleeps: list[float]
) -> None:
    server = SseServer(
        stream(session_event("session_preparing", retry=retry), drop=True),
        stream(
            session_event("session_started", reason="running"),
            session_event("session_terminated", reason="user-requested", exit_code=0),
        ),
    )
    events = await read_events(front, server, clock=Ticker())
    assert [e.event for e in events] == [
        "session_preparing",
        "session_started",
        "session_terminated",
    ]
    first, second = server.requests
    for request in (first, second):
        check_signed(request)
        assert list(request.url.params.multi_items()) == [("sessionName", NAME), ("scope", "*")]
    assert datetime.fromisoformat(second.headers["Date"]) > datetime.fromisoformat(
        first.headers["Date"]
    )
    assert first.headers["Authorization"] != second.headers["Authorization"]
    assert sleeps == [delay]


@FRONTS
async def test_events_reconnect_after_the_server_ends_without_server_close(
    front: Front, sleeps: list[float]
) -> None:
    server = SseServer(
        stream(session_event("session_preparing")),  # a clean end of the body
        stream(session_event("session_terminated", reason="user-requested")),
    )
    events = await read_events(front, server, clock=Ticker())
    assert [e.event for e in events] == ["session_preparing", "session_terminated"]
    assert len(server.requests) == 2
    assert server.requests[0].headers["Date"] != server.requests[1].headers["Date"]
    assert sleeps == [2.0]


@FRONTS
@pytest.mark.parametrize(
    "failure",
    [pytest.param(stream(drop=True), id="read-error"), pytest.param(connect_error, id="connect")],
)
async def test_events_give_up_after_the_reconnect_limit(
    front: Front, failure: Reply, sleeps: list[float]
) -> None:
    server = SseServer(then=failure)
    with pytest.raises(StreamError, match="the event stream failed") as info:
        await read_events(front, server, clock=Ticker())
    assert isinstance(info.value.__cause__, httpx.TransportError)
    limit = sorna_sdk.events.MAX_RECONNECTS
    assert len(server.requests) == 1 + limit
    assert sleeps == [2.0, 4.0, 8.0, 16.0, 30.0][:limit]
    dates = [request.headers["Date"] for request in server.requests]
    assert len(set(dates)) == len(dates)  # every attempt freshly signed


@FRONTS
async def test_events_without_reconnect_fail_at_the_first_drop(
    front: Front, sleeps: list[float]
) -> None:
    server = SseServer(stream(session_event("session_preparing"), drop=True))
    with pytest.raises(StreamError):
        await read_events(front, server, reconnect=False)
    assert len(server.requests) == 1 and sleeps == []


@FRONTS
@pytest.mark.parametrize(
    ("version", "client_token", "path", "params"),
    [
        (V9, NAME, "/events/session", [("sessionName", NAME), ("scope", "*")]),
        (V9, None, "/events/session", [("sessionName", KERNEL_ID), ("scope", "*")]),
        ("v6.20200815", NAME, "/events/session", [("sessionName", NAME), ("scope", "*")]),
        ("v4.20190615", NAME, "/stream/kernel/_/events", [("sessionId", NAME)]),
        ("v4.20181215", NAME, "/stream/kernel/_/events", [("sessionId", NAME)]),
    ],
)
async def test_events_route_by_version(
    front: Front,
    version: str,
    client_token: str | None,
    path: str,
    params: list[tuple[str, str]],
    sleeps: list[float],
) -> None:
    server = SseServer(stream(session_event("session_preparing"), sse("server_close")))
    events = await read_events(front, server, version=version, client_token=client_token)
    assert [e.event for e in events] == ["session_preparing"]
    (request,) = server.requests
    assert request.url.path == path
    assert list(request.url.params.multi_items()) == params
    check_signed(request, version)


@FRONTS
async def test_events_unknown_session_raises_kernel_not_found(
    front: Front, sleeps: list[float]
) -> None:
    server = SseServer(answer(404, NOT_FOUND, "application/problem+json; charset=utf-8"))
    with pytest.raises(KernelNotFoundError) as info:
        await read_events(front, server)
    assert info.value.status == 404
    assert info.value.error_code == "session_read_not-found"
    assert len(server.requests) == 1 and sleeps == []


@FRONTS
async def test_events_answer_that_is_not_an_event_stream_raises_stream_error(
    front: Front, sleeps: list[float]
) -> None:
    server = SseServer(answer(200, b'{"events": []}', "application/json"))
    with pytest.raises(StreamError, match="not an event stream"):
        await read_events(front, server)
    assert len(server.requests) == 1 and sleeps == []


@FRONTS
async def test_events_stream_closed_early_by_the_caller(front: Front, sleeps: list[float]) -> None:
    server = SseServer(
        stream(session_event("session_preparing"), session_event("session_started")),
    )
    events = await read_events(front, server, limit=1)
    assert [e.event for e in events] == ["session_preparing"]
    assert len(server.requests) == 1 and sleeps == []


def test_retry_delay_doubles_up_to_thirty_seconds() -> None:
    delay = sorna_sdk.events._retry_delay
    assert [delay(None, n) for n in range(1, 7)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert [delay(500, n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
