"""Answers as soon as output is there (``eager``), and a run's answers replayed from an offset
(what lets a client whose connection dropped resume without losing or repeating output)."""

from __future__ import annotations

import time

import pytest

from sorna_sdk.local._runtime import kernel as kernel_module
from sorna_sdk.local._runtime.errors import InvalidParameters
from sorna_sdk.local._runtime.kernel import _run_error
from sorna_sdk.local._runtime.registry import KernelRegistry

from .helpers import text

pytestmark = pytest.mark.timeout(60)

TICKS = "import time\nfor i in range(4):\n    print('tick', i, flush=True)\n    time.sleep(0.3)"


async def test_eager_answers_within_milliseconds_of_output(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("ak", "eager", "python3")
    await kernel.execute("query", "pass", None)  # warm
    began = time.monotonic()
    first = await kernel.execute("query", TICKS, None, eager=True)
    elapsed = time.monotonic() - began
    assert first.status == "continued"
    assert first.console == [["stdout", "tick 0\n"]]
    assert elapsed < 0.25  # the flush window of the fixture is 0.5 s
    answers = [first]
    while answers[-1].status == "continued":
        answers.append(await kernel.execute("query", "", None, eager=True))
    assert text(answers) == "tick 0\ntick 1\ntick 2\ntick 3\n"
    assert len(answers) >= 4  # one answer per line, not one per flush window


async def test_offsets_count_the_runs_items_and_replay_from_any(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("ak", "replay", "python3")
    answers = [await kernel.execute("query", TICKS, None, eager=True)]
    while answers[-1].status == "continued":
        answers.append(await kernel.execute("query", "", None, eager=True))
    expected = 0
    for answer in answers:
        assert answer.offset == expected
        assert answer.run_id == answers[0].run_id
        expected += len(answer.console)
    everything = [item for answer in answers for item in answer.console]
    for offset in range(expected):
        replay = await kernel.execute("query", "", None, offset=offset)
        assert replay.console == everything[offset:]
        assert (replay.status, replay.offset) == ("finished", offset)
    # The caller has it all: nothing is replayed, and the kernel is idle.
    assert (await kernel.execute("query", "", None, offset=expected)).console == []
    with pytest.raises(InvalidParameters, match="answered"):
        await kernel.execute("query", "", None, offset=expected + 1)
    # A new run starts its own count.
    fresh = await kernel.execute("query", "print('new')", None)
    assert (fresh.offset, fresh.console) == (0, [["stdout", "new\n"]])


async def test_replay_of_a_waiting_run_says_it_waits(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("ak", "waits", "python3")
    asked = await kernel.execute("query", "print(input('who? '))", None)
    assert asked.status == "waiting-input"
    replay = await kernel.execute("query", "", None, offset=0)
    assert (replay.status, replay.console) == ("waiting-input", asked.console)
    done = await kernel.execute("query", "ada", None)
    assert done.status == "finished" and done.offset == len(asked.console)


async def test_old_output_beyond_the_cap_is_refused_clearly(
    registry: KernelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kernel_module, "REPLAY_CHARS", 4)
    kernel, _ = await registry.get_or_create("ak", "capped", "python3")
    code = "import sys, time\nfor i in range(3):\n    print(i * 5, flush=True); time.sleep(0.2)"
    answers = [await kernel.execute("query", code, None, eager=True)]
    while answers[-1].status == "continued":
        answers.append(await kernel.execute("query", "", None, eager=True))
    with pytest.raises(InvalidParameters, match="no longer kept"):
        await kernel.execute("query", "", None, offset=0)
    everything = [item for answer in answers for item in answer.console]
    newest = await kernel.execute("query", "", None, offset=len(everything) - 1)
    assert newest.console == everything[-1:] == [["stdout", "10\n"]]


async def test_completions_and_idle_output_do_not_count(registry: KernelRegistry) -> None:
    kernel, _ = await registry.get_or_create("ak", "idle", "python3")
    ran = await kernel.execute("query", "x_value = 1\nprint('a')", None)
    assert (await kernel.execute("complete", "x_va", {"row": 0, "col": 4})).offset == 1
    replay = await kernel.execute("query", "", None, offset=0)
    assert replay.console == ran.console


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"name": "E", "value": "v", "traceback": ["a\n"]},
            {"name": "E", "value": "v", "traceback": ["a\n"]},
        ),
        (
            {"name": "E", "value": "v", "traceback": [1]},
            {"name": "E", "value": "v", "traceback": []},
        ),
        ({"name": "E", "value": "v"}, {"name": "E", "value": "v", "traceback": []}),
        ({"name": 3, "value": "v", "traceback": []}, None),
        ("boom", None),
        (None, None),
    ],
)
def test_a_drivers_error_object_is_checked(data: object, expected: object) -> None:
    assert _run_error(data) == expected
