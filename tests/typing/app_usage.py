"""Checked by ``mypy --strict`` in ``make test``: the public API used as an application would.

Not run by pytest; it only has to type-check. The README's examples are here verbatim
(import path aside), plus ``assert_type`` checks of the precise types users get.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from typing_extensions import assert_type

from sorna_sdk import (
    AsyncKernel,
    AsyncSession,
    ConsoleItem,
    DestroyResult,
    ExecutionResult,
    FileList,
    Kernel,
    KernelInfo,
    KernelNotFoundError,
    SchedulingFailedError,
    Session,
    SessionEvent,
    SessionInfo,
    SessionStatus,
    SornaError,
)
from sorna_sdk.models import (
    ConsoleKind,
    CreateStatus,
    ExecutionStatus,
    FileEntry,
    ResultFile,
    ResultOptions,
    WireConsoleData,
)


def readme_sync() -> None:
    kern = Kernel.get_or_create("lua5", client_token="abc-session")
    result = kern.execute('print("hello world")', mode="query")
    print(result["console"])
    kern.destroy()


async def readme_async() -> None:
    kern = await AsyncKernel.get_or_create("lua5", client_token="abc-session")
    result = await kern.execute('print("hello world")', mode="query")
    print(result["console"])
    await kern.destroy()


def precise_types(result: ExecutionResult, info: KernelInfo) -> None:
    assert_type(result["console"], list[list[WireConsoleData]])
    assert_type(result.console, list[ConsoleItem])
    assert_type(result.console[0].type, ConsoleKind)
    assert_type(result["status"], ExecutionStatus)
    assert_type(result.status, ExecutionStatus)
    assert_type(result["options"], ResultOptions | None)
    assert_type(result["files"], list[ResultFile])
    assert_type(info["numQueriesExecuted"], int)
    assert_type(info.num_queries_executed, int)
    assert_type(info["lang"], str)
    item = result.console[0]
    kind, data = item  # the old pair still unpacks, typed per position
    assert_type(kind, ConsoleKind)
    assert_type(data, str | tuple[str, str] | list[str] | dict[str, str])
    # Narrowing by kind: tests/typing/console_items.py.
    assert_type(item.text, str)
    assert_type(item.bytes(), bytes)


def with_sessions() -> None:
    with Session() as session, Kernel.get_or_create("python3", session=session) as kern:
        merged = kern.run("print(input())", input=["hi"])
        assert_type(merged, ExecutionResult)
        assert_type(kern.get_info(), KernelInfo)
        try:
            kern.restart()
        except KernelNotFoundError as exc:
            assert_type(exc.status, int)
        except SornaError:
            raise


async def with_async_sessions() -> None:
    async with AsyncSession() as session:
        kern = await AsyncKernel.get_or_create("python3", session=session)
        async with kern:
            result = await kern.execute("1 + 1")
            assert_type(result, ExecutionResult)


def backendai_types(kern: Kernel) -> None:
    assert_type(kern.status, CreateStatus | None)
    assert_type(kern.list_files("."), FileList)
    assert_type(kern.list_files(".").files, list[FileEntry])
    assert_type(kern.complete("impo", row=0, col=4).suggestions, list[str])
    assert_type(kern.download(["a.txt"], "out"), list[Path])
    assert_type(kern.download_single("a.txt"), bytes)
    assert_type(kern.logs(), str)
    assert_type(kern.interrupt(), None)
    assert_type(kern.destroy(forced=True), DestroyResult | None)
    info = kern.get_info()
    if isinstance(info, SessionInfo):
        assert_type(info.status, SessionStatus | None)
    with kern.events() as events:
        for event in events:
            assert_type(event, SessionEvent)
            assert_type(event.session_id, str | None)
    with kern.stream_execute("print(1)") as stream:
        for frame in stream:
            assert_type(frame, ExecutionResult)
        assert_type(stream.result(input=["x"]).exit_code, int | None)
    try:
        Kernel.get_or_create(image="python:3.11-debian12", max_wait=30, resources={"cpu": 1})
    except SchedulingFailedError as exc:
        assert_type(exc.retry_after, float | None)


async def backendai_async_types(kern: AsyncKernel) -> None:
    assert_type(await kern.list_files(), FileList)
    assert_type(await kern.logs(), str)
    async with kern.events() as events:
        async for event in events:
            assert_type(event, SessionEvent)
    async with await kern.stream_execute("print(1)") as stream:
        assert_type(await stream.result(), ExecutionResult)


if __name__ == "__main__":
    readme_sync()
    asyncio.run(readme_async())
