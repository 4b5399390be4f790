"""Checked by ``mypy --strict`` in ``make test``: live output, stream events, rich results and
run errors are precisely typed (``# type: ignore`` lines are negative checks: with
``warn_unused_ignores`` they fail the check if mypy ever accepts them)."""

from __future__ import annotations

import builtins
from pathlib import Path

from typing_extensions import assert_type

from sorna_sdk import (
    AsyncKernel,
    AsyncLiveRun,
    ConsoleItem,
    ExecutionResult,
    ExecutionTimeoutError,
    InputRequest,
    Kernel,
    LiveEvent,
    LiveRun,
    OutputEvent,
    ProgramError,
    ResultEvent,
    RunError,
)


def sync_usage(kern: Kernel) -> None:
    def on_output(item: ConsoleItem) -> None:
        print(item.text, end="")

    def wrong(item: str) -> None: ...

    result = kern.run("print(1)", on_output=on_output, timeout=5.0, last_value=True)
    assert_type(result, ExecutionResult)
    kern.run("print(1)", on_output=wrong)  # type: ignore[arg-type]
    kern.run("print(1)", figure_formats=["gif"])  # type: ignore[list-item]

    live = kern.stream("print(input())")
    assert_type(live, LiveRun)
    for event in live:
        assert_type(event, LiveEvent)
        if isinstance(event, OutputEvent):
            assert_type(event.item, ConsoleItem)
            assert_type(event.index, int)
        elif isinstance(event, InputRequest):
            assert_type(event.prompt, str)
            assert_type(event.is_password, bool)
            event.reply("42")
        else:
            assert_type(event, ResultEvent)
            assert_type(event.result, ExecutionResult)
    assert_type(live.result, ExecutionResult | None)


def by_kind(event: LiveEvent) -> str:
    if event.kind == "output":
        return "output"
    return event.kind


async def async_usage(kern: AsyncKernel) -> None:
    async def on_output(item: ConsoleItem) -> None:
        print(item.text)

    def also_sync(item: ConsoleItem) -> None: ...

    async def wrong(item: int) -> None: ...

    assert_type(await kern.run("print(1)", on_output=on_output), ExecutionResult)
    assert_type(await kern.run("print(1)", on_output=also_sync), ExecutionResult)
    await kern.run("print(1)", on_output=wrong)  # type: ignore[arg-type]
    live = kern.stream("print(1)")
    assert_type(live, AsyncLiveRun)
    async for event in live:
        assert_type(event, LiveEvent)


def rich_results(result: ExecutionResult, path: Path) -> None:
    assert_type(result.images, list[ConsoleItem])
    assert_type(result.html, list[str])
    assert_type(result.last_value, ConsoleItem | None)
    assert_type(result.error, RunError | None)
    image = result.images[0]
    assert_type(image.mime_type, str | None)
    assert_type(image.bytes(), builtins.bytes)
    assert_type(image.save(path), Path)
    error = result.error
    if error is not None:
        assert_type(error.name, str)
        assert_type(error.traceback, list[str])
    assert_type(result.raise_for_error(), ExecutionResult)


def errors() -> None:
    try:
        pass
    except ProgramError as exc:
        assert_type(exc.result, ExecutionResult)
        assert_type(exc.error, RunError)
        assert_type(exc.traceback, list[str])
    except ExecutionTimeoutError as exc:
        assert_type(exc.result, ExecutionResult)
        assert_type(exc.timeout, float)
