"""Benchmarks of the SDK and the local gateway, each against a baseline in the same run.

Run with ``make bench`` (or ``.venv/bin/python bench/run.py [--quick]``). Every gateway
runs as the real ``serve`` command in a child process, so client and server do not share
an interpreter. Prints a table; ``--json FILE`` also writes the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx
import pty_bench

from sorna_sdk import APIConfig, AsyncKernel, AsyncSession, Kernel, Session
from sorna_sdk.auth import sign

VERSION = "v2.20170315"


@dataclass
class Gateway:
    config: APIConfig
    pid: int


@contextmanager
def gateway(*extra: str) -> Iterator[Gateway]:
    """Start ``python -m sorna_sdk.local serve --port 0`` and read its three export lines."""
    with tempfile.TemporaryDirectory(prefix="sorna-bench-") as root:
        env = {**os.environ, "XDG_CONFIG_HOME": os.path.join(root, "xdg")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "sorna_sdk.local", "serve", "--port", "0", "--root", root,
             "--log-level", "warning", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )  # fmt: skip
        assert proc.stdout is not None
        exports = dict(
            proc.stdout.readline().strip().removeprefix("export ").split("=", 1) for _ in range(3)
        )
        config = APIConfig(
            access_key=exports["SORNA_ACCESS_KEY"],
            secret_key=exports["SORNA_SECRET_KEY"],
            endpoint=exports["SORNA_ENDPOINT"],
        )
        try:
            yield Gateway(config, proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            proc.stdout.close()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


class MinimalSigner(httpx.Auth):
    """The baseline: the spec's HMAC in a dozen lines, no SDK code involved."""

    requires_request_body = True

    def __init__(self, access_key: str, secret_key: str) -> None:
        self.access_key, self.secret_key = access_key, secret_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        now = datetime.now(timezone.utc)
        date = now.isoformat()
        host = request.headers["Host"]
        content_type = request.headers.setdefault("Content-Type", "application/octet-stream")
        body_hash = hashlib.sha256(request.content).hexdigest()
        text = "\n".join([
            request.method, request.url.path, date, f"host:{host}",
            f"content-type:{content_type}", f"x-sorna-version:{VERSION}", body_hash,
        ])  # fmt: skip
        k1 = hmac.new(self.secret_key.encode(), now.strftime("%Y%m%d").encode(), "sha256")
        k2 = hmac.new(k1.digest(), host.encode(), "sha256").digest()
        sig = hmac.new(k2, text.encode(), "sha256").hexdigest()
        request.headers["Date"] = date
        request.headers["X-Sorna-Version"] = VERSION
        request.headers["Authorization"] = (
            f"Sorna signMethod=HMAC-SHA256, credential={self.access_key}:{sig}"
        )
        yield request


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def bench_overhead(gw: Gateway, n: int) -> dict[str, float]:
    """(a) the same get_info calls through Kernel and through raw httpx, interleaved in rounds."""
    with Session(gw.config) as session:
        kern = Kernel.get_or_create("python3", session=session)
        auth = MinimalSigner(gw.config.access_key, gw.config.secret_key)
        url = f"{gw.config.endpoint}/v2/kernel/{kern.kernel_id}"
        with httpx.Client(auth=auth) as raw:

            def raw_info() -> None:
                response = raw.get(url)
                response.raise_for_status()
                response.json()

            timed(kern.get_info, 200), timed(raw_info, 200)  # warm up both paths
            sdk: list[float] = []
            base: list[float] = []
            for _ in range(5):  # interleave so drift hits both sides alike
                sdk += timed(kern.get_info, n // 5)
                base += timed(raw_info, n // 5)
        kern.destroy()
    return {
        "sdk_mean_ms": statistics.fmean(sdk) * 1000,
        "raw_mean_ms": statistics.fmean(base) * 1000,
        "ratio": statistics.fmean(sdk) / statistics.fmean(base),
    }


def bench_execute(gw: Gateway, n: int) -> dict[str, float]:
    """(b) ``print(1)`` round trips through the SDK, and through raw httpx in the same run."""
    body = b'{"mode": "query", "code": "print(1)"}'
    auth = MinimalSigner(gw.config.access_key, gw.config.secret_key)
    with Session(gw.config) as session, Kernel.get_or_create("python3", session=session) as kern:
        url = f"{gw.config.endpoint}/v2/kernel/{kern.kernel_id}"
        with httpx.Client(auth=auth, headers={"Content-Type": "application/json"}) as raw:

            def raw_execute() -> None:
                response = raw.post(url, content=body)
                response.raise_for_status()
                response.json()

            timed(lambda: kern.execute("print(1)"), 100), timed(raw_execute, 100)
            samples = timed(lambda: kern.execute("print(1)"), n)
            base = timed(raw_execute, n)
    return {
        "p50_ms": percentile(samples, 0.5) * 1000,
        "p99_ms": percentile(samples, 0.99) * 1000,
        "raw_p50_ms": percentile(base, 0.5) * 1000,
    }


def bench_create(gw: Gateway, n: int, pause: float) -> dict[str, float]:
    """(c) kernel creation through the SDK; ``pause`` lets a warm pool refill between takes."""
    samples = []
    with Session(gw.config) as session:
        for _ in range(n):
            time.sleep(pause)
            start = time.perf_counter()
            kern = Kernel.get_or_create("python3", session=session)
            samples.append(time.perf_counter() - start)
            kern.destroy()
    return {"p50_ms": percentile(samples, 0.5) * 1000, "p90_ms": percentile(samples, 0.9) * 1000}


def bench_idle_rss(gw: Gateway) -> dict[str, float]:
    """(d) resident memory of an idle python3 kernel process, against a bare interpreter."""
    with Session(gw.config) as session, Kernel.get_or_create("python3", session=session) as kern:
        pid = int(kern.execute("import os; print(os.getpid())").stdout)
        time.sleep(0.3)
        kernel_kib = _rss_kib(pid)
    bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    time.sleep(0.5)
    bare_kib = _rss_kib(bare.pid)
    bare.kill()
    bare.wait()
    return {"kernel_rss_mib": kernel_kib / 1024, "bare_python_rss_mib": bare_kib / 1024}


def _rss_kib(pid: int) -> float:
    """Resident KiB of ``pid``; NaN when it is not visible from here (a kernel in its own
    PID namespace reports a pid that means another process out here)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            match = re.search(r"VmRSS:\s+(\d+) kB", status.read())
    except OSError:
        return float("nan")
    return float(match.group(1)) if match else float("nan")


def _raw_aiohttp_headers(gw: Gateway, method: str, path: str, body: bytes) -> dict[str, str]:
    """The baseline's signer for aiohttp: the SDK's ``sign`` function and four headers."""
    date = datetime.now(timezone.utc).isoformat()
    host = gw.config.endpoint.split("://", 1)[1]
    content_type = "application/json" if body else "application/octet-stream"
    authorization = sign(
        method=method, path=path, date=date, host=host, content_type=content_type, body=body,
        version=VERSION, access_key=gw.config.access_key, secret_key=gw.config.secret_key,
    )  # fmt: skip
    return {
        "Date": date,
        "X-Sorna-Version": VERSION,
        "Content-Type": content_type,
        "Authorization": authorization,
    }


def bench_throughput(gw: Gateway, concurrency: int, rounds: int) -> dict[str, float]:
    """(e) ``concurrency`` kernels each executing ``print(1)`` ``rounds`` times and calling
    ``get_info`` ``rounds`` times, all at once: through AsyncKernel on each HTTP transport
    (aiohttp, the default with aiohttp installed; httpx's own pool), and through raw aiohttp
    and raw httpx clients with minimal signers, in the same run. Two passes in alternating
    order; each row keeps its better pass, so drift on a shared machine hits all alike."""
    import aiohttp

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    body = b'{"mode": "query", "code": "print(1)"}'

    async def sdk_rates(ids: list[str], transport: httpx.AsyncBaseTransport | None) -> list[float]:
        async with AsyncSession(gw.config, transport=transport) as session:
            kernels = [AsyncKernel(i, session=session) for i in ids]
            await asyncio.gather(*(k.execute("print(0)") for k in kernels))  # warm the pool
            execute = await _rate(kernels, rounds, lambda k: k.execute("print(1)"))
            info = await _rate(kernels, rounds, lambda k: k.get_info())
        return [execute, info]

    async def raw_aiohttp_rates(ids: list[str]) -> list[float]:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as client:

            async def call(kernel_id: str, method: str, payload: bytes) -> None:
                path = f"/v2/kernel/{kernel_id}"
                headers = _raw_aiohttp_headers(gw, method, path, payload)
                async with client.request(
                    method, gw.config.endpoint + path, data=payload or None, headers=headers
                ) as response:
                    response.raise_for_status()
                    json.loads(await response.read())

            await asyncio.gather(*(call(i, "POST", body) for i in ids))
            execute = await _rate_ids(ids, rounds, lambda i: call(i, "POST", body))
            info = await _rate_ids(ids, rounds, lambda i: call(i, "GET", b""))
        return [execute, info]

    async def raw_httpx_rates(ids: list[str]) -> list[float]:
        auth = MinimalSigner(gw.config.access_key, gw.config.secret_key)
        async with httpx.AsyncClient(limits=limits, auth=auth) as raw:

            async def call(kernel_id: str, method: str, payload: bytes) -> None:
                url = f"{gw.config.endpoint}/v2/kernel/{kernel_id}"
                headers = {"Content-Type": "application/json"} if payload else {}
                response = await raw.request(method, url, content=payload, headers=headers)
                response.raise_for_status()
                response.json()

            await asyncio.gather(*(call(i, "POST", body) for i in ids))
            execute = await _rate_ids(ids, rounds, lambda i: call(i, "POST", body))
            info = await _rate_ids(ids, rounds, lambda i: call(i, "GET", b""))
        return [execute, info]

    async def main() -> dict[str, float]:
        async with AsyncSession(gw.config) as setup:
            kernels = await asyncio.gather(
                *(AsyncKernel.get_or_create("python3", session=setup) for _ in range(concurrency))
            )
        ids = [k.kernel_id for k in kernels]
        clients: dict[str, Callable[[], Awaitable[list[float]]]] = {
            "sdk_aiohttp": lambda: sdk_rates(ids, None),
            "sdk_httpx": lambda: sdk_rates(ids, httpx.AsyncHTTPTransport(limits=limits)),
            "raw_aiohttp": lambda: raw_aiohttp_rates(ids),
            "raw_httpx": lambda: raw_httpx_rates(ids),
        }
        best: dict[str, list[float]] = {name: [0.0, 0.0] for name in clients}
        for order in (list(clients), list(reversed(clients))):
            for name in order:
                rates = await clients[name]()
                best[name] = [max(old, new) for old, new in zip(best[name], rates, strict=True)]
        async with AsyncSession(gw.config) as closer:
            await asyncio.gather(*(AsyncKernel(i, session=closer).destroy() for i in ids))
        results: dict[str, float] = {}
        for name, (execute, info) in best.items():
            results[f"{name}_execute_per_second"] = execute
            results[f"{name}_info_per_second"] = info
        return results

    return asyncio.run(main())


async def _rate_ids(ids: list[str], rounds: int, call: Callable[[str], Awaitable[Any]]) -> float:
    async def loop(kernel_id: str) -> None:
        for _ in range(rounds):
            await call(kernel_id)

    start = time.perf_counter()
    await asyncio.gather(*(loop(i) for i in ids))
    return len(ids) * rounds / (time.perf_counter() - start)


#: ``[project.dependencies]`` of pyproject.toml, by import name: the baseline of (g).
DEPENDENCIES = "import httpx, httpx_sse, pydantic, websockets, typing_extensions"
IMPORTS = {
    "sdk": "import sorna_sdk",
    "deps": DEPENDENCIES,
    "kernel": "from sorna_sdk import Kernel",
    "everything": "from sorna_sdk import *",
    "cli": "import sorna_sdk.cli",
}


def bench_import(runs: int) -> dict[str, float]:
    """(g) import times in fresh interpreters, median of ``runs``: ``import sorna_sdk``
    against importing its dependencies alone, and the first names an application imports
    (``from sorna_sdk import *`` loads the whole surface, as ``import sorna_sdk`` used to)."""
    samples: dict[str, list[float]] = {name: [] for name in IMPORTS}
    for round_ in range(runs + 1):  # the first round only warms the bytecode caches
        for name, statement in IMPORTS.items():
            code = (
                f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
            )
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
            if round_:
                samples[name].append(float(out))
    results = {f"{name}_s": statistics.median(values) for name, values in samples.items()}
    results["ratio"] = results["sdk_s"] / results["deps_s"]
    return results


FIRST_CALL = """
import asyncio, sys, time
from sorna_sdk import AsyncSession
import httpx
async def main():
    start = time.perf_counter()
    transport = httpx.AsyncHTTPTransport() if sys.argv[1] == "httpx" else None
    async with AsyncSession(transport=transport) as session:
        await session.hello()
    print(time.perf_counter() - start)
asyncio.run(main())
"""


def bench_first_call(gw: Gateway, runs: int) -> dict[str, float]:
    """(h) the first AsyncSession call of a fresh process, from constructing the session to
    the answer (aiohttp is imported then), on each transport: median of ``runs``."""
    env = {
        **os.environ,
        "SORNA_ACCESS_KEY": gw.config.access_key,
        "SORNA_SECRET_KEY": gw.config.secret_key,
        "SORNA_ENDPOINT": gw.config.endpoint,
    }
    samples: dict[str, list[float]] = {"aiohttp": [], "httpx": []}
    for round_ in range(runs + 1):
        for name, values in samples.items():
            out = subprocess.run(
                [sys.executable, "-c", FIRST_CALL, name],
                capture_output=True, text=True, check=True, env=env,
            ).stdout  # fmt: skip
            if round_:
                values.append(float(out))
    return {f"{name}_s": statistics.median(values) for name, values in samples.items()}


def bench_http_clients(gw: Gateway, concurrency: int, rounds: int) -> dict[str, float]:
    """(e') unsigned ``GET /v2`` at the same concurrency: httpx's AsyncClient against
    aiohttp's client, to show which part of (e) the HTTP client accounts for."""
    import aiohttp

    url = f"{gw.config.endpoint}/v2"

    def date() -> dict[str, str]:
        return {"Date": datetime.now(timezone.utc).isoformat()}

    async def timed_loops(get: Callable[[], Awaitable[None]]) -> float:
        async def loop() -> None:
            for _ in range(rounds):
                await get()

        await asyncio.gather(*(loop() for _ in range(concurrency)))  # warm the pool
        start = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        return concurrency * rounds / (time.perf_counter() - start)

    async def main() -> dict[str, float]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits) as client:

            async def httpx_get() -> None:
                (await client.get(url, headers=date())).raise_for_status()

            httpx_rate = await timed_loops(httpx_get)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def aiohttp_get() -> None:
                async with session.get(url, headers=date()) as response:
                    response.raise_for_status()
                    await response.read()

            aiohttp_rate = await timed_loops(aiohttp_get)
        return {"httpx_per_second": httpx_rate, "aiohttp_per_second": aiohttp_rate}

    return asyncio.run(main())


async def _rate(
    kernels: list[AsyncKernel], rounds: int, call: Callable[[AsyncKernel], Awaitable[Any]]
) -> float:
    async def loop(kern: AsyncKernel) -> None:
        for _ in range(rounds):
            await call(kern)

    start = time.perf_counter()
    await asyncio.gather(*(loop(k) for k in kernels))
    return len(kernels) * rounds / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    n = 500 if args.quick else 3000
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    results: dict[str, Any] = {"machine": f"{machine}, Python {platform.python_version()}"}
    results["g_import"] = bench_import(5)
    with gateway() as gw:
        results["h_first_call"] = bench_first_call(gw, 5)
        results["a_overhead"] = bench_overhead(gw, n)
        results["b_execute"] = bench_execute(gw, n)
        results["c_create_pool"] = bench_create(gw, 30 if args.quick else 100, pause=0.15)
        results["d_idle_rss"] = bench_idle_rss(gw)
        results["e_throughput"] = bench_throughput(gw, 50, 10 if args.quick else 40)
        results["e_clients"] = bench_http_clients(gw, 50, 20 if args.quick else 60)
    # (b)-(d) again without the sandbox: what bubblewrap costs, measured in the same run.
    with gateway("--sandbox", "none") as gw:
        results["b_execute_unsandboxed"] = bench_execute(gw, n)
        results["c_create_pool_unsandboxed"] = bench_create(
            gw, 30 if args.quick else 100, pause=0.15
        )
        results["d_idle_rss_unsandboxed"] = bench_idle_rss(gw)
    with gateway("--pool-size", "0") as gw:
        results["c_create_cold"] = bench_create(gw, 20 if args.quick else 50, pause=0.0)
        results["f_pty"] = pty_bench.run(
            gw.config, n=5_000_000 if args.quick else 20_000_000, samples=50 if args.quick else 200
        )
    report(results)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0


def rate(results: dict[str, float], name: str) -> str:
    return f"{results[name + '_per_second']:.0f} /s"


def ratio(results: dict[str, float], top: str, bottom: str) -> str:
    return f"{results[top + '_per_second'] / results[bottom + '_per_second']:.2f}x"


def report(results: dict[str, Any]) -> None:
    a, b = results["a_overhead"], results["b_execute"]
    pool, cold = results["c_create_pool"], results["c_create_cold"]
    d, e, hc = results["d_idle_rss"], results["e_throughput"], results["e_clients"]
    g, h = results["g_import"], results["h_first_call"]
    bu, cu = results["b_execute_unsandboxed"], results["c_create_pool_unsandboxed"]
    du = results["d_idle_rss_unsandboxed"]
    rows = [
        ("machine", results["machine"], ""),
        ("(a) get_info via Kernel / raw httpx", f"{a['ratio']:.3f}x", "target <= 1.3"),
        ("    Kernel.get_info mean", ms(a["sdk_mean_ms"] / 1000), ""),
        ("    raw httpx + minimal signer mean", ms(a["raw_mean_ms"] / 1000), ""),
        ("(b) execute print(1) p50", ms(b["p50_ms"] / 1000), "target < 3 ms"),
        ("    execute print(1) p99", ms(b["p99_ms"] / 1000), ""),
        ("    raw httpx execute p50 (baseline)", ms(b["raw_p50_ms"] / 1000), ""),
        ("(c) create, warm pool p50", ms(pool["p50_ms"] / 1000), "target < 10 ms"),
        ("    create, cold p50", ms(cold["p50_ms"] / 1000), ""),
        ("    cold / pool", f"{cold['p50_ms'] / pool['p50_ms']:.1f}x", ""),
        ("(d) idle python3 kernel RSS", f"{d['kernel_rss_mib']:.1f} MiB", "target < 20 MB"),
        ("    bare python3 RSS (baseline)", f"{d['bare_python_rss_mib']:.1f} MiB", ""),
        ("(b-d) --sandbox none: execute p50", ms(bu["p50_ms"] / 1000), "target < 3 ms"),
        ("    --sandbox none: raw httpx execute p50", ms(bu["raw_p50_ms"] / 1000), ""),
        ("    --sandbox none: create, warm pool p50", ms(cu["p50_ms"] / 1000), "target < 10 ms"),
        ("    --sandbox none: kernel RSS", f"{du['kernel_rss_mib']:.1f} MiB", "target < 20 MB"),
        ("(e) 50 at once: executes, AsyncKernel on aiohttp", rate(e, "sdk_aiohttp_execute"), ""),
        ("    executes, AsyncKernel on httpx's pool", rate(e, "sdk_httpx_execute"), ""),
        ("    executes, raw aiohttp + minimal signer", rate(e, "raw_aiohttp_execute"), ""),
        ("    executes, raw httpx + minimal signer", rate(e, "raw_httpx_execute"), ""),
        ("    get_info, AsyncKernel on aiohttp", rate(e, "sdk_aiohttp_info"), ""),
        ("    get_info, AsyncKernel on httpx's pool", rate(e, "sdk_httpx_info"), ""),
        ("    get_info, raw aiohttp + minimal signer", rate(e, "raw_aiohttp_info"), ""),
        ("    get_info, raw httpx + minimal signer", rate(e, "raw_httpx_info"), ""),
        ("    get_info SDK (aiohttp) / raw aiohttp",
         ratio(e, "sdk_aiohttp_info", "raw_aiohttp_info"), "target >= 0.5"),
        ("    executes SDK (aiohttp) / raw aiohttp",
         ratio(e, "sdk_aiohttp_execute", "raw_aiohttp_execute"), ""),
        ("    get_info SDK aiohttp / SDK httpx",
         ratio(e, "sdk_aiohttp_info", "sdk_httpx_info"), ""),
        ("    executes SDK aiohttp / SDK httpx",
         ratio(e, "sdk_aiohttp_execute", "sdk_httpx_execute"), ""),
        ("    GET /v2 x50 at once, httpx AsyncClient", f"{hc['httpx_per_second']:.0f} /s", ""),
        ("    GET /v2 x50 at once, aiohttp client", f"{hc['aiohttp_per_second']:.0f} /s", ""),
        ("(g) import sorna_sdk, median of 5", ms(g["sdk_s"]), ""),
        ("    import its dependencies alone", ms(g["deps_s"]), ""),
        ("    import sorna_sdk / dependencies", f"{g['ratio']:.2f}x", "target <= 1.25"),
        ("    from sorna_sdk import Kernel", ms(g["kernel_s"]),
         f"{g['kernel_s'] / g['deps_s']:.2f}x deps"),
        ("    from sorna_sdk import * (all names)", ms(g["everything_s"]),
         f"{g['everything_s'] / g['deps_s']:.2f}x deps"),
        ("    import sorna_sdk.cli (sorna --help)", ms(g["cli_s"]),
         f"{g['cli_s'] / g['deps_s']:.2f}x deps"),
        ("(h) first AsyncSession call, aiohttp", ms(h["aiohttp_s"]), "fresh process, median of 5"),
        ("    first AsyncSession call, httpx's pool", ms(h["httpx_s"]), ""),
    ]  # fmt: skip
    f = results["f_pty"]
    rows += [
        ("(f) PTY throughput, gateway + SDK", f"{f['sdk_mb_per_s']:.1f} MB/s", ""),
        ("    raw local pty (baseline)", f"{f['raw_mb_per_s']:.1f} MB/s", ""),
        ("    SDK / raw", f"{f['ratio']:.2f}x", "target >= 0.5"),
        ("    PTY echo p50, gateway + SDK", ms(f["sdk_echo_p50_ms"] / 1000), ""),
        ("    PTY echo p50, raw local pty", ms(f["raw_echo_p50_ms"] / 1000), ""),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>16}  {target}")


if __name__ == "__main__":
    raise SystemExit(main())
