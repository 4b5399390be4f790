"""Every route and every error status, through the SDK, against the real gateway."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

import sorna_sdk
from sorna_sdk import AsyncKernel, AsyncSession, Kernel, Session
from sorna_sdk.auth import HMACAuth
from sorna_sdk.local import RunningGateway

from .conftest import running_gateway


def test_hello_and_authorize(sorna_session: Session) -> None:
    assert sorna_session.hello().version == "v2.20170315"
    reply = Kernel.authorize({"nested": [1, "two"]}, session=sorna_session)
    assert reply.authorized == "yes"
    assert reply["echo"] == {"nested": [1, "two"]}


def test_kernel_lifecycle_sync(sorna_session: Session) -> None:
    kern = Kernel.get_or_create("python3", client_token="e2e-lifecycle-1", session=sorna_session)
    assert kern.created is True
    again = Kernel.get_or_create("python3", client_token="e2e-lifecycle-1", session=sorna_session)
    assert again.kernel_id == kern.kernel_id and again.created is False

    assert kern.execute("x = 41").status == "finished"
    result = kern.execute("x += 1\nprint(x)")
    assert result["console"] == [["stdout", "42\n"]]
    assert result["status"] == "finished"

    info = kern.get_info()
    assert info.lang == "python3"
    assert info["numQueriesExecuted"] == 2
    assert info.memory_used > 1000  # type: ignore[attr-defined]  # a real process's RSS, in KiB
    assert info.age >= 0 and info.idle >= 0  # type: ignore[attr-defined]

    kern.restart()
    after = kern.execute("print('x' in globals())")
    assert after.stdout == "False\n"
    kern.destroy()
    with pytest.raises(sorna_sdk.KernelNotFoundError):
        kern.get_info()
    with pytest.raises(sorna_sdk.KernelNotFoundError):
        kern.execute("print(1)")
    with pytest.raises(sorna_sdk.KernelNotFoundError):
        kern.restart()
    with pytest.raises(sorna_sdk.KernelNotFoundError):
        kern.destroy()


async def test_kernel_lifecycle_async(sorna_async_session: AsyncSession) -> None:
    kern = await AsyncKernel.get_or_create("lua5", session=sorna_async_session)
    async with kern:
        result = await kern.execute('x = 20\nprint("hello world")')
        assert result["console"] == [["stdout", "hello world\n"]]
        assert (await kern.execute("print(x * 2 + 2)")).stdout == "42\n"
        assert (await kern.get_info()).lang == "lua5"
    with pytest.raises(sorna_sdk.KernelNotFoundError):
        await kern.get_info()


def test_bash_and_stderr_order(sorna_session: Session) -> None:
    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        result = kern.execute(
            "import sys, os\nprint('a')\nprint('b', file=sys.stderr)\nprint('c')\n"
            "sys.stdout.flush(); os.system('echo from-child')"
        )
        kinds = [item.type for item in result.console]
        assert result.console[0] == ("stdout", "a\n")
        assert result.console[1] == ("stderr", "b\n")
        assert kinds[:3] == ["stdout", "stderr", "stdout"]
        assert "from-child\n" in result.stdout
    with Kernel.get_or_create("bash", session=sorna_session) as kern:
        assert kern.execute("echo $((6 * 7))").stdout == "42\n"


def test_exception_in_user_code_is_reported_on_stderr(sorna_session: Session) -> None:
    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        result = kern.execute("1 / 0")
        assert result.status == "finished"
        assert "ZeroDivisionError" in result.stderr
        assert kern.execute("print('still alive')").stdout == "still alive\n"


def test_media_and_html_items(sorna_session: Session) -> None:
    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        result = kern.execute(
            "sorna.display_media('image/png', b'\\x89PNG')\nsorna.display_html('<b>hi</b>')"
        )
        assert ["html", "<b>hi</b>"] in result["console"]
        (media,) = [item for item in result.console if item.type == "media"]
        assert media.data[0] == "image/png"


def test_complete_mode(sorna_session: Session) -> None:
    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        kern.execute("alpha_value = 1\nalpha_other = 2")
        result = kern.execute(
            "alpha_", mode="complete", opts={"row": 0, "col": 6, "line": "alpha_"}
        )
        (item,) = result.console
        assert item.type == "completion"
        assert {"alpha_value", "alpha_other"} <= set(item.data)


def test_upload_then_batch(sorna_session: Session, tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "util.py").write_text("def shout(s):\n    return s.upper()\n")
    (tmp_path / "main.py").write_text(
        "import sys\nsys.path.insert(0, 'lib')\nfrom util import shout\nprint(shout('ran'))\n"
    )
    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        kern.upload(["main.py", "lib/util.py"], base_dir=tmp_path)
        first = kern.execute(
            "", mode="batch", opts={"build": "echo built", "buildLog": True, "exec": "*"}
        )
        assert first.status == "build-finished"
        assert "built" in first.stdout
        merged = kern.run("", mode="batch", opts={"build": None, "exec": "python3 main.py"})
        assert merged.status == "finished"
        assert merged.stdout == "RAN\n"


@pytest.mark.parametrize(
    "name", ["../escape.txt", "/etc/evil.txt", "a/../../escape.txt", "", "x\x00y"]
)
def test_upload_traversal_is_refused(
    sorna_session: Session, sorna_gateway: RunningGateway, name: str
) -> None:
    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        call = sorna_session.routes.upload(kern.kernel_id, [(name, b"pwned")])
        with pytest.raises(sorna_sdk.InvalidAPIParamsError):
            sorna_session.send(call)
        listing = kern.execute("import os; print(sorted(os.listdir('..')))")
        assert "escape.txt" not in listing.stdout
        assert sorna_session.hello().version  # still serving


def test_upload_symlink_escape_is_refused(sorna_session: Session, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        kern.execute(f"import os; os.symlink({str(outside)!r}, 'link')")
        call = sorna_session.routes.upload(kern.kernel_id, [("link/x.txt", b"pwned")])
        with pytest.raises(sorna_sdk.InvalidAPIParamsError):
            sorna_session.send(call)
    assert list(outside.iterdir()) == []


def test_upload_limits(sorna_session: Session) -> None:
    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        too_many = [(f"f{i}.txt", b"x") for i in range(21)]
        with pytest.raises(sorna_sdk.InvalidAPIParamsError):
            sorna_session.send(sorna_session.routes.upload(kern.kernel_id, too_many))
        too_big = [("big.bin", b"x" * (1024 * 1024 + 1))]
        with pytest.raises(sorna_sdk.InvalidAPIParamsError):
            sorna_session.send(sorna_session.routes.upload(kern.kernel_id, too_big))


def test_unknown_language_names_the_available_ones(sorna_session: Session) -> None:
    with pytest.raises(sorna_sdk.InvalidAPIParamsError) as info:
        Kernel.get_or_create("cobol85", session=sorna_session)
    assert "python3" in info.value.title and "lua5" in info.value.title


def test_wrong_secret_is_401(sorna_gateway: RunningGateway) -> None:
    with Session(sorna_gateway.config(secret_key="not-the-secret")) as session:
        with pytest.raises(sorna_sdk.AuthenticationError) as info:
            Kernel.authorize(session=session)
        assert info.value.type == "https://api.sorna.io/probs/auth-failed"
        assert "not-the-secret" not in str(info.value)
    with Session(sorna_gateway.config(access_key="AKIAUNKNOWN000000000")) as session:
        with pytest.raises(sorna_sdk.AuthenticationError):
            Kernel.get_or_create("python3", session=session)


def test_clock_skew_is_400_invalid_auth_params(sorna_gateway: RunningGateway) -> None:
    skewed = lambda: datetime.now(timezone.utc) + timedelta(minutes=20)  # noqa: E731
    with Session(sorna_gateway.config(max_retries=0), clock=skewed) as session:
        with pytest.raises(sorna_sdk.InvalidAuthParamsError):
            Kernel.authorize(session=session)
    near = lambda: datetime.now(timezone.utc) - timedelta(minutes=14)  # noqa: E731
    with Session(sorna_gateway.config(), clock=near) as session:
        assert Kernel.authorize("ok", session=session).echo == "ok"


def test_other_hash_algorithms_verify(sorna_gateway: RunningGateway) -> None:
    # The gateway signs with SHA-2 only: SHA-1, SHA-3 etc. get a 400 (test_server_hardening.py).
    for hash_name in ("sha384", "sha512"):
        with Session(sorna_gateway.config(hash_name=hash_name)) as session:
            assert Kernel.authorize(hash_name, session=session).echo == hash_name


def test_unknown_path_method_and_pty_stub(sorna_gateway: RunningGateway) -> None:
    auth = HMACAuth(sorna_gateway.access_key, sorna_gateway.secret_key, version="v2.20170315")
    with httpx.Client(base_url=sorna_gateway.endpoint, auth=auth) as client:
        missing = client.get("/v2/no/such/thing")
        assert missing.status_code == 404
        assert missing.json()["type"] == "https://api.sorna.io/probs/generic-not-found"
        wrong = client.put("/v2/authorize", content=b"{}")
        assert wrong.status_code == 405 and "GET" in wrong.headers["Allow"]
        assert wrong.headers["Content-Type"].startswith("application/problem+json")
        for response in (missing, wrong):
            assert int(response.headers["Content-Length"]) == len(response.content)


def test_quota_and_rate_limit() -> None:
    with running_gateway(concurrency_limit=1, rate_limit=6) as gateway:
        with Session(gateway.config(max_retries=0)) as session:
            first = Kernel.get_or_create("python3", client_token="quota-token-1", session=session)
            with pytest.raises(sorna_sdk.QuotaExceededError) as quota:
                Kernel.get_or_create("python3", client_token="quota-token-2", session=session)
            assert quota.value.status == 412
            # The same key is not a new kernel, so the quota does not apply.
            same = Kernel.get_or_create("python3", client_token="quota-token-1", session=session)
            assert same.kernel_id == first.kernel_id
            with pytest.raises(sorna_sdk.RateLimitError) as limited:
                for _ in range(10):
                    Kernel.authorize(session=session)
            assert limited.value.status == 429
            assert int(limited.value.headers["X-RateLimit-Remaining"]) == 0


def test_malformed_json_is_400_not_500(sorna_gateway: RunningGateway) -> None:
    auth = HMACAuth(sorna_gateway.access_key, sorna_gateway.secret_key, version="v2.20170315")
    headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=sorna_gateway.endpoint, auth=auth) as client:
        for path, body in [
            ("/v2/kernel/create", b"{not json"),
            ("/v2/kernel/create", b"[]"),
            ("/v2/kernel/create", json.dumps({"lang": 5, "clientSessionToken": "x" * 8}).encode()),
            ("/v2/kernel/create", json.dumps({"lang": "python3"}).encode()),
            ("/v2/kernel/create", b"\xff\xfe\x00"),
        ]:
            response = client.post(path, content=body, headers=headers)
            assert response.status_code == 400, (body, response.text)
            assert response.json()["type"] == "https://api.sorna.io/probs/invalid-api-params"
        kern = client.post(
            "/v2/kernel/create",
            content=json.dumps({"lang": "python3", "clientSessionToken": "malformed-1"}).encode(),
            headers=headers,
        ).json()["kernelId"]
        for body in [
            b"{",
            b'{"code": "", "mode": 5}',
            b'{"mode": "fly", "code": ""}',
            b'{"code": 1}',
        ]:
            response = client.post(f"/v2/kernel/{kern}", content=body, headers=headers)
            assert response.status_code == 400, (body, response.text)
        assert client.delete(f"/v2/kernel/{kern}").status_code == 204
