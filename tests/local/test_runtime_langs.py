"""Lua, bash and Node.js kernels, and batch mode, on real driver processes; the language
records (``languages.py``) and what is derived from them."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from sorna_sdk.local._runtime import languages
from sorna_sdk.local._runtime.batch import BatchPlan, plan, plan_batch
from sorna_sdk.local._runtime.errors import InvalidParameters, UnknownLanguage
from sorna_sdk.local._runtime.languages import (
    FRAMING,
    LANGUAGES,
    BatchDefaults,
    Language,
    available_languages,
    canonical_language,
    driver_argv,
    python_driver_source,
    resolve_image,
)
from sorna_sdk.local._runtime.registry import KernelRegistry, LocalKernel

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
    assert waiting.status == "waiting-input"
    assert text([await lua.execute("query", "yo", None)]) == "got yo\n"
    (exiting,) = await run(lua, "os.exit(1)")
    assert "disabled" in text([exiting], "stderr")
    assert text(await run(lua, "print(x)")) == "42\n"


async def test_bash_runs_in_workdir(registry: KernelRegistry) -> None:
    bash = await kernel_for(registry, "shell")
    assert bash.lang == "bash"
    (result,) = await run(bash, "echo hi; pwd; echo oops >&2; echo saved > f.txt")
    assert result.status == "finished"
    assert text([result]) == f"hi\n{bash.workdir}\n"
    assert text([result], "stderr") == "oops\n"
    assert text(await run(bash, "cat f.txt")) == "saved\n"
    results = await run(bash, "for i in 1 2 3; do echo $i; sleep 0.3; done")
    assert results[0].status == "continued"
    assert text(results) == "1\n2\n3\n"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_nodejs_state_input_and_errors(registry: KernelRegistry) -> None:
    node = await kernel_for(registry, "javascript")
    assert node.lang == "nodejs"
    (first,) = await run(node, "let x = 41; console.log('a'); console.error('b'); console.log('c')")
    assert first.console == [["stdout", "a\n"], ["stderr", "b\n"], ["stdout", "c\n"]]
    assert text(await run(node, "x += 1; console.log(x)")) == "42\n"
    waiting = await node.execute("query", "const s = input('Name? '); console.log('hi ' + s)", None)
    assert waiting.status == "waiting-input"
    assert waiting.console == [["stdout", "Name? "]]
    assert text([await node.execute("query", "Ann", None)]) == "hi Ann\n"
    (err,) = await run(node, "function f() { throw new Error('bad') }\nf()")
    assert "Error: bad" in text([err], "stderr")
    (exiting,) = await run(node, "process.exit(4)")
    assert exiting.exit_code == 4 and exiting.error is None  # the run ends, not the kernel
    assert text(await run(node, "console.log(x)")) == "42\n"


async def test_batch_build_then_exec(registry: KernelRegistry) -> None:
    py = await kernel_for(registry, "python3")
    await py.upload([("main.py", b"print('main ran')\n")])
    opts = {"build": "echo building; echo warn >&2", "buildLog": True, "exec": "*"}
    built = await run(py, "", "batch", opts)
    assert built[-1].status == "build-finished"
    assert text(built) == "building\n"
    assert text(built, "stderr") == "warn\n"
    ran = await run(py, "", "batch", opts)
    assert ran[-1].status == "finished"
    assert text(ran) == "main ran\n"
    assert ran[-1].options == {"exitCode": 0}
    assert py.info().queries == 1


async def test_batch_without_build_and_hidden_log(registry: KernelRegistry) -> None:
    py = await kernel_for(registry, "python3")
    await py.upload([("main.py", b"import sys; print('out'); sys.exit(4)\n")])
    direct = await run(py, "", "batch", {"build": None, "exec": "*"})
    assert direct[-1].status == "finished"
    assert text(direct) == "out\n"
    assert direct[-1].options == {"exitCode": 4}
    quiet = await run(py, "", "batch", {"build": "echo noisy", "buildLog": False, "exec": "echo x"})
    assert quiet[-1].status == "build-finished"
    assert text(quiet) == ""
    assert text(await run(py, "", "batch", None)) == "x\n"
    failed = await run(py, "", "batch", {"build": "exit 2", "exec": "echo never"})
    assert failed[-1].status == "finished"
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
    assert built[-1].status == "build-finished"
    ran = await run(lua, "", "batch", BATCH_ALL)
    assert text(ran) == "lua says made\n"


async def test_other_languages_complete_empty(registry: KernelRegistry) -> None:
    lua = await kernel_for(registry, "lua5")
    result = await lua.execute("complete", "pri", {"row": 0, "col": 3, "line": "pri", "post": ""})
    assert result.console == [["completion", []]]


# ---- the language records ------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "local-gateway.md"


def test_one_record_per_language_with_unique_names() -> None:
    names = [lang.name for lang in LANGUAGES]
    assert sorted(names) == ["bash", "lua5", "nodejs", "python3"]
    every = [key for lang in LANGUAGES for key in (lang.name, *lang.aliases)]
    assert len(every) == len(set(every))
    assert set(available_languages()) <= set(names)
    assert all(lang.driver_path.is_file() for lang in LANGUAGES)


@pytest.mark.parametrize(
    ("ref", "lang"),
    [
        ("python", "python3"),
        ("python:3", "python3"),
        ("python:latest", "python3"),
        ("python:3.11-debian12", "python3"),
        ("python:3.13-ubuntu24.04", "python3"),
        ("cr.backend.ai/stable/python:3.13-ubuntu24.04", "python3"),
        ("cr.backend.ai/multiarch/python:3.11-ubuntu22.04", "python3"),
        ("CR.BACKEND.AI/Stable/Python:3.13-ubuntu24.04", "python3"),
        ("localhost:5000/python:3.12", "python3"),
        ("python:3.6-ubuntu18.04@x86_64", "python3"),
        ("python@sha256:0123abcd", "python3"),
        ("lablup/kernel-python:3.6-debian", "python3"),
        ("lua:5.4", "lua5"),
        ("cr.backend.ai/stable/lua:5.3-alpine3.8", "lua5"),
        ("nodejs:20", "nodejs"),
        ("node:20-alpine", "nodejs"),
        ("lablup/kernel-nodejs:10", "nodejs"),
        ("bash", "bash"),
        ("docker.io/library/bash:5.2", "bash"),
    ],
)
def test_resolve_image(ref: str, lang: str) -> None:
    if lang not in available_languages():
        pytest.skip(f"{lang} is not available here")
    assert resolve_image(ref) == lang
    assert canonical_language(ref) == lang  # older Backend.AI clients send the image as lang


@pytest.mark.parametrize(
    "ref",
    [
        "python:2.7-ubuntu18.04",
        "python:30",
        "lua:4.0",
        "ubuntu:22.04",
        "cr.backend.ai/stable/python-tensorflow:2.15-py312",
        "nosuch/image:1.0",
        "",
        "/python:3",
        "a//python:3",
    ],
)
def test_resolve_image_refuses_and_lists_the_accepted_images(ref: str) -> None:
    with pytest.raises(UnknownLanguage) as info:
        resolve_image(ref)
    assert info.value.status == 400
    assert (
        "images accepted" in info.value.title and "python3: [<registry>/]python" in info.value.title
    )
    with pytest.raises(UnknownLanguage):
        canonical_language(ref)


def test_an_unavailable_language_says_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    lua = next(lang for lang in LANGUAGES if lang.name == "lua5")
    gone = dataclasses.replace(lua, requires=(languages.module("no_such_module_x"),))
    monkeypatch.setattr(languages, "LANGUAGES", (*LANGUAGES[:1], gone, *LANGUAGES[2:]))
    languages.available_languages.cache_clear()
    try:
        assert "lua5" not in available_languages()
        for name in ("lua", "lua:5.4"):
            with pytest.raises(UnknownLanguage, match="needs the Python module no_such_module_x"):
                canonical_language(name)
    finally:
        monkeypatch.undo()
        languages.available_languages.cache_clear()


def test_driver_command_lines_come_from_the_records() -> None:
    argv = driver_argv("python3", 512 * 1024)
    # The Python driver is a -c source followed by the codec it shares with the gateway.
    assert argv == [sys.executable, "-u", "-c", python_driver_source(), str(FRAMING)]
    assert FRAMING.parent == languages.DRIVERS
    assert "struct" not in python_driver_source()  # no codec of its own
    if "nodejs" in available_languages():
        node = driver_argv("nodejs", 512 * 1024)
        assert node[1] == "--max-old-space-size=512"
        assert node[-1].endswith("node_driver.js")
        assert "--max-old-space-size" not in " ".join(driver_argv("nodejs", 0))


def test_a_pooled_driver_takes_no_limit_flag() -> None:
    with pytest.raises(ValueError, match="pooled"):
        Language(name="x", pooled=True, memory_flag="--heap={mib}")
    with pytest.raises(ValueError, match="interpreter"):
        Language(name="x", driver="x_driver.rb")


def test_docs_list_every_record() -> None:
    section = DOCS.read_text().split("## Languages", 1)[1].split("\n## ", 1)[0]
    for lang in LANGUAGES:
        assert f"| `{lang.name}` |" in section
        for key in (*lang.aliases, *lang.images):
            assert f"`{key}" in section, key


# ---- batch plans: clean, build, exec -----------------------------------------------------------


async def test_plan_clean_is_validated_and_defaults_per_language(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("all:\n")
    options = {"clean": "rm -f *.o", "build": "*", "exec": "*"}
    result = await plan("bash", tmp_path, options)
    assert result == BatchPlan(build="make", exec="bash main.sh", build_log=True, clean="rm -f *.o")
    assert result.steps == [("clean", "rm -f *.o"), ("build", "make"), ("exec", "bash main.sh")]
    assert plan_batch("bash", tmp_path, options) == result
    for lang in LANGUAGES:  # no language has a default clean today: "*" skips the step
        assert (await plan(lang.name, tmp_path, {"clean": "*"})).clean is None
        assert plan_batch(lang.name, tmp_path, {"clean": "*"}).steps == []
    assert BatchPlan(None, None, True).clean is None  # positional construction still works


async def test_plan_clean_default_follows_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bash = next(lang for lang in LANGUAGES if lang.name == "bash")
    rules = BatchDefaults(clean=(("Makefile", "make clean"),), build=bash.batch.build)
    changed = dataclasses.replace(bash, batch=rules)
    monkeypatch.setattr("sorna_sdk.local._runtime.batch.LANGUAGES", (changed,))
    assert (await plan("bash", tmp_path, {"clean": "*"})).clean is None  # no Makefile
    (tmp_path / "Makefile").write_text("clean:\n")
    assert (await plan("bash", tmp_path, {"clean": "*"})).clean == "make clean"


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"clean": "a\x00b"}, "NUL"),
        ({"clean": 3}, "string"),
        ({"clean": "x" * (128 * 1024)}, "too long"),
    ],
)
async def test_plan_rejects_a_bad_clean(
    tmp_path: Path, options: dict[str, Any], needle: str
) -> None:
    with pytest.raises(InvalidParameters, match=f"'clean'.*{needle}|{needle}"):
        await plan("bash", tmp_path, options)
