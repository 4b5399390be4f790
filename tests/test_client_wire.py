"""Both fronts against one scripted MockTransport: exact requests, parsing, retries, run()."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any, TypeVar

import httpx
import pytest

import sorna_sdk
from sorna_sdk import AsyncKernel, AsyncSession, Kernel, Session
from sorna_sdk.auth import sign

from .conftest import transcript_response
from .fakes import ACCESS_KEY, FIXED_DATE, SECRET_KEY, ScriptedServer, config, settle

T = TypeVar("T")

RESULT = {
    "status": "finished",
    "console": [["stdout", "hello world\n"]],
    "options": None,
    "files": [],
}


def session_for(front: str, server: ScriptedServer, **changes: Any) -> Session | AsyncSession:
    return server.sync_session(**changes) if front == "sync" else server.async_session(**changes)


def kernel_cls(front: str) -> Any:
    return Kernel if front == "sync" else AsyncKernel


async def make_kernel(front: str, server: ScriptedServer, **changes: Any) -> Any:
    session = session_for(front, server, **changes)
    return kernel_cls(front)("k-1", session=session)


def expected_authorization(request: httpx.Request) -> str:
    return sign(
        method=request.method,
        path=request.url.raw_path.decode(),
        date=request.headers["Date"],
        host=request.headers["Host"],
        content_type=request.headers["Content-Type"],
        body=request.content,
        version="v2.20170315",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
    )


async def test_get_or_create_sends_the_reference_body(front: str, server: ScriptedServer) -> None:
    server.reply(201, {"kernelId": "k-42", "created": True})
    session = session_for(front, server)
    kern = await settle(
        kernel_cls(front).get_or_create("lua5", client_token="abc-123456789", session=session)
    )
    assert kern.kernel_id == "k-42" and kern.created is True and kern.lang == "lua5"
    request = server.last
    assert request.method == "POST"
    assert str(request.url) == "http://127.0.0.1:8081/v2/kernel/create"
    # The exact bytes of signature vector 1, which the reference client produced.
    assert request.content == (
        b'{"lang": "lua5", "clientSessionToken": "abc-123456789", '
        b'"limits": {"maxMem": 0, "execTimeout": 0}, "mounts": []}'
    )
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Sorna-Version"] == "v2.20170315"
    assert request.headers["Date"] == FIXED_DATE.isoformat()
    assert request.headers["Host"] == "127.0.0.1:8081"
    assert request.headers["User-Agent"].startswith("sorna-sdk/")
    assert request.headers["Authorization"] == expected_authorization(request)
    assert request.headers["Authorization"].startswith(
        f"Sorna signMethod=HMAC-SHA256, credential={ACCESS_KEY}:"
    )


async def test_execute_query_and_wire_view(front: str, server: ScriptedServer) -> None:
    server.reply(200, {"result": RESULT})
    kern = await make_kernel(front, server)
    result = await settle(kern.execute('print("hello world")', mode="query"))
    assert result["console"] == [["stdout", "hello world\n"]]
    assert result.console[0].data == "hello world\n"
    assert server.last.method == "POST"
    assert server.last.url.path == "/v2/kernel/k-1"
    assert json.loads(server.last.content) == {"mode": "query", "code": 'print("hello world")'}
    assert server.last.headers["Authorization"] == expected_authorization(server.last)


async def test_bodyless_calls(front: str, server: ScriptedServer) -> None:
    info = {
        "lang": "lua5", "age": 5, "queryTimeout": 0, "idleTimeout": 600000, "memoryLimit": 0,
        "maxCpuCredit": 0, "numQueriesExecuted": 2, "idle": 1, "memoryUsed": 100,
        "cpuCreditUsed": 0,
    }  # fmt: skip
    server.reply(200, info).reply(204).reply(204)
    kern = await make_kernel(front, server)
    got = await settle(kern.get_info())
    assert got["numQueriesExecuted"] == 2 and got.memory_used == 100
    assert await settle(kern.restart()) is None
    assert await settle(kern.destroy()) is None
    methods = [(r.method, r.url.path) for r in server.requests]
    assert methods == [
        ("GET", "/v2/kernel/k-1"),
        ("PATCH", "/v2/kernel/k-1"),
        ("DELETE", "/v2/kernel/k-1"),
    ]
    for request in server.requests:
        # As the 2017 client did: bodyless requests are labelled and signed as octet-stream.
        assert request.headers["Content-Type"] == "application/octet-stream"
        assert request.content == b""
        assert request.headers["Authorization"] == expected_authorization(request)


async def test_authorize_echo(front: str, server: ScriptedServer) -> None:
    server.reply(200, {"authorized": "yes", "echo": {"n": 1}})
    session = session_for(front, server)
    reply = await settle(kernel_cls(front).authorize({"n": 1}, session=session))
    assert reply.authorized == "yes" and reply["echo"] == {"n": 1}
    assert server.last.method == "GET" and server.last.url.path == "/v2/authorize"
    assert server.last.content == b'{"echo": {"n": 1}}'


async def test_upload_is_multipart_src_with_relative_names(
    front: str, server: ScriptedServer, tmp_path: Any
) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "main.py").write_text("print(1)\n")
    (tmp_path / "pkg" / "mod.py").write_bytes(b"\x00\xff")
    server.reply(204)
    kern = await make_kernel(front, server)
    await settle(kern.upload(["main.py", tmp_path / "pkg" / "mod.py"], base_dir=tmp_path))
    request = server.last
    assert request.url.path == "/v2/kernel/k-1/upload"
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    body = request.content
    assert b'name="src"; filename="main.py"' in body
    assert b'name="src"; filename="pkg/mod.py"' in body
    assert b"\x00\xff" in body
    assert request.headers["Authorization"] == expected_authorization(request)
    # Multipart bodies are signed as empty (spec §3 step 1).
    assert request.headers["Authorization"] == sign(
        method="POST", path="/v2/kernel/k-1/upload", date=request.headers["Date"],
        host="127.0.0.1:8081", content_type="multipart/form-data", body=b"",
        version="v2.20170315", access_key=ACCESS_KEY, secret_key=SECRET_KEY,
    )  # fmt: skip


async def test_upload_refuses_files_outside_base(
    front: str, server: ScriptedServer, tmp_path: Any
) -> None:
    kern = await make_kernel(front, server)
    with pytest.raises(sorna_sdk.InvalidArgumentError, match="outside"):
        await settle(kern.upload(["../etc/passwd"], base_dir=tmp_path))
    assert server.requests == []


@pytest.mark.parametrize("token", ["short", "x" * 81, ""])
async def test_bad_client_token_is_refused_before_io(
    front: str, server: ScriptedServer, token: str
) -> None:
    session = session_for(front, server)
    with pytest.raises(sorna_sdk.InvalidArgumentError, match="client_token"):
        await settle(
            kernel_cls(front).get_or_create("python3", client_token=token, session=session)
        )
    assert server.requests == []


async def test_omitted_client_token_is_random(front: str, server: ScriptedServer) -> None:
    server.reply(201, {"kernelId": "a"}).reply(201, {"kernelId": "b"})
    session = session_for(front, server)
    first = await settle(kernel_cls(front).get_or_create("python3", session=session))
    second = await settle(kernel_cls(front).get_or_create("python3", session=session))
    tokens = [json.loads(r.content)["clientSessionToken"] for r in server.requests]
    assert tokens[0] != tokens[1]
    assert all(8 <= len(t) <= 80 for t in tokens)
    assert first.client_token == tokens[0] and second.client_token == tokens[1]


async def test_kernel_ids_are_percent_encoded_and_empty_ids_refused(
    front: str, server: ScriptedServer
) -> None:
    server.reply(204)
    session = session_for(front, server)
    kern = kernel_cls(front)("a/b c", session=session)
    await settle(kern.destroy())
    assert server.last.url.raw_path == b"/v2/kernel/a%2Fb%20c"
    with pytest.raises(sorna_sdk.InvalidArgumentError):
        kernel_cls(front)("", session=session)


async def test_endpoint_path_prefix_is_joined(front: str, server: ScriptedServer) -> None:
    server.reply(204)
    kern = await make_kernel(front, server, endpoint="http://127.0.0.1:8081/sorna/")
    await settle(kern.destroy())
    assert server.last.url.path == "/sorna/v2/kernel/k-1"
    assert server.last.headers["Authorization"] == expected_authorization(server.last)


async def test_transcript_404_maps_to_kernel_not_found(front: str, server: ScriptedServer) -> None:
    real = transcript_response("31-get-info-unknown-kernel.json")
    server.reply(real["status"], raw=real["body"], content_type=real["headers"]["Content-Type"])
    kern = await make_kernel(front, server)
    with pytest.raises(sorna_sdk.KernelNotFoundError) as info:
        await settle(kern.get_info())
    assert info.value.status == 404 and info.value.title == "No such kernel."
    assert "GET http://127.0.0.1:8081/v2/kernel/k-1" in str(info.value)
    assert SECRET_KEY not in str(info.value) and SECRET_KEY not in repr(info.value)


async def test_malformed_success_body_is_a_validation_error(
    front: str, server: ScriptedServer
) -> None:
    server.reply(200, raw=b"<html>oops</html>", content_type="text/html")
    kern = await make_kernel(front, server)
    with pytest.raises(sorna_sdk.APIResponseValidationError, match="ExecutionResult"):
        await settle(kern.execute("x"))


# -- retries -----------------------------------------------------------------


async def test_safe_calls_retry_on_503_with_a_fresh_date(
    front: str, server: ScriptedServer
) -> None:
    ticks = itertools.count()
    html = b"<html>503 Service Unavailable</html>"
    server.reply(503, raw=html, content_type="text/html").reply(204)
    clock = lambda: FIXED_DATE + timedelta(seconds=next(ticks))  # noqa: E731
    cls = Session if front == "sync" else AsyncSession
    session = cls(config(), transport=httpx.MockTransport(server), clock=clock)
    await settle(kernel_cls(front)("k-1", session=session).destroy())
    first, second = server.requests
    assert first.headers["Date"] != second.headers["Date"]
    assert second.headers["Authorization"] == expected_authorization(second)


async def test_execute_is_not_retried_once_it_may_have_arrived(
    front: str, server: ScriptedServer
) -> None:
    server.fail(httpx.ReadTimeout("timed out"))
    kern = await make_kernel(front, server)
    with pytest.raises(sorna_sdk.APITimeoutError):
        await settle(kern.execute("launch_missiles()"))
    assert len(server.requests) == 1
    server.reply(503, {"type": "https://api.sorna.io/probs/service-unavailable", "title": "x"})
    with pytest.raises(sorna_sdk.ServiceUnavailableError):
        await settle(kern.execute("launch_missiles()"))
    assert len(server.requests) == 2


async def test_execute_is_retried_when_the_connection_was_never_made(
    front: str, server: ScriptedServer
) -> None:
    server.fail(httpx.ConnectError("refused")).reply(200, {"result": RESULT})
    kern = await make_kernel(front, server)
    result = await settle(kern.execute("print(1)"))
    assert result.status == "finished" and len(server.requests) == 2


async def test_connection_errors_are_typed_after_retries(
    front: str, server: ScriptedServer
) -> None:
    for _ in range(3):
        server.fail(httpx.ConnectError("connection refused"))
    kern = await make_kernel(front, server)
    with pytest.raises(sorna_sdk.APIConnectionError, match="connection refused") as info:
        await settle(kern.get_info())
    assert not isinstance(info.value, sorna_sdk.APITimeoutError)
    assert len(server.requests) == 3


async def test_429_honours_rate_limit_reset_and_its_cap(front: str, server: ScriptedServer) -> None:
    limited = {"type": "https://api.sorna.io/probs/rate-limit-exceeded", "title": "slow down"}
    server.reply(429, limited, headers={"X-RateLimit-Reset": "10"}).reply(200, {"result": RESULT})
    kern = await make_kernel(front, server)
    assert (await settle(kern.execute("print(1)"))).status == "finished"
    assert len(server.requests) == 2
    # A reset further away than max_retry_wait (0.05 s here) is not waited for.
    server.reply(429, limited, headers={"X-RateLimit-Reset": "900000"})
    with pytest.raises(sorna_sdk.RateLimitError):
        await settle(kern.execute("print(1)"))
    assert len(server.requests) == 3


async def test_max_retries_zero_disables_retries(front: str, server: ScriptedServer) -> None:
    server.reply(503, raw=b"", content_type="text/plain")
    kern = await make_kernel(front, server, max_retries=0)
    with pytest.raises(sorna_sdk.ServiceUnavailableError):
        await settle(kern.get_info())
    assert len(server.requests) == 1


# -- run() ---------------------------------------------------------------------


def result(status: str, *console: list[Any], options: Any = None) -> dict[str, Any]:
    return {"result": {"status": status, "console": list(console), "options": options, "files": []}}


async def test_run_follows_continued_and_merges_streams(front: str, server: ScriptedServer) -> None:
    server.reply(200, result("continued", ["stdout", "1\n"], ["stderr", "w\n"], ["stdout", "2\n"]))
    server.reply(200, result("continued", ["stdout", "3\n"]))
    server.reply(200, result("finished", ["stdout", "4\n"]))
    kern = await make_kernel(front, server)
    merged = await settle(kern.run("loop()"))
    assert merged.status == "finished"
    assert merged["console"] == [["stdout", "1\n"], ["stderr", "w\n"], ["stdout", "2\n3\n4\n"]]
    codes = [json.loads(r.content)["code"] for r in server.requests]
    assert codes == ["loop()", "", ""]


async def test_run_answers_input_from_lines_and_callbacks(
    front: str, server: ScriptedServer
) -> None:
    server.reply(200, result("waiting-input", ["stdout", "name? "]))
    server.reply(200, result("waiting-input", ["stdout", "pw? "], options={"is_password": True}))
    server.reply(200, result("finished", ["stdout", "hi Bob\n"]))
    kern = await make_kernel(front, server)
    merged = await settle(kern.run("ask()", input=["Bob\n", "hunter2"]))
    assert merged.stdout == "name? pw? hi Bob\n"
    assert [json.loads(r.content)["code"] for r in server.requests] == ["ask()", "Bob", "hunter2"]

    prompts: list[tuple[str, bool]] = []

    def answer(waiting: sorna_sdk.ExecutionResult) -> str:
        prompts.append((waiting.stdout, waiting.is_password))
        return "secret"

    server.reply(200, result("waiting-input", ["stdout", "pw? "], options={"is_password": True}))
    server.reply(200, result("finished"))
    await settle(kern.run("ask()", input=answer))
    assert prompts == [("pw? ", True)]


async def test_run_without_input_raises_a_clear_error(front: str, server: ScriptedServer) -> None:
    server.reply(200, result("waiting-input", ["stdout", "name? "]))
    kern = await make_kernel(front, server)
    with pytest.raises(sorna_sdk.ExecutionError, match="waiting for input"):
        await settle(kern.run("input()"))


async def test_run_batch_goes_through_build_finished(front: str, server: ScriptedServer) -> None:
    server.reply(200, result("build-finished", ["stdout", "compiled\n"]))
    server.reply(200, result("finished", ["stdout", "ran\n"]))
    kern = await make_kernel(front, server)
    merged = await settle(kern.run("", mode="batch", opts={"build": "*", "exec": "*"}))
    assert merged.stdout == "compiled\nran\n"
    bodies = [json.loads(r.content) for r in server.requests]
    assert all(b["mode"] == "batch" and b["options"]["build"] == "*" for b in bodies)


async def test_bad_opts_are_refused_before_io(front: str, server: ScriptedServer) -> None:
    kern = await make_kernel(front, server)
    with pytest.raises(sorna_sdk.InvalidArgumentError, match="batch"):
        await settle(kern.execute("", mode="batch", opts={"biuld": "make"}))
    with pytest.raises(sorna_sdk.InvalidArgumentError, match="mode"):
        await settle(kern.execute("", mode="interactive"))
    assert server.requests == []


async def leave(kern: Kernel | AsyncKernel) -> None:
    """Enter and leave the kernel's context manager, sync or async."""
    if isinstance(kern, Kernel):
        with kern:
            pass
    else:
        async with kern:
            pass


async def test_kernel_context_manager_destroys(front: str, server: ScriptedServer) -> None:
    server.reply(204)
    kern = await make_kernel(front, server)
    await leave(kern)
    assert server.last.method == "DELETE"


async def test_context_manager_tolerates_a_kernel_already_gone(
    front: str, server: ScriptedServer
) -> None:
    real = transcript_response("32-destroy-unknown-kernel.json")
    server.reply(real["status"], raw=real["body"], content_type="application/problem+json")
    kern = await make_kernel(front, server)
    await leave(kern)
    assert server.last.method == "DELETE"


async def test_destroy_whose_reply_was_lost_is_done_when_the_retry_gets_404(
    front: str, server: ScriptedServer
) -> None:
    gone = {"type": "https://api.sorna.io/probs/kernel-not-found", "title": "No such kernel."}
    server.fail(httpx.ReadTimeout("reply lost")).reply(404, gone)
    kern = await make_kernel(front, server)
    assert await settle(kern.destroy()) is None
    assert [r.method for r in server.requests] == ["DELETE", "DELETE"]
    server.reply(404, gone)  # a first attempt's 404 still means "no such kernel"
    with pytest.raises(sorna_sdk.KernelNotFoundError):
        await settle(kern.destroy())


async def test_closed_session_refuses_calls(front: str, server: ScriptedServer) -> None:
    session = session_for(front, server)
    await settle(session.close())
    assert session.closed
    with pytest.raises(sorna_sdk.InvalidArgumentError, match="closed"):
        await settle(session.authorize())


def test_wrong_http_client_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"httpx\.Client"):
        Session(config(), http_client=httpx.AsyncClient())  # type: ignore[arg-type]
