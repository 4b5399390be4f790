"""Rich output and structured errors of the drivers (issue 10's driver side).

Real drivers, started and driven frame by frame as the conformance test does (through
``DriverLauncher`` and ``DriverProcess``, below the kernel's run semantics): matplotlib figures,
``display()``, the ``lastValue`` option's ``result`` item, and the ``error`` object of a failed
run's ``finished`` in python3, nodejs and lua5.
"""

from __future__ import annotations

import base64
import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sorna_sdk.local._runtime.limits import RuntimeSettings
from sorna_sdk.local._runtime.pool import DriverLauncher
from sorna_sdk.local._runtime.process import DriverProcess, Item
from sorna_sdk.local._runtime.protocol import RunErrorData, exec_data, finished_error

from .test_driver_conformance import exchange, finished, record, start, text

pytestmark = pytest.mark.timeout(30)

needs_mpl = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None,
    reason="matplotlib is not installed (pip install 'sorna-sdk[plots]')",
)

PNG = b"\x89PNG\r\n\x1a\n"
PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\n"
#: A class with every rich representation (and one with each alone).
REPRS = """
class Rich:
    def __init__(self, *kinds):
        self.kinds = kinds
    def __repr__(self):
        return 'Rich' + repr(self.kinds)
    def __getattr__(self, name):
        kind = name[len('_repr_'):-1] if name.startswith('_repr_') else ''
        if kind not in self.kinds:
            raise AttributeError(name)
        data = {'png': b'\\x89PNG\\r\\n\\x1a\\nfake', 'svg': '<svg>s</svg>', 'html': '<b>h</b>'}
        return lambda: data[kind]
"""


@pytest.fixture
async def launcher(tmp_path: Path) -> AsyncIterator[DriverLauncher]:
    started = DriverLauncher(RuntimeSettings(root=tmp_path, pool_size=0))
    yield started
    await started.close()


@pytest.fixture
async def kernel(
    request: pytest.FixtureRequest, launcher: DriverLauncher, tmp_path: Path
) -> AsyncIterator[DriverProcess]:
    lang = getattr(request, "param", "python3")
    proc = await start(launcher, record(lang).name, tmp_path)
    yield proc
    await proc.close(grace=1.0)


async def run(
    proc: DriverProcess, code: str, **options: Any
) -> tuple[list[Item], dict[str, Any] | None]:
    """Run code (the object form when there are options); its items and ``finished`` data."""
    items, control = await exchange(proc, "exec", exec_data(code, options))
    finished(control, items)
    return items, control.data


def media(items: list[Item]) -> list[tuple[str, str]]:
    return [(i.data[0], i.data[1]) for i in items if i.kind == "media"]


def rich(items: list[Item]) -> list[tuple[str, Any]]:
    """The items that are not console text."""
    return [(i.kind, i.data) for i in items if i.kind not in ("stdout", "stderr")]


def error_of(data: dict[str, Any] | None) -> RunErrorData:
    error = finished_error(data)
    assert error is not None, data
    return error


# ---- matplotlib ------------------------------------------------------------------------------


@needs_mpl
async def test_pyplot_show_sends_each_figure_as_png_and_closes_it(kernel: DriverProcess) -> None:
    items, data = await run(
        kernel, PLOT + "plt.figure()\nplt.plot([3, 2])\nplt.show()\nprint('after')"
    )
    assert data is None
    found = media(items)
    assert [mime for mime, _ in found] == ["image/png", "image/png"]
    assert all(base64.b64decode(b64).startswith(PNG) for _, b64 in found)
    assert [i.kind for i in items][-1] == "stdout" and text(items) == "after\n"  # in order
    items, _ = await run(kernel, "print(plt.get_fignums())")  # closed
    assert text(items) == "[]\n"
    assert media(items) == []


@needs_mpl
async def test_the_backend_is_agg_and_matplotlib_is_imported_only_when_used(
    kernel: DriverProcess,
) -> None:
    items, _ = await run(
        kernel, "import os, sys\nprint(os.environ['MPLBACKEND'], 'matplotlib' in sys.modules)"
    )
    assert text(items) == "Agg False\n"
    items, _ = await run(kernel, "import matplotlib\nprint(matplotlib.get_backend().lower())")
    assert text(items) == "agg\n"


@needs_mpl
async def test_figure_formats_svg_and_both(kernel: DriverProcess) -> None:
    items, _ = await run(kernel, PLOT + "plt.show()", figureFormats=["svg"])
    [(mime, svg)] = media(items)
    assert mime == "image/svg+xml" and "<svg" in svg
    items, _ = await run(kernel, PLOT + "plt.show()", figureFormats=["png", "svg"])
    assert [mime for mime, _ in media(items)] == ["image/png", "image/svg+xml"]
    items, _ = await run(kernel, PLOT + "plt.show()", figureFormats=["gif"])  # none known: png
    assert [mime for mime, _ in media(items)] == ["image/png"]


@needs_mpl
async def test_a_figure_still_open_at_the_end_of_a_run_is_sent_once(kernel: DriverProcess) -> None:
    items, data = await run(kernel, PLOT + "print('drawn')")
    assert data is None
    assert [i.kind for i in items] == ["stdout", "media"]
    assert base64.b64decode(media(items)[0][1]).startswith(PNG)
    items, _ = await run(kernel, "print(plt.get_fignums())")
    assert text(items) == "[]\n" and media(items) == []
    items, data = await run(kernel, PLOT + "1 / 0")  # a failed run shows its figures too
    assert error_of(data)["name"] == "ZeroDivisionError"
    assert len(media(items)) == 1


@needs_mpl
async def test_display_of_a_figure_is_not_sent_again_at_the_end(kernel: DriverProcess) -> None:
    items, _ = await run(kernel, PLOT + "display(plt.gcf())\nprint('shown')")
    assert [i.kind for i in items] == ["media", "stdout"]
    items, _ = await run(kernel, PLOT + "plt.gcf()", lastValue=True)
    [(kind, bundle)] = rich(items)
    assert kind == "result" and bundle["text/plain"].startswith("<Figure")
    assert base64.b64decode(bundle["image/png"]).startswith(PNG)


# ---- display() -------------------------------------------------------------------------------


async def test_display_sends_the_richest_representation(kernel: DriverProcess) -> None:
    items, data = await run(
        kernel,
        REPRS + "display(Rich('png', 'svg', 'html'))\ndisplay(Rich('svg', 'html'))\n"
        "sorna.display(Rich('html'))\ndisplay(Rich(), [1])\n",
    )
    assert data is None
    assert rich(items) == [
        ("media", ["image/png", base64.b64encode(PNG + b"fake").decode()]),
        ("media", ["image/svg+xml", "<svg>s</svg>"]),
        ("html", "<b>h</b>"),
    ]
    assert text(items) == "Rich()\n[1]\n"


async def test_display_raw_mime_bundles(kernel: DriverProcess) -> None:
    code = (
        "display({'text/plain': 'p', 'image/png': b'\\x89PNG', 'text/html': '<i>'}, raw=True)\n"
        "display({'image/svg+xml': b'<svg/>'}, raw=True)\n"
        "display({'text/html': '<i>i</i>', 'text/plain': 'p'}, raw=True)\n"
        "display({'image/png': 'aGk='}, raw=True)\n"
        "display({'text/plain': 'plain'}, raw=True)\n"
    )
    items, data = await run(kernel, code)
    assert data is None
    assert rich(items) == [
        ("media", ["image/png", base64.b64encode(b"\x89PNG").decode()]),
        ("media", ["image/svg+xml", "<svg/>"]),
        ("html", "<i>i</i>"),
        ("media", ["image/png", "aGk="]),
    ]
    assert text(items) == "plain\n"
    _, data = await run(kernel, "display('not a bundle', raw=True)")
    assert error_of(data)["name"] == "TypeError"


async def test_the_old_display_api_still_works(kernel: DriverProcess) -> None:
    items, _ = await run(
        kernel,
        "import sorna_display\nsorna.display_media('image/png', b'\\x89PNG')\n"
        "sorna_display.display_html('<b>x</b>')\nsorna.log('line')",
    )
    assert rich(items) == [
        ("media", ["image/png", base64.b64encode(b"\x89PNG").decode()]),
        ("html", "<b>x</b>"),
        ("log", "line"),
    ]


# ---- lastValue -------------------------------------------------------------------------------


async def test_last_value_sends_a_result_bundle(kernel: DriverProcess) -> None:
    items, data = await run(kernel, "x = 20\nprint('p')\nx * 2 + 2", lastValue=True)
    assert data is None
    assert [(i.kind, i.data) for i in items] == [
        ("stdout", "p\n"),
        ("result", {"text/plain": "42"}),
    ]
    items, _ = await run(kernel, "print(x)")  # the statements before it ran in the namespace
    assert text(items) == "20\n"
    items, _ = await run(kernel, REPRS + "Rich('png', 'svg', 'html')", lastValue=True)
    [(kind, bundle)] = rich(items)
    assert kind == "result"
    assert bundle == {
        "text/plain": "Rich('png', 'svg', 'html')",
        "image/png": base64.b64encode(PNG + b"fake").decode(),
        "image/svg+xml": "<svg>s</svg>",
        "text/html": "<b>h</b>",
    }


async def test_no_result_without_the_option_a_last_expression_or_a_value(
    kernel: DriverProcess,
) -> None:
    for code, options in (
        ("1 + 1", {}),
        ("1 + 1", {"lastValue": False}),
        ("y = 1 + 1", {"lastValue": True}),
        ("None", {"lastValue": True}),
        ("print('v')", {"lastValue": True}),  # its value is None
        ("", {"lastValue": True}),
    ):
        items, data = await run(kernel, code, **options)
        assert data is None, code
        assert rich(items) == [], (code, options)
    _, data = await run(kernel, "x = (", lastValue=True)
    assert error_of(data)["name"] == "SyntaxError"
    _, data = await run(kernel, "1\nundefined_name", lastValue=True)
    assert error_of(data)["name"] == "NameError"


# ---- errors ----------------------------------------------------------------------------------


async def test_python_error_object_is_the_real_exception(kernel: DriverProcess) -> None:
    items, data = await run(kernel, "def f():\n    return 1 / 0\n\nf()")
    assert data is not None and data["exitCode"] == 1
    error = error_of(data)
    assert (error["name"], error["value"]) == ("ZeroDivisionError", "division by zero")
    lines = error["traceback"]
    assert lines[0] == "Traceback (most recent call last):\n"
    assert lines[-1] == "ZeroDivisionError: division by zero\n"
    assert 'File "<input>", line 4, in <module>' in lines[1]
    assert 'File "<input>", line 2, in f' in lines[2]
    assert len(lines) == 4  # no frame of the driver
    assert "".join(lines) == text(items, "stderr")


async def test_python_syntax_error_and_exits(kernel: DriverProcess) -> None:
    items, data = await run(kernel, "if True print(1)")
    error = error_of(data)
    assert error["name"] == "SyntaxError" and "<input>" in error["value"]
    assert error["traceback"][-1].startswith("SyntaxError: ")
    assert "".join(error["traceback"]) == text(items, "stderr")
    _, data = await run(kernel, "import sys\nsys.exit(4)")
    assert data == {"exitCode": 4}
    _, data = await run(kernel, "raise SystemExit")
    assert data is None
    _, data = await run(
        kernel, "class Odd(Exception):\n    def __str__(self): raise ValueError\nraise Odd"
    )
    assert error_of(data)["name"] == "Odd"


@pytest.mark.parametrize("kernel", ["nodejs"], indirect=True)
async def test_node_error_objects(kernel: DriverProcess) -> None:
    items, data = await run(kernel, "throw new TypeError('x')")
    assert data is not None and data["exitCode"] == 1
    error = error_of(data)
    assert (error["name"], error["value"]) == ("TypeError", "x")
    # err.stack as node decorates a script's error: where it was thrown, then name: message.
    assert "TypeError: x\n" in error["traceback"]
    assert error["traceback"][-1] == "    at <input>:1:7\n"  # no frame of the driver
    assert "".join(error["traceback"]) == text(items, "stderr")
    # A rejection the run awaits (top-level await is not a script's: an async function's).
    _, data = await run(kernel, "(async () => { await Promise.reject(new RangeError('y')); })()")
    error = error_of(data)
    assert (error["name"], error["value"]) == ("RangeError", "y")
    assert error["traceback"][0] == "RangeError: y\n"
    _, data = await run(kernel, "throw 'plain'")
    assert error_of(data) == {
        "name": "Error",
        "value": "plain",
        "traceback": ["Uncaught 'plain'\n"],
    }
    _, data = await run(kernel, "const a = ;")
    assert error_of(data)["name"] == "SyntaxError"


@pytest.mark.parametrize("kernel", ["lua5"], indirect=True)
async def test_lua_error_objects(kernel: DriverProcess) -> None:
    items, data = await run(kernel, "error('boom')")
    error = error_of(data)
    assert (error["name"], error["value"]) == ("LuaError", "<input>:1: boom")
    assert "stack traceback:\n" in error["traceback"]
    assert "".join(error["traceback"]) == text(items, "stderr")
    _, data = await run(kernel, "x = = 1")
    error = error_of(data)
    assert error["name"] == "LuaError" and "unexpected symbol" in error["value"]


@pytest.mark.parametrize("kernel", ["bash"], indirect=True)
async def test_bash_reports_an_exit_code_only(kernel: DriverProcess) -> None:
    _, data = await run(kernel, "echo no >&2; exit 2")
    assert data == {"exitCode": 2}


@needs_mpl
async def test_plots_under_the_sandbox_print_no_warnings(tmp_path: Path) -> None:
    from sorna_sdk.local._runtime.registry import KernelRegistry
    from sorna_sdk.local._runtime.sandbox import bwrap_problem

    problem = bwrap_problem()
    if problem is not None:
        pytest.skip(problem)
    settings = RuntimeSettings(root=tmp_path / "kernels", pool_size=0, sandbox="bwrap")
    registry = KernelRegistry(settings)
    await registry.start()
    try:
        sandboxed, _ = await registry.get_or_create("ak", "plot-sandboxed", "python3")
        results = [
            await sandboxed.execute(
                "query", "import matplotlib.pyplot as p\np.plot([1])\np.show()", None
            )
        ]
        while results[-1].status == "continued":
            results.append(await sandboxed.execute("query", "", None))
        kinds = [kind for r in results for kind, _ in r.console]
        stderr = "".join(d for r in results for k, d in r.console if k == "stderr")
        assert kinds == ["media"], stderr  # no "not a writable directory" warning
    finally:
        await registry.close()
