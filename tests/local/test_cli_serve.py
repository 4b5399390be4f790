"""``python -m sorna_sdk.local serve``: the export lines, signals, no orphans, the key file."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sorna_sdk._constants import API_VERSION
from sorna_sdk.auth import HMACAuth
from sorna_sdk.local._cli import main

from .helpers import kernel_processes
from .test_server_gateway import process_alive

REPO = Path(__file__).resolve().parents[2]
EXPORTS = re.compile(
    r"export SORNA_ENDPOINT=(http://127\.0\.0\.1:\d+)\n"
    r"export SORNA_ACCESS_KEY=(\S+)\n"
    r"export SORNA_SECRET_KEY=(\S+)\n"
)


class Served:
    """A running ``serve`` subprocess and what it printed."""

    def __init__(
        self,
        tmp_path: Path,
        *args: str,
        env_extra: dict[str, str] | None = None,
        exports: re.Pattern[str] = EXPORTS,
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SORNA_")}
        env.update(XDG_CONFIG_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(REPO))
        env.update(env_extra or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sorna_sdk.local", *args, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        try:
            self.stdout = self._read_exports(timeout=30)
            match = exports.fullmatch(self.stdout)
            assert match, self.stdout
        except BaseException:
            self.proc.kill()
            self.proc.communicate(timeout=30)
            raise
        self.endpoint, self.access_key, self.secret_key = match.groups()

    def _read_exports(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        data = b""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            while data.count(b"\n") < 3 and time.monotonic() < deadline:
                if selector.select(timeout=deadline - time.monotonic()):
                    chunk = os.read(self.proc.stdout.fileno(), 4096)
                    if not chunk:
                        break
                    data += chunk
        return data.decode()

    def client(self) -> httpx.Client:
        auth = HMACAuth(self.access_key, self.secret_key, version=API_VERSION)
        return httpx.Client(base_url=self.endpoint, auth=auth, timeout=30)

    def stop(self, signum: int) -> tuple[int, str, str]:
        """Send ``signum``; return the exit code and the rest of stdout and stderr."""
        self.proc.send_signal(signum)
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out.decode(), err.decode()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = Served(tmp_path, "serve")
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.communicate(timeout=30)


def test_serve_prints_exports_serves_and_ends_every_kernel(served: Served, tmp_path: Path) -> None:
    with served.client() as http:
        authorized = http.request("GET", "/v2/authorize", json={"echo": "cli"})
        assert authorized.status_code == 200
        assert authorized.json() == {"authorized": "yes", "echo": "cli"}
        made = http.post(
            "/v2/kernel/create", json={"lang": "python3", "clientSessionToken": "cli-token-1"}
        )
        assert made.status_code == 201
        code = (
            "import os, subprocess\n"
            "child = subprocess.Popen(['sleep', '300'])\n"
            "print(os.getpid(), child.pid)\n"
        )
        ran = http.post(
            f"/v2/kernel/{made.json()['kernelId']}", json={"mode": "query", "code": code}
        )
    # Under the sandbox kernel code sees namespace pids: find the processes from outside.
    assert len(ran.json()["result"]["console"][0][1].split()) == 2
    running = kernel_processes(made.json()["kernelId"])
    assert len(running) >= 2  # the driver and its child (plus a supervisor or bwrap)
    assert all(process_alive(pid) for pid in running)

    status, rest_of_stdout, stderr = served.stop(signal.SIGTERM)
    assert status == 0
    assert rest_of_stdout == ""  # logs go to stderr only
    assert served.secret_key not in stderr
    deadline = time.monotonic() + 10
    while any(process_alive(pid) for pid in running) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(process_alive(pid) for pid in running)

    key_file = tmp_path / "xdg" / "sorna-sdk" / "local-keypair.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert json.loads(key_file.read_text()) == {
        "access_key": served.access_key,
        "secret_key": served.secret_key,
    }


def test_keys_are_reused_and_sigint_stops(tmp_path: Path) -> None:
    first = Served(tmp_path, "serve")
    assert first.stop(signal.SIGINT)[0] == 0
    second = Served(tmp_path)  # no subcommand means serve
    try:
        assert (second.access_key, second.secret_key) == (first.access_key, first.secret_key)
        with second.client() as http:
            assert http.request("GET", "/v2/authorize", json={}).status_code == 200
    finally:
        assert second.stop(signal.SIGINT)[0] == 0


def test_explicit_keys_skip_the_key_file(tmp_path: Path) -> None:
    served = Served(tmp_path, "serve", "--access-key", "AKIATESTKEY", "--secret-key", "s3cret")
    try:
        assert (served.access_key, served.secret_key) == ("AKIATESTKEY", "s3cret")
        with served.client() as http:
            assert http.request("GET", "/v2/authorize", json={}).status_code == 200
    finally:
        assert served.stop(signal.SIGTERM)[0] == 0
    assert not (tmp_path / "xdg").exists()


def test_half_a_keypair_is_refused(tmp_path: Path) -> None:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path), PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-m", "sorna_sdk.local", "serve", "--access-key", "AKIAONLY"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "secret key" in done.stderr


def test_main_returns_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "serve" in capsys.readouterr().out
    assert main(["serve", "--port", "not-a-port"]) == 2
    assert "--port" in capsys.readouterr().err
    assert main([]) == 2  # no command: the help, and nothing starts
    shown = capsys.readouterr()
    assert shown.out == "" and "usage: sorna local" in shown.err and "examples:" in shown.err


# -- keys, warnings, the root ---------------------------------------------------------


def run_serve(
    tmp_path: Path, *args: str, env_extra: dict[str, str] | None = None
) -> tuple[int, str]:
    """``serve`` that is expected to fail at once: its exit code and stderr (stdout is empty)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORNA_")}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(REPO), **(env_extra or {}))
    done = subprocess.run(
        [sys.executable, "-m", "sorna_sdk.local", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.stdout == ""
    return done.returncode, done.stderr


def test_secret_key_on_the_command_line_warns(tmp_path: Path) -> None:
    served = Served(tmp_path, "serve", "--access-key", "AKIATESTKEY", "--secret-key", "s3cret-arg")
    status, _out, stderr = served.stop(signal.SIGTERM)
    assert status == 0
    assert (
        "--secret-key is visible to other local users (ps, /proc/<pid>/cmdline): "
        "prefer --secret-key-file or $SORNA_LOCAL_SECRET_KEY"
    ) in stderr
    assert "s3cret-arg" not in stderr


def test_keys_from_the_environment(tmp_path: Path) -> None:
    env = {"SORNA_LOCAL_ACCESS_KEY": "AKIAFROMENV", "SORNA_LOCAL_SECRET_KEY": "env-s3cret"}
    served = Served(tmp_path, "serve", env_extra=env)
    try:
        assert (served.access_key, served.secret_key) == ("AKIAFROMENV", "env-s3cret")
        with served.client() as http:
            assert http.request("GET", "/v2/authorize", json={}).status_code == 200
    finally:
        status, _out, stderr = served.stop(signal.SIGTERM)
    assert status == 0
    assert "env-s3cret" not in stderr
    assert "visible to other local users" not in stderr
    assert "(from environment)" in stderr
    assert not (tmp_path / "xdg").exists()  # no keypair file made
    # The access key from the command line, the secret from the environment.
    mixed = Served(
        tmp_path, "serve", "--access-key", "AKIAMIXED", env_extra={"SORNA_LOCAL_SECRET_KEY": "m1x"}
    )
    try:
        assert (mixed.access_key, mixed.secret_key) == ("AKIAMIXED", "m1x")
    finally:
        assert mixed.stop(signal.SIGTERM)[0] == 0


def test_secret_key_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("file-s3cret\n")
    secret.chmod(0o600)
    served = Served(tmp_path, "serve", "--access-key", "AKIAFILE", "--secret-key-file", str(secret))
    try:
        assert (served.access_key, served.secret_key) == ("AKIAFILE", "file-s3cret")
        with served.client() as http:
            assert http.request("GET", "/v2/authorize", json={}).status_code == 200
    finally:
        status, _out, stderr = served.stop(signal.SIGTERM)
    assert status == 0
    assert "file-s3cret" not in stderr
    secret.chmod(0o640)
    status, stderr = run_serve(
        tmp_path, "--access-key", "AKIAFILE", "--secret-key-file", str(secret)
    )
    assert status == 2
    assert f"permissions 0640 for the secret-key file {secret} are too open" in stderr
    assert "file-s3cret" not in stderr
    status, stderr = run_serve(tmp_path, "--secret-key-file", str(secret), "--secret-key", "x")
    assert status == 2  # one or the other
    assert "not allowed with argument" in stderr


def test_a_keypair_file_others_can_read_is_refused(tmp_path: Path) -> None:
    first = Served(tmp_path, "serve")
    assert first.stop(signal.SIGTERM)[0] == 0
    key_file = tmp_path / "xdg" / "sorna-sdk" / "local-keypair.json"
    key_file.chmod(0o644)
    status, stderr = run_serve(tmp_path)
    assert status == 2
    assert f"permissions 0644 for the keypair file {key_file} are too open" in stderr
    assert f"chmod 600 {key_file}" in stderr
    assert first.secret_key not in stderr


def test_root_is_private_and_a_shared_one_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "kernels"
    served = Served(tmp_path, "serve", "--root", str(root))
    assert served.stop(signal.SIGTERM)[0] == 0
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    root.chmod(0o777)
    status, stderr = run_serve(tmp_path, "--root", str(root))
    assert status == 1
    assert "cannot start the gateway" in stderr
    assert "writable by group or others (mode 0777)" in stderr


def test_a_non_loopback_host_warns_of_plain_http(tmp_path: Path) -> None:
    anywhere = re.compile(EXPORTS.pattern.replace(r"127\.0\.0\.1", r"0\.0\.0\.0"))
    served = Served(tmp_path, "serve", "--host", "0.0.0.0", exports=anywhere)  # noqa: S104
    status, _out, stderr = served.stop(signal.SIGTERM)
    assert status == 0
    assert "serving plain HTTP on http://0.0.0.0:" in stderr
    assert "requests are signed, not encrypted" in stderr
    local = Served(tmp_path, "serve")
    status, _out, stderr = local.stop(signal.SIGTERM)
    assert "plain HTTP" not in stderr


def test_help_documents_key_sources(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    for needle in (
        "--secret-key-file PATH",
        "$SORNA_LOCAL_ACCESS_KEY",
        "$SORNA_LOCAL_SECRET_KEY",
        "other local users can see it in ps",
        "examples:",
        "sorna local serve --access-key AKIAEXAMPLE --secret-key-file",
        "--sandbox {auto,bwrap,none}",
        "--kernel-network",
        "--max-connections N",
        "--header-timeout S",
    ):
        assert needle in out
