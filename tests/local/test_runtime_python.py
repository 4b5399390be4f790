"""Python kernels on real driver processes: state, streams, input, continued chains, helpers."""

from __future__ import annotations

import asyncio
import base64

import pytest

from sorna_sdk.local._http.sorna_v2 import render_info
from sorna_sdk.local._runtime.errors import InvalidParameters, UnknownLanguage
from sorna_sdk.local._runtime.registry import KernelRegistry, LocalKernel

from .helpers import run, text


@pytest.fixture
async def py(registry: KernelRegistry) -> LocalKernel:
    kernel, created = await registry.get_or_create("owner", "token-1234", "python")
    assert created
    return kernel


async def test_state_persists(py: LocalKernel) -> None:
    await run(py, "x = 41")
    await run(py, "x += 1")
    results = await run(py, "print(x)")
    assert results[-1].status == "finished"
    assert text(results) == "42\n"


async def test_stream_order_and_os_system(py: LocalKernel) -> None:
    code = (
        "import os, sys\n"
        "print('a'); print('b', file=sys.stderr); print('c')\n"
        "os.system('echo from-shell; echo shell-err >&2')\n"
        "print('d')\n"
    )
    (result,) = await run(py, code)
    assert result.status == "finished"
    assert result.console[:2] == [["stdout", "a\n"], ["stderr", "b\n"]]
    # Raw-pipe output (os.system) lands after the framed output that preceded it.
    assert text([result]) == "a\nc\nfrom-shell\nd\n"
    assert text([result], "stderr") == "b\nshell-err\n"


async def test_input_getpass_and_stdin(py: LocalKernel) -> None:
    code = (
        "import getpass, sys\n"
        "name = input('Name? ')\n"
        "pw = getpass.getpass()\n"
        "line = sys.stdin.readline()\n"
        "print('hello', name, len(pw), repr(line))\n"
    )
    first = await py.execute("query", code, None)
    assert first.status == "waiting-input"
    assert first.options == {"is_password": False}
    assert first.console == [["stdout", "Name? "]]
    second = await py.execute("query", "Bob", None)
    assert second.status == "waiting-input"
    assert second.options == {"is_password": True}
    third = await py.execute("query", "secret", None)
    assert third.status == "waiting-input"
    last = await py.execute("query", "raw line", None)
    assert last.status == "finished"
    assert text([last]) == "hello Bob 6 'raw line\\n'\n"


async def test_continued_chain_is_complete_and_ordered(py: LocalKernel) -> None:
    code = (
        "import time\n"
        "for i in range(10000):\n"
        "    print(f'line {i}')\n"
        "    if i % 100 == 99:\n"
        "        time.sleep(0.05)\n"
    )
    results = await run(py, code)
    statuses = [r.status for r in results]
    assert statuses.count("continued") >= 3
    assert statuses[-1] == "finished"
    assert text(results) == "".join(f"line {i}\n" for i in range(10000))


async def test_backpressure_returns_early_without_loss(py: LocalKernel) -> None:
    results = await run(py, "print('x' * 5_000_000)")
    assert results[0].status == "continued"
    assert len(text(results[:1])) <= 2 * 1024 * 1024
    assert text(results) == "x" * 5_000_000 + "\n"


async def test_traceback_is_cut_and_exit_is_caught(py: LocalKernel) -> None:
    (result,) = await run(py, "def f():\n    return 1 / 0\nf()\n")
    err = text([result], "stderr")
    assert result.status == "finished"
    assert err.startswith('Traceback (most recent call last):\n  File "<input>", line 3')
    assert "ZeroDivisionError" in err
    assert "python_driver" not in err and "<string>" not in err
    (syntax,) = await run(py, "def (")
    assert "SyntaxError" in text([syntax], "stderr")
    await run(py, "import sys; sys.exit(3)")
    await run(py, "exit()")
    assert text(await run(py, "print('alive')")) == "alive\n"


async def test_rich_output_helper(py: LocalKernel) -> None:
    code = (
        "sorna.display_html('<b>hi</b>')\n"
        "import sorna_display\n"
        "sorna_display.display_media('image/png', b'\\x89PNG')\n"
        "sorna.display_media('image/svg+xml', '<svg/>')\n"
        "sorna.log('note')\n"
    )
    (result,) = await run(py, code)
    assert result.console == [
        ["html", "<b>hi</b>"],
        ["media", ["image/png", base64.b64encode(b"\x89PNG").decode()]],
        ["media", ["image/svg+xml", "<svg/>"]],
        ["log", "note"],
    ]


async def test_complete_uses_kernel_namespace(py: LocalKernel) -> None:
    await run(py, "my_special_value = 1\nimport os")
    result = await py.execute("complete", "", {"row": 0, "col": 6, "line": "my_spe", "post": ""})
    assert result.console == [["completion", ["my_special_value"]]]
    attrs = await py.execute("complete", "os.pa", {"row": 0, "col": 5, "line": "os.pa", "post": ""})
    assert "os.path" in attrs.console[0][1]


async def test_empty_code_while_idle_and_bad_params(py: LocalKernel) -> None:
    idle = await py.execute("query", "", None)
    assert (idle.status, idle.console, idle.options, idle.files) == ("finished", [], None, [])
    with pytest.raises(InvalidParameters):
        await py.execute("shell", "print(1)", None)
    with pytest.raises(InvalidParameters):
        await py.execute("query", 5, None)  # type: ignore[arg-type]


async def test_output_files_are_listed(py: LocalKernel) -> None:
    (result,) = await run(py, "open('.output/plot.txt', 'w').write('x')\nopen('other.txt', 'w')")
    assert result.files == ["plot.txt"]
    (again,) = await run(py, "print(1)")
    assert again.files == []


async def test_concurrent_executes_are_serialized(py: LocalKernel) -> None:
    code_a = "import time\nfor i in range(5):\n    print('a', i); time.sleep(0.02)"
    code_b = "print('b')"
    first, second = await asyncio.gather(
        py.execute("query", code_a, None), py.execute("query", code_b, None)
    )
    assert first.status == "finished"
    assert text([first]) == "".join(f"a {i}\n" for i in range(5))
    assert text([second]) == "b\n"


async def test_info_has_real_figures(py: LocalKernel) -> None:
    await run(py, "x = sum(range(3_000_000))")
    info = py.info()
    assert info.lang == "python3" and info.kernel_id == py.kernel_id
    assert info.queries == 1
    assert info.memory_used_kib > 1000
    assert info.cpu_used_ms > 0
    assert info.age_ms >= info.idle_ms >= 0
    assert info.idle_timeout_ms == 600_000
    assert info.state == "idle"
    # The Sorna dialect renders the ten fields of spec §5.2 from it.
    assert set(render_info(info)) == {
        "lang",
        "age",
        "queryTimeout",
        "idleTimeout",
        "memoryLimit",
        "maxCpuCredit",
        "numQueriesExecuted",
        "idle",
        "memoryUsed",
        "cpuCreditUsed",
    }


async def test_unknown_language_names_available(registry: KernelRegistry) -> None:
    with pytest.raises(UnknownLanguage) as info:
        await registry.get_or_create("owner", "token-1234", "cobol")
    assert "python3" in info.value.title and "lua5" in info.value.title
    assert info.value.status == 400


async def test_non_ascii_through_frames_and_raw_pipes(py: LocalKernel) -> None:
    code = "import os\nprint('héllo ✓')\nos.system(\"printf 'caf\\\\303\\\\251\\\\n'\")"
    (result,) = await run(py, code)
    assert text([result]) == "héllo ✓\ncafé\n"


async def test_raw_pipe_backpressure_keeps_everything(py: LocalKernel) -> None:
    results = await run(py, "import os\nos.system('yes 0123456789 | head -c 3000000')")
    assert len(results) >= 2
    assert text(results) == ("0123456789\n" * 300000)[:3000000]


async def test_interrupt_raises_keyboard_interrupt(py: LocalKernel) -> None:
    first = await py.execute("query", "import time\nx = 5\ntime.sleep(30)", None)
    assert first.status == "continued"
    await py.interrupt()
    rest = await run(py, "")
    assert rest[-1].status == "interrupted"
    assert "KeyboardInterrupt" in text(rest, "stderr")
    assert text(await run(py, "print(x)")) == "5\n"
