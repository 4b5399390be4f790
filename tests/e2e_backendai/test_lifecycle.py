"""Session lifecycle through the SDK's Backend.AI dialect against the real gateway: images,
names, reuse, environ, info, restart, destroy, and kernels shared with the Sorna dialect."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

import sorna_sdk
from sorna_sdk import AsyncKernel, AsyncSession, DestroyResult, Kernel, Session, SessionInfo
from sorna_sdk.local import RunningGateway

from .conftest import NEWEST, unique

pytestmark = pytest.mark.timeout(60)

IMAGES = ["python", "python:3.11-debian12", "cr.backend.ai/stable/python:3.13-ubuntu24.04"]


def test_hello_authorize_and_signatures(gateway: RunningGateway, session: Session) -> None:
    assert session.hello().version == NEWEST
    assert session.authorize({"nested": [1, "two"]}).echo == {"nested": [1, "two"]}
    version = session.api_version
    for hash_name in ("sha384", "sha512"):
        with Session(gateway.config(version=version, hash_name=hash_name)) as other:
            assert other.authorize(hash_name).echo == hash_name
    skewed = lambda: datetime.now(timezone.utc) + timedelta(minutes=20)  # noqa: E731
    with Session(gateway.config(version=version, max_retries=0), clock=skewed) as other:
        with pytest.raises(sorna_sdk.InvalidAuthParamsError) as info:
            other.authorize()
        assert info.value.type == "https://api.backend.ai/probs/invalid-auth-params"
    near = lambda: datetime.now(timezone.utc) - timedelta(minutes=14)  # noqa: E731
    with Session(gateway.config(version=version), clock=near) as other:
        assert other.authorize("ok").echo == "ok"
    with Session(gateway.config(version=version, secret_key="not-the-secret")) as other:
        with pytest.raises(sorna_sdk.AuthenticationError) as denied:
            Kernel.get_or_create("python", unique("denied"), session=other)
        assert denied.value.status == 401
        assert denied.value.error_code == "user_auth_unauthorized"


def test_python_images_start_the_local_python_kernel(session: Session) -> None:
    for image in IMAGES:
        with Kernel.get_or_create(image, unique("img"), session=session) as kern:
            assert kern.created is True, image
            assert kern.status == "RUNNING", image
            result = kern.execute("import sys\nprint(sys.version_info[0], 6 * 7)")
            assert result.status == "finished", image
            assert result.console == [("stdout", "3 42\n")], image
            assert result.exit_code in (0, None), image


def test_image_keyword_and_session_id(session: Session) -> None:
    with Kernel.get_or_create(image="python", client_token=unique("kw"), session=session) as kern:
        assert kern.lang == "python"
        if session.api_version == NEWEST:
            uuid.UUID(kern.kernel_id)  # v5 and later address sessions by their UUID
        assert kern.execute("print('kw')").stdout == "kw\n"


def test_unknown_images_are_image_not_found(session: Session) -> None:
    for image in ["nosuch/image:1.0", "python:2.7", "ubuntu:22.04"]:
        with pytest.raises(sorna_sdk.ImageNotFoundError) as info:
            Kernel.get_or_create(image, unique("noimg"), session=session)
        assert info.value.status == 404
        assert info.value.type.startswith("https://api.backend.ai/probs/")
        assert (info.value.error_code or "").startswith("image_"), info.value
        assert image in str(info.value)


def test_reuse_returns_the_same_session(session: Session) -> None:
    name = unique("reuse")
    with Kernel.get_or_create("python", name, session=session) as kern:
        kern.execute("shared = 7")
        again = Kernel.get_or_create("python:3.11-debian12", name, session=session)
        assert again.kernel_id == kern.kernel_id
        assert again.created is False
        assert again.execute("print(shared * 6)").stdout == "42\n"


@pytest.mark.parametrize("version", [NEWEST, "v4.20190615"])
def test_reuse_false_on_a_taken_name_is_session_already_exists(
    gateway: RunningGateway, version: str
) -> None:
    name = unique("noreuse")
    with Session(gateway.config(version=version)) as session:
        with Kernel.get_or_create("python", name, session=session) as kern:
            with pytest.raises(sorna_sdk.SessionAlreadyExistsError) as info:
                Kernel.get_or_create("python", name, reuse=False, session=session)
            assert info.value.status == 400
            assert info.value.error_code == "session_create_already-exists"
            existing = info.value.existing_session_id
            assert existing is not None
            if version == NEWEST:
                assert existing.replace("-", "") == kern.kernel_id.replace("-", "")
            else:
                uuid.UUID(existing)  # v4 paths use the name; the error still names the id
            # The first session is untouched.
            kern.execute("mine = True")
            assert kern.execute("print(mine)").stdout == "True\n"
        # Once it is gone, the name is free for reuse=False: a new session, fresh state.
        with Kernel.get_or_create("python", name, reuse=False, session=session) as fresh:
            assert fresh.created is True
            assert fresh.execute("print('mine' in globals())").stdout == "False\n"


def test_bad_session_names_are_refused_client_side(session: Session) -> None:
    for name in ["abc", "x" * 65, "-dash-first", "dot-last.", "has space", "semi;colon", "ümlaut"]:
        with pytest.raises(sorna_sdk.InvalidArgumentError) as info:
            Kernel.get_or_create("python", name, session=session)
        assert not isinstance(info.value, sorna_sdk.APIStatusError), name


def test_names_of_4_and_64_characters_are_accepted(session: Session) -> None:
    for length in (4, 64):
        name = unique("n")[:length].ljust(length, "z")
        with Kernel.get_or_create("python", name, session=session) as kern:
            assert kern.created is True
            assert kern.client_token == name
            assert kern.execute("print(len('ok'))").stdout == "2\n"


def test_environ_is_the_kernels_environment(session: Session) -> None:
    environ = {"E2E_FLAG": "on-42", "E2E_SPACES": "a b  c", "E2E_EMPTY": ""}
    with Kernel.get_or_create("python", unique("env"), environ=environ, session=session) as kern:
        result = kern.execute(
            "import os\nprint(repr(os.environ['E2E_FLAG']), repr(os.environ['E2E_SPACES']),"
            " repr(os.environ.get('E2E_EMPTY')))"
        )
        assert result.stdout == "'on-42' 'a b  c' ''\n"


def test_resources_are_reported_and_memory_enforced(session: Session) -> None:
    resources: dict[str, str | int] = {"cpu": 2, "mem": "512m"}
    with Kernel.get_or_create("python", unique("res"), resources=resources, session=session) as k:
        info = k.get_info()
        assert isinstance(info, SessionInfo)
        assert info.requested_slots == {"cpu": Decimal(2), "mem": Decimal(512 * 2**20)}
        result = k.execute(
            "try:\n    b = bytearray(900 * 2**20)\nexcept MemoryError:\n    print('refused')"
        )
        assert result.stdout == "refused\n"
        assert k.execute("print('alive')").stdout == "alive\n"


def test_documented_refusals_are_400(session: Session) -> None:
    """What the gateway cannot do (docs/local-gateway.md) is a typed 400, never a session."""
    name = unique("refused")
    for options in (
        {"mounts": ["my-vfolder"]},
        {"resources": {"cuda.device": 1}},
        {"session_type": "batch"},
        {"cluster_size": 2},
    ):
        if session.api_version != NEWEST and "session_type" in options:
            continue  # v4.20181215 has no session type field (refused client-side)
        with pytest.raises(sorna_sdk.BadRequestError) as info:
            Kernel.get_or_create("python", name, session=session, **options)
        assert info.value.status == 400, options
        assert info.value.type.startswith("https://api.backend.ai/probs/"), options
    with pytest.raises(sorna_sdk.KernelNotFoundError):
        Kernel(name, session=session).get_info()


def test_get_info_fields(session: Session) -> None:
    with Kernel.get_or_create("python:3.11-debian12", unique("info"), session=session) as kern:
        first = kern.get_info()
        assert isinstance(first, SessionInfo)
        assert first.status == "RUNNING"
        assert isinstance(first.image, str) and "python" in first.image
        assert first.age >= 0
        kern.execute("print(1)")
        kern.execute("print(2)")
        time.sleep(0.3)
        second = kern.get_info()
        assert second.num_queries_executed >= first.num_queries_executed + 2
        assert second["numQueriesExecuted"] == second.num_queries_executed
        assert second.age - first.age >= 200, (first.age, second.age)  # milliseconds


def test_restart_keeps_the_id_and_clears_the_state(session: Session) -> None:
    with Kernel.get_or_create("python", unique("restart"), session=session) as kern:
        kern.execute("x = 41")
        before = kern.kernel_id
        kern.restart()
        assert kern.kernel_id == before
        info = kern.get_info()
        assert isinstance(info, SessionInfo) and info.status == "RUNNING"
        assert kern.execute("print('x' in globals())").stdout == "False\n"


def test_destroy_reports_stats_then_the_session_is_gone(session: Session) -> None:
    kern = Kernel.get_or_create("python", unique("destroy"), session=session)
    kern.execute("print(1)")
    result = kern.destroy()
    assert isinstance(result, DestroyResult)
    assert isinstance(result.stats, dict)
    with pytest.raises(sorna_sdk.KernelNotFoundError) as info:
        kern.get_info()
    assert info.value.status == 404
    assert (info.value.error_code or "").startswith(("session_", "kernel_"))
    with pytest.raises(sorna_sdk.KernelNotFoundError):
        kern.execute("print(1)")
    with pytest.raises(sorna_sdk.KernelNotFoundError):
        kern.restart()
    with pytest.raises(sorna_sdk.KernelNotFoundError):
        kern.interrupt()


def test_forced_destroy(session: Session) -> None:
    kern = Kernel.get_or_create("python", unique("forced"), session=session)
    assert kern.execute("import time\ntime.sleep(30)").status == "continued"
    start = time.monotonic()
    assert isinstance(kern.destroy(forced=True), DestroyResult)
    assert time.monotonic() - start < 5
    with pytest.raises(sorna_sdk.KernelNotFoundError):
        kern.get_info()


async def test_lifecycle_async(async_session: AsyncSession) -> None:
    name = unique("async")
    kern = await AsyncKernel.get_or_create("python", name, session=async_session)
    async with kern:
        assert kern.created is True
        assert (await kern.execute("y = 20\nprint('hello world')")).stdout == "hello world\n"
        assert (await kern.execute("print(y * 2 + 2)")).stdout == "42\n"
        again = await AsyncKernel.get_or_create("python", name, session=async_session)
        assert again.kernel_id == kern.kernel_id and again.created is False
        info = await kern.get_info()
        assert isinstance(info, SessionInfo) and info.status == "RUNNING"
    with pytest.raises(sorna_sdk.KernelNotFoundError):
        await kern.get_info()


def test_sorna_kernel_is_reachable_through_backendai(
    gateway: RunningGateway, session: Session
) -> None:
    with Session(gateway.config()) as sorna:
        with Kernel.get_or_create("python3", unique("from-sorna"), session=sorna) as made:
            made.execute("origin = 'sorna'")
            seen = Kernel(made.kernel_id, session=session)
            assert seen.execute("print(origin)").stdout == "sorna\n"
            info = seen.get_info()
            assert isinstance(info, SessionInfo) and info.status == "RUNNING"
            assert info.num_queries_executed >= 2
            seen.destroy()
            with pytest.raises(sorna_sdk.KernelNotFoundError):
                made.get_info()


def test_backendai_session_is_reachable_through_sorna(
    gateway: RunningGateway, newest: Session
) -> None:
    """By the session's UUID (v5 and later; v4 paths name the session instead)."""
    session = newest
    with Session(gateway.config()) as sorna:
        with Kernel.get_or_create("python", unique("from-bai"), session=session) as made:
            made.execute("origin = 'backend.ai'")
            seen = Kernel(made.kernel_id, session=sorna)
            assert seen.execute("print(origin)").stdout == "backend.ai\n"
            assert seen.get_info().lang == "python3"
            seen.destroy()
            with pytest.raises(sorna_sdk.KernelNotFoundError):
                made.get_info()
