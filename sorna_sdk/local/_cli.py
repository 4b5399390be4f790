"""``serve``: run the local gateway until SIGINT/SIGTERM (``sorna local serve``).

When ready it prints exactly three ``export SORNA_...=...`` lines on stdout, for
``eval "$(python -m sorna_sdk.local serve ...)"``-style use; logs go to stderr.
The secret key is never logged: only the export line carries it.
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
from ._keys import (
    ENV_LOCAL_ACCESS_KEY,
    ENV_LOCAL_SECRET_KEY,
    KeyfileError,
    default_keypair_path,
    resolve_keypair,
)
from .gateway import GatewaySettings, LocalGateway

__all__ = ["main"]

log: logging.Logger = logging.getLogger("sorna_sdk.local")

#: Logged when the secret comes from the command line.
SECRET_ON_COMMAND_LINE = (
    "--secret-key is visible to other local users (ps, /proc/<pid>/cmdline): "
    f"prefer --secret-key-file or ${ENV_LOCAL_SECRET_KEY}"
)

_EPILOG = f"""\
keys, first found:
  the access key:  --access-key, else ${ENV_LOCAL_ACCESS_KEY}
  the secret key:  --secret-key-file (mode 0600), --secret-key, else ${ENV_LOCAL_SECRET_KEY}
  neither:         a keypair generated on first start and kept (mode 0600) in
                   $XDG_CONFIG_HOME/sorna-sdk/local-keypair.json (default ~/.config/...)
  Key files readable or writable by group or others are refused, as ssh does.

examples:
  sorna local serve --port 0
  sorna local serve --access-key AKIAEXAMPLE --secret-key-file ~/.config/sorna-secret
  {ENV_LOCAL_ACCESS_KEY}=AKIAEXAMPLE {ENV_LOCAL_SECRET_KEY}="$(pass sorna)" sorna local serve
  sorna local serve --host 0.0.0.0      # plain HTTP on the network: a warning says so
"""


_MAIN_EPILOG = """\
examples:
  sorna local serve --port 0                 # a free port; prints the SORNA_* exports
  sorna local serve --help                   # every option, with its default

'sorna local' without a command prints this help and exits with status 2.
"""


class _HelpFormatter(argparse.HelpFormatter):
    """Each option's default after its help (unless the help says it), epilogs as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if "default" in text or default in (None, False, argparse.SUPPRESS):
            return text
        return (
            f"{text} (default: {default:g})"
            if isinstance(default, float)
            else (f"{text} (default: {default})")
        )

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:  # an epilog of examples: as written
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sorna local",
        description="Run the embedded Sorna gateway: kernels run as you, in a bubblewrap "
        "sandbox when one is available (--sandbox).",
        epilog=_MAIN_EPILOG,
        formatter_class=_HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve the Sorna API on this machine",
        description="Serve the Sorna v2 API on this machine; print the client's SORNA_* "
        "exports on stdout, log on stderr, stop on SIGINT/SIGTERM.",
        epilog=_EPILOG,
        formatter_class=_HelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8081, help="port (0 picks a free one)")
    serve.add_argument(
        "--access-key",
        help=f"access key (default: ${ENV_LOCAL_ACCESS_KEY}, else a keypair kept per user)",
    )
    secret = serve.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret-key-file",
        type=Path,
        metavar="PATH",
        help="read the secret key from PATH (one line; mode 0600 or stricter)",
    )
    secret.add_argument(
        "--secret-key",
        help=f"secret key; other local users can see it in ps: prefer --secret-key-file "
        f"or ${ENV_LOCAL_SECRET_KEY}",
    )
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
        "--exec-timeout",
        type=float,
        default=1800.0,
        metavar="S",
        help="seconds a run may take unless its create asks otherwise (Backend.AI never does)",
    )
    serve.add_argument(
        "--resume-grace",
        type=float,
        default=15.0,
        metavar="S",
        help="seconds a run whose execute stream dropped waits to be resumed (then interrupted)",
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
    serve.add_argument(
        "--root",
        type=Path,
        help="kernels' work directories, created mode 0700; an existing one others can write "
        "is refused (default: a private temporary folder)",
    )
    serve.add_argument(
        "--sandbox",
        choices=["auto", "bwrap", "none"],
        default="auto",
        help="isolate kernels with bubblewrap: auto (when it works, else none, with a "
        "warning), bwrap (required) or none (default: auto)",
    )
    serve.add_argument(
        "--kernel-network",
        action="store_true",
        help="give sandboxed kernels the network (default: none)",
    )
    defaults = GatewaySettings()
    serve.add_argument(
        "--max-connections",
        type=int,
        default=defaults.max_connections,
        metavar="N",
        help=f"open connections; more are answered 503 (default {defaults.max_connections})",
    )
    serve.add_argument(
        "--keepalive-timeout",
        type=float,
        default=defaults.keepalive_timeout,
        metavar="S",
        help=f"close idle kept-alive connections after S seconds "
        f"(default {defaults.keepalive_timeout:g})",
    )
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=defaults.header_timeout,
        metavar="S",
        help=f"seconds a client has to send a request's headers "
        f"(default {defaults.header_timeout:g})",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=defaults.body_timeout,
        metavar="S",
        help=f"seconds a client has to send a request's body (default {defaults.body_timeout:g})",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="what is logged on stderr",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; ``argv`` starts with ``serve``, or with serve's options (``--port 0``).

    Without arguments it prints the help on stderr and returns 2, as argparse does for a
    missing command: nothing starts unless asked.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0].startswith("-") and args_list[0] not in ("-h", "--help"):
        args_list.insert(0, "serve")
    parser = _parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help or a usage error: argparse has printed why
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.secret_key:
        log.warning(SECRET_ON_COMMAND_LINE)
    try:
        keypair, source = resolve_keypair(
            args.access_key,
            args.secret_key,
            secret_key_file=args.secret_key_file,
            path=default_keypair_path(),
        )
        hidden = (args.secret_key_file,) if args.secret_key_file is not None else ()
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
            exec_timeout=args.exec_timeout,
            resume_grace=args.resume_grace,
            pool_size=args.pool_size,
            access_log=args.log_level == "debug",
            sandbox=args.sandbox,
            kernel_network=args.kernel_network,
            hidden_paths=hidden,
            max_connections=args.max_connections,
            keepalive_timeout=args.keepalive_timeout,
            header_timeout=args.header_timeout,
            body_timeout=args.body_timeout,
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
            log.error("cannot start the gateway on %s:%s: %s", settings.host, settings.port, exc)
            return 1
        except RuntimeError as exc:  # e.g. --sandbox bwrap without a working bubblewrap
            log.error("cannot start the gateway: %s", exc)
            return 1
        sys.stdout.write(
            f"export {ENV_ENDPOINT}={shlex.quote(gateway.endpoint)}\n"
            f"export {ENV_ACCESS_KEY}={shlex.quote(gateway.access_key)}\n"
            f"export {ENV_SECRET_KEY}={shlex.quote(gateway.secret_key)}\n"
        )
        sys.stdout.flush()
        if settings.sandbox == "none":  # "auto" that found none has said so already
            log.warning("this gateway runs code as the local user; it is not a sandbox")
        await stop.wait()
        log.info("shutting down")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await gateway.close()
    return 0
