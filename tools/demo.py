"""``make demo``: start the gateway, run the README's examples against it, stop it.

Run as ``python tools/demo.py`` (repository tooling, not part of the installed package).
The gateway is the real command (``python -m sorna_sdk.local serve --port 0``) in a child
process; each example runs in its own interpreter with only the three exported variables.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

__all__ = ["ASYNC_EXAMPLE", "PTY_EXAMPLE", "SYNC_EXAMPLE", "main"]

SYNC_EXAMPLE = textwrap.dedent(
    """\
    from sorna_sdk import Kernel

    kern = Kernel.get_or_create('lua5', client_token='abc-session')
    result = kern.execute('print("hello world")', mode='query')
    print(result['console'])          # [['stdout', 'hello world\\n']]
    kern.destroy()
    """
)

ASYNC_EXAMPLE = textwrap.dedent(
    """\
    import asyncio
    from sorna_sdk import AsyncKernel

    async def main() -> None:
        kern = await AsyncKernel.get_or_create('lua5', client_token='abc-session')
        result = await kern.execute('print("hello world")', mode='query')
        print(result['console'])
        await kern.destroy()

    asyncio.run(main())
    """
)

PTY_EXAMPLE = textwrap.dedent(
    """\
    import asyncio
    from sorna_sdk import AsyncKernel

    async def main() -> None:
        kern = await AsyncKernel.get_or_create('bash', client_token='abc-terminal')
        async with kern, await kern.stream_pty() as pty:
            await pty.send('echo "the terminal says $((6 * 7))"\\n')
            output = b''
            while b'the terminal says 42' not in output:
                output += await pty.read(timeout=10)
            lines = output.decode(errors='replace').splitlines()
            print(next(line for line in lines if line.startswith('the terminal says')))

    asyncio.run(main())
    """
)

_READY_TIMEOUT = 30.0


def _start_gateway(root: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    command = [sys.executable, "-m", "sorna_sdk.local", "serve", "--port", "0", "--root", root]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    exports: dict[str, str] = {}
    deadline = time.monotonic() + _READY_TIMEOUT
    while len(exports) < 3:
        line = proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the gateway did not print its three export lines")
        name, _, value = line.strip().removeprefix("export ").partition("=")
        exports[name] = value
    return proc, exports


def _run_example(title: str, code: str, exports: dict[str, str]) -> None:
    print(f"--- {title} ---", flush=True)
    env = {**os.environ, **exports}
    done = subprocess.run([sys.executable, "-c", code], env=env, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {title} example failed with exit code {done.returncode}")


def main() -> int:
    """Start the gateway, run both examples, stop the gateway; non-zero on any failure."""
    with tempfile.TemporaryDirectory(prefix="sorna-demo-") as root:
        proc, exports = _start_gateway(root)
        print(f"gateway ready at {exports['SORNA_ENDPOINT']}", flush=True)
        try:
            _run_example("synchronous example", SYNC_EXAMPLE, exports)
            _run_example("asynchronous example", ASYNC_EXAMPLE, exports)
            _run_example("terminal (PTY) example", PTY_EXAMPLE, exports)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"demo failed: {exc}", file=sys.stderr)
            return 1
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
        print(f"gateway stopped (exit code {code})", flush=True)
        return 0 if code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
