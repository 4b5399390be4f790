"""Both fronts against a scripted MockTransport speaking Backend.AI: exact request bytes and
signatures for every version family (v4 ``/kernel``, v5+ ``/session``), negotiation, the
continuation rules, files, and configuration from ``BACKEND_*``."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

import sorna_sdk
from sorna_sdk import APIConfig, AsyncKernel, AsyncSession, Kernel, Session
from sorna_sdk._dialects import supported_versions
from sorna_sdk.auth import parse_authorization, verify

from ..conftest import DATA, backendai_transcript
from ..fakes import ACCESS_KEY, SECRET_KEY, ScriptedServer, settle

T = TypeVar("T")
V9 = "v9.20250722"
SESSION_ID = "85a1da6a-97cb-4299-856b-1403195d1294"
RUNLOG = [
    json.loads(line)
    for line in (DATA / "backendai-runlogs" / "exec-probe-docker.jsonl").read_text().splitlines()
]


def runlog(step: str) -> dict[str, Any]:
    """A step of the real manager + Docker agent probe."""
    return next(entry for entry in RUNLOG if entry["step"] == step)


def created(status: str = "RUNNING") -> dict[str, Any]:
    return {
        "sessionId": SESSION_ID,
        "sessionName": "my-session",
        "status": status,
        "servicePorts": [{"name": "sshd", "protocol": "tcp", "ports": [30002]}],
        "created": True,
    }


def session_for(front: str, server: ScriptedServer, version: str = V9, **changes: Any) -> Any:
    if front == "sync":
        return server.sync_session(version=version, **changes)
    return server.async_session(version=version, **changes)


def kernel_cls(front: str) -> Any:
    return Kernel if front == "sync" else AsyncKernel


def assert_signed(request: httpx.Request, version: str) -> None:
    """A Backend.AI signature: BackendAI scheme, version header, the body NOT hashed."""
    header = request.headers["Authorization"]
    assert header.startswith(f"BackendAI signMethod=HMAC-SHA256, credential={ACCESS_KEY}:")
    assert request.headers["X-BackendAI-Version"] == version
    assert "X-Sorna-Version" not in request.headers
    args: dict[str, Any] = {
        "secret_key": SECRET_KEY,
        "method": request.method,
        "path": request.url.raw_path.decode(),
        "date": request.headers["Date"],
        "host": request.headers["Host"],
        "content_type": request.headers.get("Content-Type", "application/octet-stream"),
        "version": version,
        "version_header": "x-backendai-version",
    }
    parsed = parse_authorization(header)
    assert verify(parsed, body=b"", hash_body=False, **args)
    if request.content:
        # Had the body been hashed (the Sorna rule), the server would refuse the signature.
        assert not verify(parsed, body=request.content, hash_body=True, **args)


def official_body(scenario: str, exchange: int, **replace: str) -> bytes:
    """The official client's create body from a transcript, minus ``architecture``."""
    body = backendai_transcript(scenario)["exchanges"][exchange]["request"]["body"]
    body = body.replace('"architecture": "x86_64", ', "")
    for old, new in replace.items():
        body = body.replace(old, new)
    return str(body).encode()


MATRIX = backendai_transcript("63-version-matrix-official-client")["exchanges"]
MATRIX_CREATES = [
    (
        next(v for k, v in exchange["request"]["headers"] if k == "X-BackendAI-Version"),
        exchange["request"]["path"],
        exchange["request"]["body"],
    )
    for exchange in MATRIX
    if exchange["request"]["method"] == "POST"
]


@pytest.mark.parametrize(("version", "path", "body"), MATRIX_CREATES, ids=lambda x: str(x)[:12])
async def test_create_body_matches_the_official_client_at_every_version(
    front: str, server: ScriptedServer, version: str, path: str, body: str
) -> None:
    server.reply(201, created())
    session = session_for(front, server, version=version)
    image = "python" if version == "v4.20181215" else "python:3.13-ubuntu24.04"
    kern = await settle(kernel_cls(front).get_or_create(image, "lab-vmatrix", session=session))
    request = server.last
    assert request.method == "POST" and request.url.path == path
    assert request.content == body.replace('"architecture": "x86_64", ', "").encode()
    assert request.headers["Content-Type"] == "application/json"
    assert_signed(request, version)
    assert kern.kernel_id == SESSION_ID and kern.status == "RUNNING" and kern.created is True
    assert kern.client_token == "lab-vmatrix"
    assert [port.name for port in kern.service_ports] == ["sshd"]


def test_the_matrix_covers_every_version_family() -> None:
    versions = {version for version, _, _ in MATRIX_CREATES}
    assert {"v4.20181215", "v4.20190615", "v5.20191215", "v6.20200815", V9} <= versions
    assert versions <= set(supported_versions())


async def test_create_options_reach_the_body(front: str, server: ScriptedServer) -> None:
    server.reply(201, created("PENDING"))
    session = session_for(front, server, group="proj", domain="dom")
    kern = await settle(
        kernel_cls(front).get_or_create(
            image="cr.backend.ai/stable/python:3.11-debian12",
            client_token="sess.name-1",
            session_type="batch",
            enqueue_only=True,
            max_wait=30,
            reuse=False,
            resources={"cpu": 2, "mem": "4g"},
            environ={"A": "1"},
            mounts=["data"],
            cluster_size=2,
            cluster_mode="multi-node",
            resource_group="gpu",
            session=session,
        )
    )
    body = json.loads(server.last.content)
    assert body["image"] == "cr.backend.ai/stable/python:3.11-debian12"
    assert body["name"] == "sess.name-1" and body["type"] == "batch"
    assert (body["enqueueOnly"], body["maxWaitSeconds"], body["reuseIfExists"]) == (True, 30, False)
    assert (body["clusterSize"], body["clusterMode"]) == (2, "multi-node")
    assert (body["domain"], body["group"]) == ("dom", "proj")
    assert body["config"]["resources"] == {"cpu": 2, "mem": "4g"}
    assert body["config"]["environ"] == {"A": "1"}
    assert body["config"]["mounts"] == ["data"]
    assert body["config"]["scalingGroup"] == "gpu"
    assert kern.status == "PENDING"


async def test_a_create_without_reuse_is_not_retried(front: str, server: ScriptedServer) -> None:
    server.fail(httpx.ReadError("reset"))
    session = session_for(front, server)
    with pytest.raises(sorna_sdk.APIConnectionError):
        await settle(
            kernel_cls(front).get_or_create("python", "taken-name", reuse=False, session=session)
        )
    assert len(server.requests) == 1


async def test_a_reusing_create_is_retried_and_waits_for_max_wait(
    front: str, server: ScriptedServer
) -> None:
    seen: list[float | None] = []

    def record(request: httpx.Request) -> None:
        seen.append(request.extensions["timeout"]["read"])

    server.fail(httpx.ReadError("reset")).reply(201, created())
    session = session_for(front, server, timeout=60.0)
    session._http.event_hooks["request"] = [_hook(front, record)]
    kern = await settle(
        kernel_cls(front).get_or_create("python", "my-session", max_wait=600, session=session)
    )
    assert kern.kernel_id == SESSION_ID and len(server.requests) == 2
    assert seen == [660.0, 660.0]


def _hook(front: str, record: Any) -> Any:
    if front == "sync":
        return record

    async def hook(request: httpx.Request) -> None:
        record(request)

    return hook


@pytest.mark.parametrize(
    ("token", "ok"),
    [("abc", False), ("abcd", True), ("x" * 64, True), ("x" * 65, False), ("-abc", False),
     ("a b c d", False), ("lab-probe.v1_2", True)],
)  # fmt: skip
async def test_session_names_follow_the_server_rule(
    front: str, server: ScriptedServer, token: str, ok: bool
) -> None:
    session = session_for(front, server)
    if ok:
        server.reply(201, created())
        await settle(kernel_cls(front).get_or_create("python", token, session=session))
        assert json.loads(server.last.content)["name"] == token
    else:
        with pytest.raises(sorna_sdk.InvalidArgumentError, match="client_token"):
            await settle(kernel_cls(front).get_or_create("python", token, session=session))
        assert server.requests == []


async def test_a_random_name_is_valid_for_the_server(front: str, server: ScriptedServer) -> None:
    server.reply(201, created())
    await settle(kernel_cls(front).get_or_create("python", session=session_for(front, server)))
    name = json.loads(server.last.content)["name"]
    assert name.startswith("sorna-") and 4 <= len(name) <= 64


@pytest.mark.parametrize("option", [{"max_mem": 1024}, {"exec_timeout": 5}])
async def test_sorna_only_options_are_refused_on_backendai(
    front: str, server: ScriptedServer, option: dict[str, int]
) -> None:
    with pytest.raises(sorna_sdk.InvalidArgumentError, match=r"Backend\.AI has no such field"):
        await settle(
            kernel_cls(front).get_or_create(
                "python", "my-session", session=session_for(front, server), **option
            )
        )
    assert server.requests == []


async def test_backendai_options_are_refused_on_sorna(front: str, server: ScriptedServer) -> None:
    session = session_for(front, server, version="v2.20170315")
    with pytest.raises(sorna_sdk.UnsupportedOperationError, match="resources"):
        await settle(
            kernel_cls(front).get_or_create(
                "python3", "my-session-1", resources={"cpu": 1}, session=session
            )
        )
    assert server.requests == []


@pytest.mark.parametrize(("version", "noun"), [("v4.20190615", "kernel"), (V9, "session")])
async def test_routes_of_each_family(
    front: str, server: ScriptedServer, version: str, noun: str, tmp_path: Path
) -> None:
    session = session_for(front, server, version=version)
    kern = kernel_cls(front)("my-session", session=session)
    info = backendai_transcript("67-fake-agent-get-info")["exchanges"][-1]["response"]["body"]
    server.reply(200, raw=info.encode())
    got = await settle(kern.get_info())
    assert isinstance(got, sorna_sdk.SessionInfo) and got.status == "SCHEDULED"
    assert (server.last.method, server.last.url.path) == ("GET", f"/{noun}/my-session")
    assert_signed(server.last, version)

    server.reply(204)
    assert await settle(kern.interrupt()) is None
    assert (server.last.method, server.last.url.path) == ("POST", f"/{noun}/my-session/interrupt")

    server.reply(200, {"result": {"logs": "Kernel started\n"}})
    assert await settle(kern.logs()) == "Kernel started\n"
    assert server.last.url.path == f"/{noun}/my-session/logs"

    server.reply(200, {"result": {"status": "finished", "error": None, "suggestions": ["import"]}})
    completions = await settle(kern.complete("impo", row=0, col=4))
    assert completions.suggestions == ["import"]
    assert server.last.url.path == f"/{noun}/my-session/complete"
    assert json.loads(server.last.content) == {"code": "impo", "options": {"row": 0, "col": 4}}

    server.reply(200, raw=b"file bytes", content_type="application/octet-stream")
    assert await settle(kern.download_single("out/a.txt")) == b"file bytes"
    assert server.last.url.path == f"/{noun}/my-session/download_single"
    assert server.last.url.query == b"file=out%2Fa.txt"
    assert_signed(server.last, version)

    server.reply(200, {"stats": {"status": "terminated"}})
    done = await settle(kern.destroy(forced=True))
    assert done is not None and done.stats == {"status": "terminated"}
    assert (server.last.method, server.last.url.path) == ("DELETE", f"/{noun}/my-session")
    assert server.last.url.query == b"forced=true"
    assert_signed(server.last, version)


async def test_list_files_sends_path_as_query_and_body_and_decodes_the_listing(
    front: str, server: ScriptedServer
) -> None:
    entries = [
        {"mode": "-rw-r--r--", "size": 21, "ctime": 1.5, "mtime": 2.5, "atime": 3.5,
         "filename": "lab-upload.txt"},
        {"mode": "drwxr-xr-x", "size": 4096, "ctime": 1.0, "mtime": 1.0, "atime": 1.0,
         "filename": ".jupyter"},
    ]  # fmt: skip
    server.reply(200, {"files": json.dumps(entries), "errors": "", "abspath": "/home/work"})
    kern = kernel_cls(front)(SESSION_ID, session=session_for(front, server))
    listing = await settle(kern.list_files("sub dir"))
    request = server.last
    assert (request.method, request.url.path) == ("GET", f"/session/{SESSION_ID}/files")
    assert request.url.params["path"] == "sub dir"  # 26.3+ read the query...
    assert json.loads(request.content) == {"path": "sub dir"}  # ...26.2 and older the body
    assert_signed(request, V9)
    assert [entry.filename for entry in listing.files] == ["lab-upload.txt", ".jupyter"]
    assert listing.files[0].size == 21 and not listing.files[0].is_dir
    assert listing.files[1].is_dir and listing.abspath == "/home/work"


def _tar(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _multipart(*parts: bytes) -> tuple[str, bytes]:
    boundary = "5f3c1e9d"
    chunks = [
        f"--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Encoding: identity\r\n"
        f"Content-Length: {len(part)}\r\n\r\n".encode()
        + part
        + b"\r\n"
        for part in parts
    ]
    return f"multipart/mixed; boundary={boundary}", b"".join(
        chunks
    ) + f"--{boundary}--\r\n".encode()


async def test_download_extracts_each_archive_under_dest(
    front: str, server: ScriptedServer, tmp_path: Path
) -> None:
    content_type, body = _multipart(_tar("a.txt", b"alpha\n"), _tar("b/c.txt", b"gamma\n"))
    server.reply(200, raw=body, content_type=content_type)
    kern = kernel_cls(front)(SESSION_ID, session=session_for(front, server))
    written = await settle(kern.download(["a.txt", "b"], tmp_path / "dl"))
    assert (tmp_path / "dl" / "a.txt").read_bytes() == b"alpha\n"
    assert (tmp_path / "dl" / "b" / "c.txt").read_bytes() == b"gamma\n"
    assert {path.name for path in written} >= {"a.txt", "c.txt"}
    request = server.last
    assert (request.method, request.url.path) == ("POST", f"/session/{SESSION_ID}/download")
    assert request.url.query == b"files=a.txt&files=b"
    assert_signed(request, V9)


async def test_download_refuses_an_escaping_archive(
    front: str, server: ScriptedServer, tmp_path: Path
) -> None:
    content_type, body = _multipart(_tar("../escape.txt", b"pwned"))
    server.reply(200, raw=body, content_type=content_type)
    kern = kernel_cls(front)(SESSION_ID, session=session_for(front, server))
    with pytest.raises(sorna_sdk.APIResponseValidationError, match="could not be unpacked"):
        await settle(kern.download("escape.txt", tmp_path / "dl"))
    assert not (tmp_path / "escape.txt").exists()


async def test_a_run_continues_with_both_run_id_spellings(
    front: str, server: ScriptedServer
) -> None:
    """query -> continued -> waiting-input -> finished, as the real agent answered."""
    rid = "5f9fed7398a51b4a30e16e1e91418d1f"

    def result(status: str, text: str, exit_code: int | None = None) -> dict[str, Any]:
        fields = {"status": status, "runId": rid, "exitCode": exit_code, "options": None}
        return {"result": {**fields, "files": [], "console": [["stdout", text]]}}

    server.reply(200, result("continued", "tick 0\n"))
    server.reply(200, result("waiting-input", "who? "))
    server.reply(200, result("finished", "hi bob\n", 0))
    kern = kernel_cls(front)("my-session", session=session_for(front, server))
    merged = await settle(kern.run("import time; ...", input=["bob"]))
    bodies = [json.loads(request.content) for request in server.requests]
    assert bodies == [
        {"mode": "query", "code": "import time; ...", "runId": None},
        {"mode": "continue", "code": "", "runId": rid, "run_id": rid},
        {"mode": "input", "code": "bob", "runId": rid, "run_id": rid},
    ]
    assert merged.status == "finished" and merged.exit_code == 0 and merged.run_id == rid
    assert merged.stdout == "tick 0\nwho? hi bob\n"
    assert all(request.url.path == "/session/my-session" for request in server.requests)


async def test_real_agent_results_parse(front: str, server: ScriptedServer) -> None:
    server.reply(200, {"result": runlog("sdk_query")["result"]})
    kern = kernel_cls(front)("my-session", session=session_for(front, server))
    result = await settle(kern.execute('print("sdk", 42)'))
    assert result["console"] == [["stdout", "sdk 42\n"]]
    assert result.exit_code == 0 and result.run_id == "753c552c28fec4cb00e66193fc4cdd1e"
    assert result["exitCode"] == 0


async def test_new_code_while_a_run_is_unfinished_is_refused(
    front: str, server: ScriptedServer
) -> None:
    server.reply(200, {"result": {"status": "continued", "runId": "r1", "console": []}})
    kern = kernel_cls(front)("my-session", session=session_for(front, server))
    await settle(kern.execute("while True: pass"))
    with pytest.raises(sorna_sdk.InvalidArgumentError, match="continue it"):
        await settle(kern.execute("print(1)"))
    assert len(server.requests) == 1


async def test_batch_mode_sends_clean_build_exec(front: str, server: ScriptedServer) -> None:
    server.reply(200, {"result": {"status": "clean-finished", "runId": "r2", "console": []}})
    server.reply(200, {"result": {"status": "finished", "runId": "r2", "exitCode": 0,
                                  "console": [["stdout", "42\n"]]}})  # fmt: skip
    kern = kernel_cls(front)("my-session", session=session_for(front, server))
    merged = await settle(
        kern.run("", mode="batch", opts={"clean": "rm -f x", "build": "*", "exec": "python3 x.py"})
    )
    assert merged.stdout == "42\n"
    first, second = (json.loads(request.content) for request in server.requests)
    assert first == {
        "mode": "batch", "code": "", "runId": None,
        "options": {"clean": "rm -f x", "build": "*", "buildLog": True, "exec": "python3 x.py"},
    }  # fmt: skip
    assert second == {"mode": "continue", "code": "", "runId": "r2", "run_id": "r2"}


@pytest.mark.parametrize(
    ("server_version", "chosen"),
    [("v9.20250722", V9), ("v10.20270101", V9), ("v6.20221201", "v6.20221201"),
     ("v4.20181215", "v4.20181215")],
)  # fmt: skip
async def test_auto_negotiates_min_of_server_and_newest(
    front: str, server: ScriptedServer, server_version: str, chosen: str
) -> None:
    server.reply(200, {"version": server_version, "manager": "26.9.6"})
    server.reply(200, {"authorized": "yes", "echo": "x"})
    session = session_for(front, server, version="auto")
    assert session.api_version is None
    assert (await settle(session.authorize("x"))).echo == "x"
    probe, signed = server.requests
    assert (probe.method, probe.url.path) == ("GET", "/")
    assert "Authorization" not in probe.headers and "X-BackendAI-Version" not in probe.headers
    assert "Date" not in probe.headers
    assert session.api_version == chosen and session.server.manager == "26.9.6"  # type: ignore[unreachable]
    assert_signed(signed, chosen)  # type: ignore[unreachable]
    assert json.loads(signed.content) == {"echo": "x"}


async def test_negotiation_happens_once(front: str, server: ScriptedServer) -> None:
    server.reply(200, {"version": V9, "manager": "26.9.6"})
    server.reply(200, {"authorized": "yes", "echo": None}).reply(200, {"authorized": "yes"})
    session = session_for(front, server, version="auto")
    await settle(session.authorize())
    await settle(session.authorize())
    assert [request.url.path for request in server.requests] == ["/", "/auth/test", "/auth/test"]


@pytest.mark.parametrize(
    "reply",
    [
        {"status": 200, "body": {"version": "v3.20170615"}},
        {"status": 200, "body": {"manager": "x"}},
        {"status": 404, "body": {"type": "https://api.sorna.io/probs/generic-not-found",
                                 "title": "Unknown URL path."}},
        {"status": 200, "raw": b"<html>hello</html>", "content_type": "text/html"},
    ],
)  # fmt: skip
async def test_negotiation_failures_are_typed(
    front: str, server: ScriptedServer, reply: dict[str, Any]
) -> None:
    server.reply(**reply)
    session = session_for(front, server, version="auto")
    with pytest.raises(sorna_sdk.UnsupportedAPIVersionError, match="negotiation") as info:
        await settle(session.negotiate())
    assert SECRET_KEY not in str(info.value)
    assert session.api_version is None  # no silent fallback
    if reply.get("body", {}).get("version"):
        assert info.value.server_version == "v3.20170615"


async def test_negotiation_with_an_unreachable_server_is_a_connection_error(
    front: str, server: ScriptedServer
) -> None:
    for _ in range(3):
        server.fail(httpx.ConnectError("refused"))
    session = session_for(front, server, version="auto")
    with pytest.raises(sorna_sdk.APIConnectionError, match="negotiation"):
        await settle(session.negotiate())
    assert session.api_version is None


async def test_sorna_servers_refuse_backendai_only_operations_before_io(
    front: str, server: ScriptedServer
) -> None:
    kern = kernel_cls(front)("k-1", session=session_for(front, server, version="v2.20170315"))
    for call in (kern.logs, lambda: kern.list_files("."),
                 lambda: kern.download_single("a"), lambda: kern.download(["a"])):  # fmt: skip
        with pytest.raises(sorna_sdk.UnsupportedOperationError, match=r"Sorna API v2\.20170315"):
            await settle(call())
    assert server.requests == []


async def test_rate_limit_waits_in_seconds(front: str, server: ScriptedServer) -> None:
    limited = backendai_transcript("59-rate-limit")["exchanges"][-1]["response"]
    headers = dict(limited["headers"])
    server.reply(
        429, raw=limited["body"].encode(), headers={**headers, "X-RateLimit-Reset": "0.01"}
    )
    server.reply(200, {"authorized": "yes", "echo": ""})
    session = session_for(front, server)
    assert (await settle(session.authorize())).authorized == "yes"
    assert len(server.requests) == 2
    # A reset of 900 s is beyond max_retry_wait: no waiting, a typed error at once.
    server.reply(429, raw=limited["body"].encode(), headers=headers)
    with pytest.raises(sorna_sdk.RateLimitError) as info:
        await settle(session.authorize())
    assert info.value.retry_after == 900.0


def test_from_env_reads_backend_variables_and_negotiates() -> None:
    env = {
        "BACKEND_ENDPOINT": "http://127.0.0.1:8091",
        "BACKEND_ACCESS_KEY": "AKIAIOSFODNN7EXAMPLE",
        "BACKEND_SECRET_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "BACKEND_DOMAIN": "dom",
        "BACKEND_GROUP": "proj",
    }
    config = APIConfig.from_env(env)
    assert config.version == "auto" and config.endpoint == "http://127.0.0.1:8091"
    assert (config.domain, config.group) == ("dom", "proj")
    assert env["BACKEND_SECRET_KEY"] not in repr(config) + str(config)
    pinned = APIConfig.from_env({**env, "BACKEND_API_VERSION": "v4.20190615"})
    assert pinned.version == "v4.20190615"


def test_from_env_falls_back_to_sorna_names_per_variable() -> None:
    config = APIConfig.from_env(
        {"BACKEND_ENDPOINT": "http://h:1", "SORNA_ACCESS_KEY": "ak", "SORNA_SECRET_KEY": "sk"}
    )
    assert (config.access_key, config.secret_key, config.version) == ("ak", "sk", "auto")
    sorna = APIConfig.from_env({"SORNA_ENDPOINT": "http://h:2", "SORNA_ACCESS_KEY": "a",
                                "SORNA_SECRET_KEY": "s"})  # fmt: skip
    assert sorna.version == "v2.20170315"  # the embedded gateway's variables keep v2
    both = APIConfig.from_env(
        {"BACKEND_ACCESS_KEY": "b", "SORNA_ACCESS_KEY": "a", "SORNA_SECRET_KEY": "s",
         "SORNA_API_VERSION": "v8.20240915"}
    )  # fmt: skip
    assert (both.access_key, both.version) == ("b", "v8.20240915")


def test_from_env_names_the_missing_variable() -> None:
    with pytest.raises(sorna_sdk.ConfigurationError, match="BACKEND_SECRET_KEY is not set"):
        APIConfig.from_env({"BACKEND_ENDPOINT": "http://h:1", "BACKEND_ACCESS_KEY": "a"})
    with pytest.raises(
        sorna_sdk.ConfigurationError, match="BACKEND_ACCESS_KEY or SORNA_ACCESS_KEY"
    ):
        APIConfig.from_env({})
    with pytest.raises(sorna_sdk.ConfigurationError, match="BACKEND_API_VERSION") as info:
        APIConfig.from_env({"BACKEND_ACCESS_KEY": "a", "BACKEND_SECRET_KEY": "topsecret-1",
                            "BACKEND_API_VERSION": "v3.20170615"})  # fmt: skip
    assert "topsecret-1" not in str(info.value)


@pytest.mark.parametrize("version", ["v2.20170315", "auto", *supported_versions()])
def test_every_supported_version_is_accepted(version: str) -> None:
    assert APIConfig(access_key="a", secret_key="s", version=version).version == version


@pytest.mark.parametrize("version", ["v1.20160915", "v3.20170615", "v9.20990101", "v10.1", "9"])
def test_other_versions_are_refused(version: str) -> None:
    with pytest.raises(sorna_sdk.ConfigurationError, match="not supported"):
        APIConfig(access_key="a", secret_key="s", version=version)


def test_sessions_and_handles_keep_secrets_out_of_reprs(server: ScriptedServer) -> None:
    with server.sync_session(version=V9) as session:
        kern = Kernel(SESSION_ID, session=session, client_token="my-session")
        text = repr(session) + repr(kern) + repr(session.config) + repr(session._auth)
        assert SECRET_KEY not in text
        assert V9 in repr(session)


async def test_the_async_session_negotiates_once_under_concurrency(
    server: ScriptedServer,
) -> None:
    import asyncio

    server.reply(200, {"version": V9, "manager": "26.9.6"})
    for _ in range(5):
        server.reply(200, {"authorized": "yes"})
    async with server.async_session(version="auto") as session:
        assert isinstance(session, AsyncSession)
        await asyncio.gather(*(session.authorize() for _ in range(5)))
    assert [request.url.path for request in server.requests].count("/") == 1


def test_session_twins_expose_the_negotiated_version(server: ScriptedServer) -> None:
    server.reply(200, {"version": V9, "manager": "26.9.6"})
    with server.sync_session(version="auto") as session:
        assert isinstance(session, Session)
        assert session.negotiate() == V9 and session.negotiate() == V9
    assert len(server.requests) == 1
