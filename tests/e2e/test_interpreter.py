"""The code interpreter end to end on the Sorna v2 front of the gateway: live output (both
transports, sync and async, and ``sorna run``), plots, last values, structured errors,
deadlines and resume after a dropped connection.

The comparison table of ``docs/interpreter.md`` names these tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from sorna_sdk import (
    APIConfig,
    AsyncKernel,
    AsyncSession,
    ConsoleItem,
    ExecutionTimeoutError,
    InputRequest,
    Kernel,
    OutputEvent,
    ProgramError,
    ResultEvent,
    Session,
)

#: Prints its own clock every 500 ms: each line must arrive before the next is printed.
TICKS = 5
TICKER = (
    "import time\n"
    f"for i in range({TICKS}):\n"
    "    print(i, repr(time.time()), flush=True)\n"
    "    time.sleep(0.5)\n"
)
#: How late a line may reach the caller (the issue asks for 100 ms on the local gateway).
LATENESS = 0.1
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TRANSPORTS = ("websocket", "http")


def assert_live(arrivals: list[tuple[float, str]]) -> None:
    """Each line arrived within LATENESS of being printed, and before the next was printed."""
    lines = "".join(text for _at, text in arrivals).splitlines()
    assert [int(line.split()[0]) for line in lines] == list(range(TICKS)), arrivals
    printed = [float(line.split()[1]) for line in lines]
    # Items of one line may be split; a line arrives with the item holding its end.
    ends = [at for at, text in arrivals for _ in range(text.count("\n"))]
    for index, (at, when) in enumerate(zip(ends, printed, strict=True)):
        assert at - when < LATENESS, f"line {index} arrived {at - when:.3f} s after it was printed"
        if index + 1 < len(printed):
            assert at < printed[index + 1], (
                f"line {index} arrived after line {index + 1} was printed"
            )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_each_line_reaches_on_output_before_the_next_is_printed(
    sorna_session: Session, transport: Any
) -> None:
    arrivals: list[tuple[float, str]] = []

    def on_output(item: ConsoleItem) -> None:
        arrivals.append((time.time(), item.text))

    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        result = kern.run(TICKER, on_output=on_output, transport=transport)
    assert result.status == "finished" and result.exit_code == 0
    assert_live(arrivals)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_async_callbacks_are_awaited_as_lines_arrive(
    sorna_async_session: AsyncSession, transport: Any
) -> None:
    arrivals: list[tuple[float, str]] = []

    async def on_output(item: ConsoleItem) -> None:
        arrivals.append((time.time(), item.text))

    kern = await AsyncKernel.get_or_create("python3", session=sorna_async_session)
    try:
        result = await kern.run(TICKER, on_output=on_output, transport=transport)
    finally:
        await kern.destroy()
    assert result.stdout.count("\n") == TICKS
    assert_live(arrivals)


def test_stream_events_with_input(sorna_session: Session) -> None:
    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        kinds: list[str] = []
        with kern.stream('print("hello", input("name? "))') as live:
            for event in live:
                kinds.append(event.kind)
                if isinstance(event, InputRequest):
                    assert event.prompt == "name? "
                    event.reply("Bob")
        assert live.transport == "websocket"
        assert kinds == ["output", "input", "output", "result"]
        assert live.result is not None and live.result.stdout == "name? hello Bob\n"


async def test_async_stream_events(sorna_async_session: AsyncSession) -> None:
    kern = await AsyncKernel.get_or_create("python3", session=sorna_async_session)
    try:
        events = [event async for event in kern.stream("print(1)\nprint(2)")]
    finally:
        await kern.destroy()
    assert isinstance(events[-1], ResultEvent) and events[-1].result.stdout == "1\n2\n"
    texts = [event.item.text for event in events if isinstance(event, OutputEvent)]
    assert "".join(texts) == "1\n2\n"


def test_sorna_run_prints_each_line_as_it_is_printed(sorna_config: APIConfig) -> None:
    env = {
        **os.environ,
        "SORNA_ENDPOINT": sorna_config.endpoint,
        "SORNA_ACCESS_KEY": sorna_config.access_key,
        "SORNA_SECRET_KEY": sorna_config.secret_key,
    }
    command = [sys.executable, "-m", "sorna_sdk.cli", "run", "python3", "-c", TICKER]
    with subprocess.Popen(command, stdout=subprocess.PIPE, env=env, text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        arrivals = [(time.time(), line) for line in proc.stdout]
        assert proc.wait(30) == 0
    # Each line within LATENESS of its print, as through the API (start-up is not counted).
    assert_live_pace(arrivals)
    assert_live(arrivals)


def assert_live_pace(arrivals: list[tuple[float, str]]) -> None:
    printed = [float(line.split()[1]) for _at, line in arrivals]
    assert len(printed) == TICKS
    for index in range(TICKS - 1):
        assert arrivals[index][0] < printed[index + 1], f"line {index} came after the next"


def test_a_plot_comes_back_as_a_png(sorna_session: Session, tmp_path: Path) -> None:
    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        if kern.run("import matplotlib").error is not None:
            pytest.skip("matplotlib is not installed in the gateway's Python")
        result = kern.run("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()")
    (image,) = result.images
    assert image.mime_type == "image/png"
    written = image.save(tmp_path / "plot.png")
    assert written.read_bytes().startswith(PNG_SIGNATURE)


def test_figures_as_svg_and_the_last_value(sorna_session: Session) -> None:
    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        value = kern.run("x = 20\nx + 22", last_value=True).last_value
        assert value is not None and value.text == "42"
        if kern.run("import matplotlib").error is not None:
            pytest.skip("matplotlib is not installed in the gateway's Python")
        code = "import matplotlib.pyplot as plt\nplt.plot([1, 2])"  # left open: sent at the end
        result = kern.run(code, figure_formats=["svg"])
    (image,) = result.images
    assert image.mime_type == "image/svg+xml" and b"<svg" in image.bytes()


@pytest.mark.parametrize("lang", ["python3", "nodejs", "lua5", "bash"])
def test_errors_are_structured(sorna_session: Session, lang: str) -> None:
    code = {
        "python3": "1/0",
        "nodejs": "null.x",
        "lua5": "error('boom')",
        "bash": "echo oops >&2; exit 3",
    }[lang]
    with Kernel.get_or_create(lang, session=sorna_session) as kern:
        result = kern.run(code, on_output=lambda item: None)
    error = result.error
    assert error is not None, result
    expected = {
        "python3": "ZeroDivisionError",
        "nodejs": "TypeError",
        "lua5": "LuaError",
        "bash": "NonZeroExit",
    }[lang]
    assert error.name == expected, error
    if lang == "python3":
        assert error.value == "division by zero"
        assert error.traceback[0].startswith("Traceback") and len(error.traceback) >= 2
    with pytest.raises(ProgramError) as caught:
        result.raise_for_error()
    assert caught.value.result is result


def test_catch_an_error_and_retry(sorna_session: Session) -> None:
    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        with pytest.raises(ProgramError) as caught:
            kern.run("import json\njson.loads('{bad')").raise_for_error()
        assert caught.value.name == "JSONDecodeError"
        assert (
            kern.run("print(json.loads('{\"ok\": 1}'))").raise_for_error().stdout == "{'ok': 1}\n"
        )


@pytest.mark.parametrize("transport", ["auto", "http"])
def test_a_deadline_fires_on_time_and_the_kernel_stays_usable(
    sorna_session: Session, transport: Any
) -> None:
    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        start = time.monotonic()
        with pytest.raises(ExecutionTimeoutError) as caught:
            kern.run(
                "print('start', flush=True)\nimport time\ntime.sleep(30)",
                timeout=2,
                transport=transport,
            )
        elapsed = time.monotonic() - start
        assert 2.0 <= elapsed < 2.3, elapsed
        assert caught.value.result.stdout.startswith("start\n")
        assert caught.value.timeout == 2
        assert kern.run("print(1)").stdout == "1\n"


def test_execute_timeout(sorna_session: Session) -> None:
    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        start = time.monotonic()
        with pytest.raises(ExecutionTimeoutError):
            kern.execute("import time\ntime.sleep(30)", timeout=1)
        assert 1.0 <= time.monotonic() - start < 1.2
        assert kern.execute("print(2)").stdout == "2\n"


async def test_async_deadline(sorna_async_session: AsyncSession) -> None:
    kern = await AsyncKernel.get_or_create("python3", session=sorna_async_session)
    try:
        start = time.monotonic()
        with pytest.raises(ExecutionTimeoutError):
            await kern.run("import time\ntime.sleep(30)", timeout=2)
        assert 2.0 <= time.monotonic() - start < 2.3
        start = time.monotonic()
        with pytest.raises(ExecutionTimeoutError):
            await kern.execute("import time\ntime.sleep(30)", timeout=1)
        assert 1.0 <= time.monotonic() - start < 1.2
        assert (await kern.run("print(1)")).stdout == "1\n"
    finally:
        await kern.destroy()


DROPPER = (
    "import time\nfor i in range(12):\n    print(f'line {i}', flush=True)\n    time.sleep(0.1)\n"
)
EXPECTED = "".join(f"line {i}\n" for i in range(12))


def test_a_dropped_websocket_is_resumed_without_loss_or_repeats(sorna_session: Session) -> None:
    with Kernel.get_or_create("python3", session=sorna_session) as kern:
        texts: list[str] = []
        dropped = False
        with kern.stream(DROPPER, transport="websocket") as live:
            for event in live:
                if isinstance(event, OutputEvent):
                    texts.append(event.item.text)
                    if len(texts) == 3 and not dropped:
                        dropped = True
                        assert live._ws is not None
                        live._ws.socket.shutdown(socket.SHUT_RDWR)  # the connection is lost
        assert live.result is not None
        assert "".join(texts) == EXPECTED
        assert live.result.stdout == EXPECTED


async def test_a_dropped_async_websocket_is_resumed(sorna_async_session: AsyncSession) -> None:
    kern = await AsyncKernel.get_or_create("python3", session=sorna_async_session)
    try:
        texts: list[str] = []
        async with kern.stream(DROPPER, transport="websocket") as live:
            async for event in live:
                if isinstance(event, OutputEvent):
                    texts.append(event.item.text)
                    if len(texts) == 3:
                        assert live._ws is not None
                        live._ws.transport.abort()
        assert "".join(texts) == EXPECTED
    finally:
        await kern.destroy()


class DropOnce(httpx.HTTPTransport):
    """Forwards requests; the answer to the third execute is lost after the server sent it."""

    def __init__(self) -> None:
        super().__init__()
        self.executes = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path.count("/") == 3:
            self.executes += 1
            if self.executes == 3:
                response.read()
                response.close()
                raise httpx.ReadError("connection reset by peer", request=request)
        return response


def test_a_dropped_long_poll_is_resumed_without_loss_or_repeats(sorna_config: APIConfig) -> None:
    dropper = DropOnce()
    with (
        Session(sorna_config, transport=dropper) as session,
        Kernel.get_or_create("python3", session=session) as kern,
    ):
        texts: list[str] = []
        result = kern.run(DROPPER, on_output=lambda item: texts.append(item.text), transport="http")
    assert dropper.executes >= 4
    assert "".join(texts) == EXPECTED and result.stdout == EXPECTED
