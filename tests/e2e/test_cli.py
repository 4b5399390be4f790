"""The ``sorna`` command through subprocesses against the test gateway."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sorna_sdk import APIConfig
from sorna_sdk.cli import main

SORNA = [sys.executable, "-m", "sorna_sdk.cli"]
#: The line every run prints on stderr once its kernel exists.
KERNEL_LINE = re.compile(r"sorna: (kernel|attached to) ([0-9a-f]{32}) \((\S+)\)\n")


@pytest.fixture
def env(sorna_config: APIConfig) -> dict[str, str]:
    return {
        **os.environ,
        "SORNA_ENDPOINT": sorna_config.endpoint,
        "SORNA_ACCESS_KEY": sorna_config.access_key,
        "SORNA_SECRET_KEY": sorna_config.secret_key,
    }


def sorna(
    env: dict[str, str], *args: str, stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SORNA, *args], input=stdin, capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )


def test_run_asks_for_input_and_prints_the_answer(env: dict[str, str]) -> None:
    done = sorna(env, "run", "python3", "-c", 'print(input("name? "))', stdin="Bob\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "name? Bob\n"
    # Not a terminal: no progress line, only the kernel's id.
    assert KERNEL_LINE.fullmatch(done.stderr), done.stderr


def test_run_separates_streams_and_fails_on_exceptions(env: dict[str, str]) -> None:
    done = sorna(env, "run", "python3", "-c", "import sys\nprint('out')\n1/0")
    assert done.returncode == 1
    assert done.stdout == "out\n"
    assert "ZeroDivisionError" in done.stderr
    assert sorna(env, "run", "python3", "-c", "raise SystemExit(7)").returncode == 7
    assert sorna(env, "run", "bash", "-c", "echo hi; exit 3").returncode == 3


def test_run_follows_continued_results(env: dict[str, str]) -> None:
    code = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(1.2)"
    done = sorna(env, "run", "python3", "-c", code)
    assert done.returncode == 0
    assert done.stdout == "0\n1\n2\n"


def test_run_json_and_token_reuse_then_info_and_destroy(env: dict[str, str]) -> None:
    token = ["-t", "cli-token-123"]
    first = sorna(env, "run", "python3", *token, "-c", "x = 41", "--json")
    assert first.returncode == 0, first.stderr
    kernel_id = json.loads(first.stdout)["kernelId"]
    second = sorna(env, "run", "python3", *token, "--json", "-c", "print(x + 1)")
    result = json.loads(second.stdout)
    assert result["kernelId"] == kernel_id
    assert result["status"] == "finished"
    assert result["console"] == [["stdout", "42\n"]]
    info = sorna(env, "info", kernel_id, "--json")
    assert json.loads(info.stdout)["numQueriesExecuted"] == 2
    plain = sorna(env, "info", kernel_id)
    assert "numQueriesExecuted" in plain.stdout
    assert sorna(env, "destroy", kernel_id).returncode == 0
    gone = sorna(env, "info", kernel_id)
    assert gone.returncode == 1
    assert gone.stderr.count("\n") == 1 and "sorna: error: 404" in gone.stderr


def test_run_files_in_batch_mode(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("import helper\nprint(helper.VALUE)\n")
    (tmp_path / "helper.py").write_text("VALUE = 'from a file'\n")
    done = sorna(env, "run", "python3", "main.py", "helper.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "from a file\n"
    built = sorna(
        env, "run", "bash", "main.py", "--build", "echo compiling", "--exec", "echo ran",
        cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0
    assert built.stdout == "compiling\nran\n"
    assert "build finished" in built.stderr
    quiet = sorna(env, "run", "bash", "main.py", "--build", "true", "-q", cwd=tmp_path)
    assert "build finished" not in quiet.stderr


def test_exec_timeout_exits_124(env: dict[str, str]) -> None:
    done = sorna(env, "run", "python3", "--exec-timeout", "1", "-c", "while True: pass")
    assert done.returncode == 124
    assert "execution time limit" in done.stderr
    assert "Traceback" not in done.stderr


def test_errors_are_one_line(env: dict[str, str]) -> None:
    missing = {k: v for k, v in env.items() if k != "SORNA_SECRET_KEY"}
    done = sorna(missing, "run", "python3", "-c", "print(1)")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "sorna: error: the environment variable SORNA_SECRET_KEY is not set; "
        "export it (sorna local serve prints the SORNA_* exports of a local gateway; "
        "see sorna --help)"
    ]
    unknown = sorna(env, "run", "cobol", "-c", "x")
    assert unknown.returncode == 1 and len(unknown.stderr.splitlines()) == 1
    assert "python3" in unknown.stderr
    eof = sorna(env, "run", "python3", "-c", "input()")
    assert eof.returncode == 1
    assert (
        KERNEL_LINE.sub("", eof.stderr).strip()
        == "sorna: error: the program asked for input, but standard input is closed"
    )
    usage = sorna(env, "run", "python3")
    assert usage.returncode == 1 and "either -c CODE or one or more FILEs" in usage.stderr
    assert env["SORNA_SECRET_KEY"] not in done.stderr + unknown.stderr + eof.stderr


def test_local_serve_is_reachable_through_sorna(env: dict[str, str]) -> None:
    done = sorna(env, "local", "serve", "--help")
    assert done.returncode == 0
    assert "--port" in done.stdout


def test_the_first_file_is_run_unless_exec_says_otherwise(
    env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "other.py").write_text("import helper\nprint('other', helper.VALUE)\n")
    (tmp_path / "main.py").write_text("print('main')\n")
    (tmp_path / "helper.py").write_text("VALUE = 1\n")
    (tmp_path / "fail.py").write_text("raise SystemExit(5)\n")
    (tmp_path / "run.sh").write_text("echo from-bash; exit 3\n")
    done = sorna(env, "run", "python3", "other.py", "helper.py", "main.py", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "other 1\n"), done.stderr
    assert sorna(env, "run", "python3", "main.py", "other.py", cwd=tmp_path).stdout == "main\n"
    assert sorna(env, "run", "python3", "fail.py", cwd=tmp_path).returncode == 5
    bash = sorna(env, "run", "bash", "run.sh", cwd=tmp_path)
    assert (bash.returncode, bash.stdout) == (3, "from-bash\n")
    # --exec (before or after the files) says what runs.
    chosen = sorna(env, "run", "python3", "--exec", "echo chosen", "other.py", cwd=tmp_path)
    assert (chosen.returncode, chosen.stdout) == (0, "chosen\n"), chosen.stderr
    star = sorna(env, "run", "python3", "other.py", "main.py", "--exec", "*", cwd=tmp_path)
    assert star.stdout == "main\n"  # '*': the language's default, main.py
    unknown = sorna(env, "run", "cobol", "prog.cob", cwd=tmp_path)
    assert unknown.returncode == 1 and "prog.cob does not exist" in unknown.stderr


def test_a_lua_file_runs_in_the_kernel_s_lua(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "other.lua").write_text('print("lua " .. _VERSION)\n')
    (tmp_path / "bad.lua").write_text('error("boom")\n')
    done = sorna(env, "run", "lua5", "other.lua", cwd=tmp_path)
    if "not available" in done.stderr:
        pytest.skip("lupa is not installed")
    assert (done.returncode, done.stdout) == (0, "lua Lua 5.4\n"), done.stderr
    bad = sorna(env, "run", "lua5", "bad.lua", cwd=tmp_path)
    assert bad.returncode == 1 and "boom" in bad.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_failed_nodejs_runs_exit_non_zero(env: dict[str, str], tmp_path: Path) -> None:
    thrown = sorna(env, "run", "nodejs", "-c", "throw new Error('bad')")
    assert thrown.returncode == 1 and "Error: bad" in thrown.stderr
    exited = sorna(env, "run", "nodejs", "--json", "-c", "console.log('a'); process.exit(4)")
    assert exited.returncode == 4
    result = json.loads(exited.stdout)
    assert result["exitCode"] == 4 and result["console"] == [["stdout", "a\n"]]
    assert result.get("error") is None  # an exit status, as Python's SystemExit: no error object
    assert sorna(env, "run", "nodejs", "-c", "process.exitCode = 3").returncode == 3
    assert sorna(env, "run", "nodejs", "-c", "process.exit()").returncode == 0
    assert sorna(env, "run", "nodejs", "-c", "console.log(1)").returncode == 0
    (tmp_path / "app.js").write_text("console.log('file'); process.exit(6)\n")
    ran = sorna(env, "run", "nodejs", "app.js", cwd=tmp_path)
    assert (ran.returncode, ran.stdout) == (6, "file\n")


def test_the_kernel_id_is_printed_on_stderr(env: dict[str, str]) -> None:
    done = sorna(env, "run", "python3", "--json", "-c", "print(1)")
    found = KERNEL_LINE.fullmatch(done.stderr)
    assert found is not None, done.stderr
    assert found.group(1, 3) == ("kernel", "python3")
    assert found.group(2) == json.loads(done.stdout)["kernelId"]
    token = ["-t", "cli-token-ids"]
    first = KERNEL_LINE.fullmatch(sorna(env, "run", "python3", *token, "-c", "1").stderr)
    again = KERNEL_LINE.fullmatch(sorna(env, "run", "python3", *token, "-c", "1").stderr)
    assert first is not None and again is not None
    assert again.group(1, 2) == ("attached to", first.group(2))
    assert sorna(env, "destroy", first.group(2)).returncode == 0
    quiet = sorna(env, "run", "python3", "-q", "-c", "print(1)")
    assert quiet.stderr == ""


def test_errors_speak_of_the_command_line(env: dict[str, str], tmp_path: Path) -> None:
    inside = tmp_path / "here"
    inside.mkdir()
    (tmp_path / "outside.py").write_text("print(1)\n")
    done = sorna(env, "run", "python3", "../outside.py", cwd=inside)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("sorna: error: ../outside.py is outside the current folder")
    assert "cd to a folder that contains every FILE" in line
    assert "base_dir" not in line and "APIConfig" not in line
    missing = sorna(env, "run", "python3", "nope.py", cwd=inside)
    assert missing.stderr == "sorna: error: nope.py does not exist\n"  # before any kernel
    no_key = {k: v for k, v in env.items() if k != "SORNA_SECRET_KEY"}
    unset = sorna(no_key, "info", "x")
    assert "APIConfig" not in unset.stderr and "export it" in unset.stderr


def test_sorna_local_alone_prints_help_and_exits_2(env: dict[str, str]) -> None:
    done = sorna(env, "local")
    assert done.returncode == 2
    assert "usage: sorna local" in done.stderr and "serve" in done.stderr
    assert done.stdout == ""  # nothing started: no exports


def help_of(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    """``sorna COMMAND --help`` in this process (argparse exits 0 after printing)."""
    status: str | int | None
    try:
        status = main([*command, "--help"])
    except SystemExit as exc:
        status = exc.code
    assert status == 0
    return capsys.readouterr().out


def test_every_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    commands = [[], ["run"], ["shell"], ["info"], ["destroy"], ["version"], ["local"]]
    for command in [*commands, ["local", "serve"]]:
        text = help_of(capsys, *command)
        assert "example" in text, (command, text)
        assert "(default: None)" not in text and "(default: False)" not in text


def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    run = help_of(capsys, "run")
    assert re.search(r"--exec-timeout S\s+.*\(default:\s+0", run)
    assert "default: run the first FILE" in " ".join(run.split())
    serve = " ".join(help_of(capsys, "local", "serve").split())
    for default in ("(default: 8081)", "(default: 600)", "(default: info)", "(default: 1)"):
        assert default in serve
