"""The ``sorna`` command through subprocesses against the test gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sorna_sdk import APIConfig

SORNA = [sys.executable, "-m", "sorna_sdk.cli"]


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
    assert done.stderr == ""  # not a terminal: no progress line


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
        "export it or pass the key to APIConfig() directly"
    ]
    unknown = sorna(env, "run", "cobol", "-c", "x")
    assert unknown.returncode == 1 and len(unknown.stderr.splitlines()) == 1
    assert "python3" in unknown.stderr
    eof = sorna(env, "run", "python3", "-c", "input()")
    assert eof.returncode == 1
    assert (
        eof.stderr.strip()
        == "sorna: error: the program asked for input, but standard input is closed"
    )
    usage = sorna(env, "run", "python3")
    assert usage.returncode == 1 and "either -c CODE or one or more FILEs" in usage.stderr
    assert env["SORNA_SECRET_KEY"] not in done.stderr + unknown.stderr + eof.stderr


def test_local_serve_is_reachable_through_sorna(env: dict[str, str]) -> None:
    done = sorna(env, "local", "serve", "--help")
    assert done.returncode == 0
    assert "--port" in done.stdout
