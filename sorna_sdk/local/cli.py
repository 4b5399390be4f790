"""``serve``: run the local gateway until SIGINT/SIGTERM (``sorna local serve``).

When ready it prints exactly three ``export SORNA_...=...`` lines on stdout, for
``eval "$(python -m sorna_sdk.local serve ...)"``-style use; logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import signal
import sys
from pathlib import Path

from ..config import ENV_ACCESS_KEY, ENV_ENDPOINT, ENV_SECRET_KEY
from .gateway import GatewaySettings, LocalGateway
from .keys import KeyfileError, default_keypair_path, resolve_keypair

__all__ = ["main"]

log = logging.getLogger("sorna_sdk.local")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sorna local",
        description="Run the embedded Sorna gateway (runs code as you; not a sandbox).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the Sorna API on this machine")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8081, help="port (0 picks a free one)")
    serve.add_argument(
        "--access-key",
        help="access key (default: $SORNA_LOCAL_ACCESS_KEY, else a keypair kept per user)",
    )
    serve.add_argument("--secret-key", help="secret key (give it with --access-key)")
    serve.add_argument(
        "--flush-window",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds before a running query answers 'continued'",
    )
    serve.add_argument(
        "--idle-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="destroy kernels idle this long (0: never)",
    )
    serve.add_argument(
        "--rate-limit",
        type=int,
        default=1_000_000,
        metavar="N",
        help="queries per keypair per 15 minutes",
    )
    serve.add_argument(
        "--concurrency-limit", type=int, default=64, metavar="N", help="living kernels per keypair"
    )
    serve.add_argument(
        "--pool-size",
        type=int,
        default=1,
        metavar="N",
        help="warm interpreters per language (0: off)",
    )
    serve.add_argument("--root", type=Path, help="kernels' work directories (default: temp)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; ``argv`` starts with ``serve`` (which may be left out)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in ("-h", "--help")):
        args_list.insert(0, "serve")
    try:
        args = _parser().parse_args(args_list)
    except SystemExit as exc:  # --help or a usage error: argparse has printed why
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        keypair, source = resolve_keypair(
            args.access_key, args.secret_key, path=default_keypair_path()
        )
        settings = GatewaySettings(
            host=args.host,
            port=args.port,
            access_key=keypair.access_key,
            secret_key=keypair.secret_key,
            rate_limit=args.rate_limit,
            concurrency_limit=args.concurrency_limit,
            root=args.root,
            flush_window=args.flush_window,
            idle_timeout=args.idle_timeout,
            pool_size=args.pool_size,
            access_log=args.log_level == "debug",
        )
    except (ValueError, KeyfileError) as exc:
        print(f"sorna local serve: {exc}", file=sys.stderr)
        return 2
    log.info("access key %s (from %s)", keypair.access_key, source)
    return asyncio.run(_serve(settings))


async def _serve(settings: GatewaySettings) -> int:
    gateway = LocalGateway(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        try:
            await gateway.start()
        except OSError as exc:
            log.error("cannot listen on %s:%s: %s", settings.host, settings.port, exc)
            return 1
        sys.stdout.write(
            f"export {ENV_ENDPOINT}={shlex.quote(gateway.endpoint)}\n"
            f"export {ENV_ACCESS_KEY}={shlex.quote(gateway.access_key)}\n"
            f"export {ENV_SECRET_KEY}={shlex.quote(gateway.secret_key)}\n"
        )
        sys.stdout.flush()
        log.warning("this gateway runs code as the local user; it is not a sandbox")
        await stop.wait()
        log.info("shutting down")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await gateway.close()
    return 0
