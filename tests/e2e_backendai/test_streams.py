"""The Backend.AI streams end to end: session events (SSE), the execute WebSocket and the PTY."""

from __future__ import annotations

import threading
import time

import pytest

import sorna_sdk
from sorna_sdk import AsyncKernel, AsyncSession, Kernel, Session, SessionEvent
from sorna_sdk.local import RunningGateway

from .conftest import NEWEST, unique

pytestmark = pytest.mark.timeout(60)


def _wait_for_new_connection(gateway: RunningGateway, before: int, seconds: float = 5.0) -> None:
    """Until the gateway holds more connections than ``before`` (a listener got in), then a
    moment more for its request to be served."""
    deadline = time.monotonic() + seconds
    while gateway.gateway.connections <= before and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)


def test_events_of_a_destroyed_session(gateway: RunningGateway, session: Session) -> None:
    kern = Kernel.get_or_create("python", unique("events"), session=session)
    seen: list[SessionEvent] = []
    failures: list[BaseException] = []

    def listen() -> None:
        with Session(gateway.config(version=session.api_version)) as other:
            watched = Kernel(kern.kernel_id, client_token=kern.client_token, session=other)
            try:
                with watched.events() as events:
                    seen.extend(events)
            except BaseException as exc:  # reported below
                failures.append(exc)

    before = gateway.gateway.connections
    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    _wait_for_new_connection(gateway, before)
    kern.destroy()
    listener.join(15)
    assert not listener.is_alive(), "the event stream did not end after session_terminated"
    assert not failures, failures
    names = [event.event for event in seen]
    assert "session_terminating" in names, names
    assert names[-1] == "session_terminated", names
    assert names.index("session_terminating") < names.index("session_terminated")
    for event in seen:
        assert event.session_name == kern.client_token or (
            (event.session_id or "").replace("-", "") == kern.kernel_id.replace("-", "")
        ), event


def test_events_of_an_unknown_session_are_refused(session: Session) -> None:
    ghost = Kernel("f" * 32, client_token=unique("ghost"), session=session)
    with pytest.raises(sorna_sdk.KernelNotFoundError), ghost.events(reconnect=False) as events:
        next(iter(events))


@pytest.mark.parametrize("version", [NEWEST, "v4.20190115"])
def test_stream_execute(gateway: RunningGateway, version: str) -> None:
    code = (
        "import time\n"
        "for i in range(3):\n"
        "    print('streamed', i, flush=True)\n"
        "    time.sleep(0.25)"
    )
    with Session(gateway.config(version=version)) as session:
        with Kernel.get_or_create("python", unique("sx"), session=session) as kern:
            with kern.stream_execute(code) as stream:
                frames = list(stream)
            assert stream.done
            assert frames[-1].status == "finished"
            assert all(f.status == "continued" for f in frames[:-1]), frames
            assert "".join(f.stdout for f in frames) == "streamed 0\nstreamed 1\nstreamed 2\n"
            with kern.stream_execute('name = input("who? ")\nprint("hi", name)') as stream:
                result = stream.result(input=["carol"])
            assert result.status == "finished"
            assert result.stdout == "who? hi carol\n"
            # The kernel is free again afterwards.
            assert kern.execute("print('after')").stdout == "after\n"


def test_stream_execute_needs_v4_20190115(gateway: RunningGateway) -> None:
    with Session(gateway.config(version="v4.20181215")) as session:
        kern = Kernel("f" * 32, session=session)
        with pytest.raises(sorna_sdk.UnsupportedOperationError):
            kern.stream_execute("print(1)")


async def test_stream_execute_async(gateway: RunningGateway) -> None:
    async with AsyncSession(gateway.config(version=NEWEST)) as session:
        async with await AsyncKernel.get_or_create(
            "python", unique("sxa"), session=session
        ) as kern:
            async with await kern.stream_execute("print(6 * 7)") as stream:
                result = await stream.result()
            assert result.status == "finished"
            assert result.stdout == "42\n"


def test_stream_pty_echoes(session: Session) -> None:
    with Kernel.get_or_create("python", unique("pty"), session=session) as kern:
        with kern.stream_pty() as pty:
            pty.send("echo hi-$((6 * 7))\n")
            seen = b""
            deadline = time.monotonic() + 10
            while b"hi-42" not in seen:
                left = deadline - time.monotonic()
                assert left > 0, f"no echo within 10 s: {seen[-300:]!r}"
                seen += pty.read(timeout=left)
        assert b"hi-42" in seen


def test_streams_of_unknown_sessions_are_kernel_not_found(session: Session) -> None:
    ghost = Kernel("0" * 32, session=session)
    with pytest.raises(sorna_sdk.KernelNotFoundError):
        ghost.stream_pty()
    if session.api_version == NEWEST:
        with pytest.raises(sorna_sdk.KernelNotFoundError):
            ghost.stream_execute("print(1)")
