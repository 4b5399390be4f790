"""The code interpreter end to end on the Backend.AI front of the gateway, at the newest API
version (execute WebSocket) and the oldest (v4.20181215: no stream, HTTP long-polling)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sorna_sdk import (
    AsyncKernel,
    AsyncSession,
    ConsoleItem,
    ExecutionTimeoutError,
    Kernel,
    OutputEvent,
    ProgramError,
    Session,
)
from sorna_sdk.local import RunningGateway

from ..e2e.test_interpreter import (
    DROPPER,
    EXPECTED,
    PNG_SIGNATURE,
    TICKER,
    assert_live,
    assert_live_pace,
)
from .conftest import NEWEST


def expected_transport(version: str) -> str:
    return "http" if version.startswith("v4.20181215") else "websocket"


def test_each_line_reaches_on_output_before_the_next_is_printed(
    session: Session, version: str
) -> None:
    arrivals: list[tuple[float, str]] = []

    def on_output(item: ConsoleItem) -> None:
        arrivals.append((time.time(), item.text))

    with Kernel.get_or_create("python", session=session) as kern:
        with kern.stream(TICKER) as live:
            for event in live:
                if isinstance(event, OutputEvent):
                    on_output(event.item)
        assert live.transport == expected_transport(version)
        assert live.result is not None and live.result.exit_code == 0
        arrivals.clear()
        kern.run(TICKER, on_output=on_output)
    assert_live(arrivals)


async def test_async_callbacks_are_awaited_as_lines_arrive(async_session: AsyncSession) -> None:
    arrivals: list[tuple[float, str]] = []

    async def on_output(item: ConsoleItem) -> None:
        arrivals.append((time.time(), item.text))

    kern = await AsyncKernel.get_or_create("python", session=async_session)
    try:
        await kern.run(TICKER, on_output=on_output)
    finally:
        await kern.destroy()
    assert_live(arrivals)


def test_sorna_run_prints_each_line_as_it_is_printed(gateway: RunningGateway) -> None:
    config = gateway.config(version=NEWEST)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SORNA_", "BACKEND_"))},
        "BACKEND_ENDPOINT": config.endpoint,
        "BACKEND_ACCESS_KEY": config.access_key,
        "BACKEND_SECRET_KEY": config.secret_key,
        "BACKEND_API_VERSION": NEWEST,
    }
    command = [sys.executable, "-m", "sorna_sdk.cli", "run", "python", "-c", TICKER]
    with subprocess.Popen(command, stdout=subprocess.PIPE, env=env, text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        arrivals = [(time.time(), line) for line in proc.stdout]
        assert proc.wait(30) == 0
    assert_live_pace(arrivals)
    assert_live(arrivals)


def test_plot_error_and_last_value(session: Session, tmp_path: Path) -> None:
    with Kernel.get_or_create("python", session=session) as kern:
        failed = kern.run("1/0", on_output=lambda item: None)
        assert failed.error is not None and failed.error.name == "ZeroDivisionError"
        with pytest.raises(ProgramError):
            failed.raise_for_error()
        value = kern.run("[1, 2][-1]", last_value=True).last_value
        assert value is not None and value.text == "2"
        if kern.run("import matplotlib").error is not None:
            pytest.skip("matplotlib is not installed in the gateway's Python")
        result = kern.run("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()")
    (image,) = result.images
    assert image.save(tmp_path / "plot.png").read_bytes().startswith(PNG_SIGNATURE)


def test_a_deadline_fires_on_time_and_the_session_stays_usable(session: Session) -> None:
    with Kernel.get_or_create("python", session=session) as kern:
        start = time.monotonic()
        with pytest.raises(ExecutionTimeoutError):
            kern.run("import time\ntime.sleep(30)", timeout=2)
        assert 2.0 <= time.monotonic() - start < 2.3
        assert kern.run("print(1)").stdout == "1\n"
        # One execute answers within the flush window (0.5 s here): a shorter deadline fires.
        start = time.monotonic()
        with pytest.raises(ExecutionTimeoutError):
            kern.execute("import time\ntime.sleep(30)", timeout=0.3)
        assert 0.3 <= time.monotonic() - start < 0.43
        assert kern.run("print(2)").stdout == "2\n"


async def test_async_deadline(async_session: AsyncSession) -> None:
    kern = await AsyncKernel.get_or_create("python", session=async_session)
    try:
        start = time.monotonic()
        with pytest.raises(ExecutionTimeoutError):
            await kern.run("import time\ntime.sleep(30)", timeout=2)
        assert 2.0 <= time.monotonic() - start < 2.3
        assert (await kern.run("print(1)")).stdout == "1\n"
    finally:
        await kern.destroy()


def test_a_dropped_stream_is_resumed_without_loss_or_repeats(gateway: RunningGateway) -> None:
    with (
        Session(gateway.config(version=NEWEST)) as session,
        Kernel.get_or_create("python", session=session) as kern,
    ):
        texts: list[str] = []
        with kern.stream(DROPPER, transport="websocket") as live:
            for event in live:
                if isinstance(event, OutputEvent):
                    texts.append(event.item.text)
                    if len(texts) == 3:
                        assert live._ws is not None
                        live._ws.socket.shutdown(socket.SHUT_RDWR)
        assert "".join(texts) == EXPECTED
        assert live.result is not None and live.result.stdout == EXPECTED
