"""Checked by ``mypy --strict`` and ``pyright`` (strict) in ``make typecheck``: typos and
mode mistakes in execute/run options and in APIConfig keywords fail type checking.

Not run by pytest. Each ``# type: ignore[...]`` line is a negative check: mypy's
``warn_unused_ignores`` and pyright's ``reportUnnecessaryTypeIgnoreComment`` (an error in
pyrightconfig.json) both fail the check if the line ever type-checks.
"""

from __future__ import annotations

from typing_extensions import assert_type

from sorna_sdk import APIConfig, AsyncKernel, ExecutionResult, Kernel
from sorna_sdk.models import BatchOptions, BatchOptionsDict, CompleteOptionsDict


def execute_options(kern: Kernel) -> None:
    assert_type(kern.execute("print(1)"), ExecutionResult)
    kern.execute("", "batch", {"build": "*", "exec": "python3 main.py"})
    kern.execute(mode="batch", opts={"build": None, "buildLog": False, "exec": "*"})
    kern.execute("", mode="batch", opts=BatchOptions(build="make"))
    kern.execute("impo", mode="complete", opts={"row": 0, "col": 4})
    kern.execute("", mode="batch", opts={"biuld": "make"})  # type: ignore[call-overload]
    kern.execute("impo", mode="complete", opts={"row": "0"})  # type: ignore[call-overload]
    kern.execute("x", mode="query", opts={"build": "*"})  # type: ignore[call-overload]
    kern.execute("x", mode="interactive")  # type: ignore[call-overload]


def run_options(kern: Kernel) -> None:
    opts: BatchOptionsDict = {"build": "*", "exec": "*"}
    assert_type(kern.run("", mode="batch", opts=opts), ExecutionResult)
    complete: CompleteOptionsDict = {"row": 0, "col": 4, "line": "impo"}
    kern.run("impo", mode="complete", opts=complete)
    kern.run("", mode="batch", opts={"exce": "*"})  # type: ignore[call-overload]
    kern.run("", mode="batch", opts=opts, last_value=True)  # type: ignore[call-overload]
    kern.run("print(1)", opts={"build": "*"})  # type: ignore[call-overload]
    kern.run("print(input())", input="Bob")  # a str is one line per prompt, documented
    kern.run("print(input())", input=["Bob"])


async def async_options(kern: AsyncKernel) -> None:
    assert_type(await kern.execute("", mode="batch", opts={"build": "*"}), ExecutionResult)
    await kern.execute("", mode="batch", opts={"biuld": "*"})  # type: ignore[call-overload]
    await kern.run("", mode="batch", opts={"exce": "*"})  # type: ignore[call-overload]


def config_keywords() -> None:
    config = APIConfig("ak", "sk", endpoint="http://127.0.0.1:8081", timeout=5.0)
    assert_type(config.replace(timeout=None), APIConfig)
    assert_type(APIConfig.from_env(timeout=5.0, max_retries=0), APIConfig)
    APIConfig(access_key="ak")  # type: ignore[call-arg]
    APIConfig("ak", "sk", timout=5)  # type: ignore[call-arg]
    APIConfig.from_env(timout=5)  # type: ignore[call-arg]
    config.replace(max_retrys=3)  # type: ignore[call-arg]
    config.replace(timeout="5")  # type: ignore[arg-type]
