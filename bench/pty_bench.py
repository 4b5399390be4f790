"""PTY benchmarks: throughput and echo latency through gateway + SDK, against a raw local pty.

Both sides run the same bash command on a real pseudo-terminal on this machine, in the same
run: the baseline reads the pty master directly; the SDK side reads ``SyncStreamPty``.
"""

from __future__ import annotations

import os
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from sorna_sdk import APIConfig, Kernel, Session, SyncStreamPty

#: Output of ``yes | head -c N``: N bytes of "y\n", which the tty turns into "y\r\n".
FLOOD = "stty -echo; yes | head -c {n}; echo; echo @@$((40 + 2))@@\n"
MARKER = b"@@42@@"
Send = Callable[[bytes], None]
Read = Callable[[float], bytes]
SHIM = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


class RawPty:
    """bash on a local pseudo-terminal, read with plain blocking os.read: the baseline."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        env = {**os.environ, "TERM": "xterm", "PS1": "$ ", "INPUTRC": "/dev/null"}
        self.proc = subprocess.Popen(
            [sys.executable, "-S", "-c", SHIM, "bash", "--norc", "-i"],
            stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
        )  # fmt: skip
        os.close(slave)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def read(self, timeout: float = 30.0) -> bytes:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            raise TimeoutError
        return os.read(self.master, 65536)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        os.close(self.master)


def _until(read: Read, marker: bytes) -> int:
    received, tail = 0, b""
    while marker not in tail:
        chunk = read(30.0)
        received += len(chunk)
        tail = (tail + chunk)[-64:]
    return received


def throughput(send: Send, read: Read, n: int) -> float:
    """Bytes per second of terminal output for one flood of ``n`` bytes."""
    _settle(send, read)
    start = time.perf_counter()
    send(FLOOD.format(n=n).encode())
    received = _until(read, MARKER + b"\r\n")
    return received / (time.perf_counter() - start)


def echo_latency(send: Send, read: Read, samples: int) -> list[float]:
    """Seconds from typing a character to seeing it echoed, ``samples`` times."""
    _settle(send, read)
    send(b"stty echo\n")
    time.sleep(0.3)
    _drain(read)
    result = []
    for _ in range(samples):
        start = time.perf_counter()
        send(b"x")
        _until(read, b"x")
        result.append(time.perf_counter() - start)
        send(b"\x15")  # Ctrl-U: clear the line again
        _drain(read)
    return result


def _settle(send: Send, read: Read) -> None:
    send(b"echo @@$((1 + 1))@@\n")
    _until(read, b"@@2@@")
    _drain(read)


def _drain(read: Read) -> None:
    while True:
        try:
            read(0.05)
        except TimeoutError:
            return


def run(config: APIConfig, *, n: int, samples: int) -> dict[str, float]:
    raw = RawPty()
    try:
        raw_rate = statistics.median(throughput(raw.send, raw.read, n) for _ in range(3))
        raw_echo = statistics.median(echo_latency(raw.send, raw.read, samples))
    finally:
        raw.close()
    with Session(config) as session, Kernel.get_or_create("bash", session=session) as kern:
        pty: SyncStreamPty
        with kern.stream_pty() as pty:
            sdk_rate = statistics.median(throughput(pty.send, pty.read, n) for _ in range(3))
            sdk_echo = statistics.median(echo_latency(pty.send, pty.read, samples))
    return {
        "raw_mb_per_s": raw_rate / 1e6,
        "sdk_mb_per_s": sdk_rate / 1e6,
        "ratio": sdk_rate / raw_rate,
        "raw_echo_p50_ms": raw_echo * 1000,
        "sdk_echo_p50_ms": sdk_echo * 1000,
    }
