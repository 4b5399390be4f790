"""Checked by ``mypy --strict`` in ``make test``: the public API used as an application would.

Not run by pytest; it only has to type-check. The README's examples are here verbatim
(import path aside), plus ``assert_type`` checks of the precise types users get.
"""

from __future__ import annotations

import asyncio
from typing import Any

from typing_extensions import assert_type

from sorna_sdk import (
    AsyncKernel,
    AsyncSession,
    ConsoleItem,
    ExecutionResult,
    Kernel,
    KernelInfo,
    KernelNotFoundError,
    Session,
    SornaError,
)
from sorna_sdk.models import ConsoleKind, ExecutionStatus


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
    assert_type(result["console"], list[list[Any]])
    assert_type(result.console, list[ConsoleItem])
    assert_type(result.console[0].type, ConsoleKind)
    assert_type(result["status"], ExecutionStatus)
    assert_type(result.status, ExecutionStatus)
    assert_type(result["options"], dict[str, Any] | None)
    assert_type(result["files"], list[Any])
    assert_type(info["numQueriesExecuted"], int)
    assert_type(info.num_queries_executed, int)
    assert_type(info["lang"], str)
    kind, data = result.console[0]
    assert_type(kind, ConsoleKind)
    assert_type(data, Any)


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


if __name__ == "__main__":
    readme_sync()
    asyncio.run(readme_async())
