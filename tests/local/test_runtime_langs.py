"""Lua, bash and Node.js kernels, and batch mode, on real driver processes."""

from __future__ import annotations

import shutil

import pytest

from sorna_sdk.local.runtime.registry import KernelRegistry, LocalKernel

from .helpers import run, text

BATCH_ALL = {"build": "*", "buildLog": True, "exec": "*"}


async def kernel_for(registry: KernelRegistry, lang: str) -> LocalKernel:
    kernel, _ = await registry.get_or_create("owner", "token-1234", lang)
    return kernel


async def test_lua_print_state_errors_and_input(registry: KernelRegistry) -> None:
    lua = await kernel_for(registry, "lua")
    assert lua.lang == "lua5"
    assert text(await run(lua, "x = 41\nprint('hi', 1, nil)\nio.write('w', 2, '\\n')")) == (
        "hi\t1\tnil\nw2\n"
    )
    (result,) = await run(lua, "x = x + 1 print(x, _VERSION) error('boom')")
    assert text([result]) == "42\tLua 5.4\n"
    assert text([result], "stderr").startswith("<input>:1: boom")
    (syntax,) = await run(lua, "x = ")
    assert "<input>:1:" in text([syntax], "stderr")
    waiting = await lua.execute("query", "local s = io.read() print('got ' .. s)", None)
    assert waiting["status"] == "waiting-input"
    assert text([await lua.execute("query", "yo", None)]) == "got yo\n"
    (exiting,) = await run(lua, "os.exit(1)")
    assert "disabled" in text([exiting], "stderr")
    assert text(await run(lua, "print(x)")) == "42\n"


async def test_bash_runs_in_workdir(registry: KernelRegistry) -> None:
    bash = await kernel_for(registry, "shell")
    assert bash.lang == "bash"
    (result,) = await run(bash, "echo hi; pwd; echo oops >&2; echo saved > f.txt")
    assert result["status"] == "finished"
    assert text([result]) == f"hi\n{bash.workdir}\n"
    assert text([result], "stderr") == "oops\n"
    assert text(await run(bash, "cat f.txt")) == "saved\n"
    results = await run(bash, "for i in 1 2 3; do echo $i; sleep 0.3; done")
    assert results[0]["status"] == "continued"
    assert text(results) == "1\n2\n3\n"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_nodejs_state_input_and_errors(registry: KernelRegistry) -> None:
    node = await kernel_for(registry, "javascript")
    assert node.lang == "nodejs"
    (first,) = await run(node, "let x = 41; console.log('a'); console.error('b'); console.log('c')")
    assert first["console"] == [["stdout", "a\n"], ["stderr", "b\n"], ["stdout", "c\n"]]
    assert text(await run(node, "x += 1; console.log(x)")) == "42\n"
    waiting = await node.execute("query", "const s = input('Name? '); console.log('hi ' + s)", None)
    assert waiting["status"] == "waiting-input"
    assert waiting["console"] == [["stdout", "Name? "]]
    assert text([await node.execute("query", "Ann", None)]) == "hi Ann\n"
    (err,) = await run(node, "function f() { throw new Error('bad') }\nf()")
    assert "Error: bad" in text([err], "stderr")
    (exiting,) = await run(node, "process.exit(1)")
    assert "disabled" in text([exiting], "stderr")
    assert text(await run(node, "console.log(x)")) == "42\n"


async def test_batch_build_then_exec(registry: KernelRegistry) -> None:
    py = await kernel_for(registry, "python3")
    await py.upload([("main.py", b"print('main ran')\n")])
    opts = {"build": "echo building; echo warn >&2", "buildLog": True, "exec": "*"}
    built = await run(py, "", "batch", opts)
    assert built[-1]["status"] == "build-finished"
    assert text(built) == "building\n"
    assert text(built, "stderr") == "warn\n"
    ran = await run(py, "", "batch", opts)
    assert ran[-1]["status"] == "finished"
    assert text(ran) == "main ran\n"
    assert ran[-1]["options"] == {"exitCode": 0}
    assert py.info()["numQueriesExecuted"] == 1


async def test_batch_without_build_and_hidden_log(registry: KernelRegistry) -> None:
    py = await kernel_for(registry, "python3")
    await py.upload([("main.py", b"import sys; print('out'); sys.exit(4)\n")])
    direct = await run(py, "", "batch", {"build": None, "exec": "*"})
    assert direct[-1]["status"] == "finished"
    assert text(direct) == "out\n"
    assert direct[-1]["options"] == {"exitCode": 4}
    quiet = await run(py, "", "batch", {"build": "echo noisy", "buildLog": False, "exec": "echo x"})
    assert quiet[-1]["status"] == "build-finished"
    assert text(quiet) == ""
    assert text(await run(py, "", "batch", None)) == "x\n"
    failed = await run(py, "", "batch", {"build": "exit 2", "exec": "echo never"})
    assert failed[-1]["status"] == "finished"
    assert "[build failed: exit code 2]" in text(failed, "stderr")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
async def test_batch_makefile_and_lua_default(registry: KernelRegistry) -> None:
    lua = await kernel_for(registry, "lua5")
    await lua.upload(
        [
            ("Makefile", b"all:\n\techo made > made.txt\n"),
            ("main.lua", b"local f = io.open('made.txt') print('lua says ' .. f:read('l'))\n"),
        ]
    )
    built = await run(lua, "", "batch", BATCH_ALL)
    assert built[-1]["status"] == "build-finished"
    ran = await run(lua, "", "batch", BATCH_ALL)
    assert text(ran) == "lua says made\n"


async def test_other_languages_complete_empty(registry: KernelRegistry) -> None:
    lua = await kernel_for(registry, "lua5")
    result = await lua.execute("complete", "pri", {"row": 0, "col": 3, "line": "pri", "post": ""})
    assert result["console"] == [["completion", []]]
