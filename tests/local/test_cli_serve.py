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
from sorna_sdk.local.cli import main

from .test_server_gateway import process_alive

REPO = Path(__file__).resolve().parents[2]
EXPORTS = re.compile(
    r"export SORNA_ENDPOINT=(http://127\.0\.0\.1:\d+)\n"
    r"export SORNA_ACCESS_KEY=(\S+)\n"
    r"export SORNA_SECRET_KEY=(\S+)\n"
)


class Served:
    """A running ``serve`` subprocess and what it printed."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SORNA_")}
        env.update(XDG_CONFIG_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sorna_sdk.local", *args, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        try:
            self.stdout = self._read_exports(timeout=30)
            match = EXPORTS.fullmatch(self.stdout)
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
    driver, grandchild = (int(pid) for pid in ran.json()["result"]["console"][0][1].split())
    assert process_alive(driver)
    assert process_alive(grandchild)

    status, rest_of_stdout, stderr = served.stop(signal.SIGTERM)
    assert status == 0
    assert rest_of_stdout == ""  # logs go to stderr only
    assert served.secret_key not in stderr
    deadline = time.monotonic() + 10
    while (process_alive(driver) or process_alive(grandchild)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(driver)
    assert not process_alive(grandchild)

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
