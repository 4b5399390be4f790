"""Live runs without a gateway: exact request bodies and frames, resume, input, callbacks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.server import ServerConnection, serve

from sorna_sdk import (
    AsyncKernel,
    ConsoleItem,
    ExecutionError,
    ExecutionResult,
    InputRequest,
    Kernel,
    OutputEvent,
    ResultEvent,
    Session,
    StreamResumeError,
)
from sorna_sdk._dialects import BackendAI, SornaV2

from .fakes import ScriptedServer, config

V2 = "v2.20170315"
BAI = "v9.20250722"


def result(status: str, *items: list[Any], **extra: Any) -> dict[str, Any]:
    return {"result": {"status": status, "console": list(items), **extra}}


def bodies(server: ScriptedServer) -> list[dict[str, Any]]:
    return [json.loads(request.content) for request in server.requests]


def kernel(front: str, server: ScriptedServer, version: str = V2) -> Any:
    if front == "sync":
        return Kernel("k-1", session=server.sync_session(version=version))
    return AsyncKernel("k-1", session=server.async_session(version=version))


async def run_live(
    front: str, kern: Any, code: str, **kwargs: Any
) -> tuple[ExecutionResult, list[ConsoleItem]]:
    seen: list[ConsoleItem] = []
    if front == "sync":
        return kern.run(code, on_output=seen.append, transport="http", **kwargs), seen

    async def record(item: ConsoleItem) -> None:
        seen.append(item)

    return await kern.run(code, on_output=record, transport="http", **kwargs), seen


async def test_sorna_long_poll_bodies_send_eager_and_offset(
    front: str, server: ScriptedServer
) -> None:
    server.reply(body=result("continued", ["stdout", "a\n"], runId="r1", offset=0))
    server.reply(
        body=result("continued", ["stdout", "b\n"], ["stdout", "c\n"], runId="r1", offset=1)
    )
    server.reply(body=result("finished", ["stdout", "d\n"], runId="r1", offset=3, exitCode=0))
    final, seen = await run_live(front, kernel(front, server), "print('x')")
    assert bodies(server) == [
        {"mode": "query", "code": "print('x')", "eager": True, "offset": 0},
        {"mode": "query", "code": "", "eager": True, "offset": 1},
        {"mode": "query", "code": "", "eager": True, "offset": 3},
    ]
    assert [item.data for item in seen] == ["a\n", "b\n", "c\n", "d\n"]
    assert final.stdout == "a\nb\nc\nd\n" and final.status == "finished"


async def test_backendai_long_poll_bodies(front: str, server: ScriptedServer) -> None:
    server.reply(body=result("continued", ["stdout", "a\n"], runId="r1", offset=0))
    server.reply(body=result("waiting-input", ["stdout", "n? "], runId="r1", offset=1))
    server.reply(body=result("finished", ["stdout", "42\n"], runId="r1", offset=2, exitCode=0))
    final, _seen = await run_live(front, kernel(front, server, BAI), "x", input=["42"])
    assert bodies(server) == [
        {"mode": "query", "code": "x", "runId": None, "eager": True, "offset": 0},
        {"mode": "continue", "code": "", "runId": "r1", "run_id": "r1", "eager": True, "offset": 1},
        {"mode": "input", "code": "42", "runId": "r1", "run_id": "r1", "eager": True},
    ]
    assert final.stdout == "a\nn? 42\n"


async def test_last_value_and_figure_formats_are_query_options(
    front: str, server: ScriptedServer
) -> None:
    bundle = {"text/plain": "5", "text/html": "<b>5</b>"}
    server.reply(body=result("finished", ["result", bundle], runId="r1", offset=0, exitCode=0))
    final, _ = await run_live(
        front, kernel(front, server), "2+3", last_value=True, figure_formats=["png", "svg"]
    )
    assert bodies(server)[0]["options"] == {"lastValue": True, "figureFormats": ["png", "svg"]}
    assert final.last_value is not None and final.last_value.text == "5"
    assert final.html == ["<b>5</b>"]


def test_plain_run_keeps_the_2017_bodies(server: ScriptedServer) -> None:
    server.reply(body=result("finished", ["stdout", "1\n"]))
    Kernel("k-1", session=server.sync_session()).run("print(1)")
    assert bodies(server) == [{"mode": "query", "code": "print(1)"}]


async def test_a_replayed_answer_repeats_nothing(front: str, server: ScriptedServer) -> None:
    # The server answers from an older offset (it replays): items already seen are dropped.
    server.reply(
        body=result("continued", ["stdout", "a\n"], ["stdout", "b\n"], runId="r", offset=0)
    )
    server.reply(body=result("finished", ["stdout", "b\n"], ["stdout", "c\n"], runId="r", offset=1))
    final, seen = await run_live(front, kernel(front, server), "x")
    assert [item.data for item in seen] == ["a\n", "b\n", "c\n"]
    assert final.stdout == "a\nb\nc\n"


async def test_a_dropped_long_poll_is_continued_from_its_offset(
    front: str, server: ScriptedServer
) -> None:
    server.reply(body=result("continued", ["stdout", "a\n"], runId="r", offset=0))
    server.fail(httpx.ReadError("connection reset"))  # the answer to offset 1 is lost
    server.reply(body=result("finished", ["stdout", "b\n"], runId="r", offset=1, exitCode=0))
    final, seen = await run_live(front, kernel(front, server), "x")
    assert [body.get("offset") for body in bodies(server)] == [0, 1, 1]
    assert [item.data for item in seen] == ["a\n", "b\n"]
    assert final.status == "finished"


async def test_too_many_drops_give_up_with_the_output_so_far(
    front: str, server: ScriptedServer
) -> None:
    server.reply(body=result("continued", ["stdout", "a\n"], runId="r", offset=0))
    for _ in range(4):
        server.fail(httpx.ReadError("connection reset"))
    with pytest.raises(StreamResumeError) as caught:
        await run_live(front, kernel(front, server), "x")
    assert caught.value.result is not None and caught.value.result.stdout == "a\n"


def test_stream_events_and_reply(server: ScriptedServer) -> None:
    server.reply(body=result("waiting-input", ["stdout", "pw: "], options={"is_password": True}))
    server.reply(body=result("finished", ["stdout", "ok\n"], exitCode=0))
    kern = Kernel("k-1", session=server.sync_session())
    kinds: list[str] = []
    with kern.stream("x", transport="http") as live:
        for event in live:
            kinds.append(event.kind)
            if isinstance(event, InputRequest):
                assert event.prompt == "pw: " and event.is_password
                event.reply("hunter2\n")
            elif isinstance(event, ResultEvent):
                assert event.result.stdout == "pw: ok\n"
            else:
                assert isinstance(event, OutputEvent)
    assert kinds == ["output", "input", "output", "result"]
    assert bodies(server)[1] == {"mode": "query", "code": "hunter2", "eager": True}
    assert live.transport == "http" and live.result is not None


def test_an_unanswered_input_request_is_an_error(server: ScriptedServer) -> None:
    server.reply(body=result("waiting-input", ["stdout", "n? "]))
    kern = Kernel("k-1", session=server.sync_session())
    with pytest.raises(ExecutionError, match="reply"), kern.stream("x", transport="http") as live:
        for _event in live:
            pass


# -- the execute WebSocket, against a scripted server ----------------------------------


class ScriptedStream:
    """A WebSocket server: each connection gets the next script (frames to send, then a drop
    or a clean close); records every client frame."""

    def __init__(self, scripts: list[tuple[list[dict[str, Any]], bool]]) -> None:
        self.scripts = list(scripts)
        self.received: list[list[str]] = []
        self.paths: list[str] = []
        self._server = serve(self._handle, "127.0.0.1", 0)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.paths.append(ws.request.path)
        frames, drop = self.scripts.pop(0)
        got = [str(ws.recv())]
        self.received.append(got)
        for frame in frames:
            ws.send(json.dumps(frame))
        if drop:
            ws.socket.close()  # no close frame: the connection is simply lost
        else:
            ws.close()

    def __enter__(self) -> ScriptedStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(5)


@pytest.fixture
def stream_server(request: pytest.FixtureRequest) -> Iterator[ScriptedStream]:
    with ScriptedStream(request.param) as scripted:
        yield scripted


def frame(status: str, *items: list[Any], **extra: Any) -> dict[str, Any]:
    return {"status": status, "console": list(items), "options": None, "files": [], **extra}


RESUMED = [
    ([frame("continued", ["stdout", "a\n"], runId="r1", offset=0)], True),
    (
        [frame("finished", ["stdout", "a\n"], ["stdout", "b\n"], runId="r1", offset=0, exitCode=0)],
        False,
    ),
]


@pytest.mark.parametrize("stream_server", [RESUMED], indirect=True)
def test_websocket_resume_frame_and_no_repeats(stream_server: ScriptedStream) -> None:
    with Session(config(endpoint=stream_server.endpoint, version=V2)) as session:
        seen: list[str] = []
        final = Kernel("k-1", session=session).run(
            "print('a')", on_output=lambda item: seen.append(item.text)
        )
    assert stream_server.paths == ["/v2/stream/kernel/k-1/execute"] * 2
    assert json.loads(stream_server.received[0][0]) == {
        "code": "print('a')",
        "mode": "query",
        "options": {},
    }
    assert json.loads(stream_server.received[1][0]) == {
        "mode": "continue",
        "runId": "r1",
        "offset": 1,
    }
    assert seen == ["a\n", "b\n"] and final.stdout == "a\nb\n"


NO_RUN_ID = [([frame("continued", ["stdout", "a\n"], exitCode=None)], True)]


@pytest.mark.parametrize("stream_server", [NO_RUN_ID], indirect=True)
def test_a_stream_without_run_ids_cannot_be_resumed(stream_server: ScriptedStream) -> None:
    # A real Backend.AI server sends no runId on its execute stream.
    with Session(config(endpoint=stream_server.endpoint, version=BAI)) as session:
        kern = Kernel("k-1", session=session)
        with pytest.raises(StreamResumeError, match="cannot be resumed") as caught:
            kern.run("x", on_output=lambda item: None, transport="websocket")
    assert caught.value.result is not None and caught.value.result.stdout == "a\n"
    assert stream_server.paths == ["/stream/session/k-1/execute"]


def test_frames_of_both_dialects() -> None:
    for dialect in (SornaV2(V2), BackendAI(BAI)):
        assert json.loads(dialect.encode_execute_resume("r9", 7)) == {
            "mode": "continue",
            "runId": "r9",
            "offset": 7,
        }
    assert SornaV2(V2).live_stream_path("k 1") is not None
    assert BackendAI("v4.20181215").live_stream_path("k") is None  # before v4.20190115
    assert BackendAI(BAI).live_stream_path("k") is not None
