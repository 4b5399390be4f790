"""The ``sorna`` command line: run code, open a terminal, inspect kernels, serve locally.

Every failure prints one line (``sorna: error: ...``) and exits non-zero; no tracebacks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from .._version import __version__
from ..exceptions import SornaError
from ..kernels import Kernel
from ..session import Session
from ._output import Printer

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sorna",
        description="Run code in kernels of a Sorna server, the embedded gateway, or a "
        "Backend.AI cluster. Credentials come from BACKEND_ACCESS_KEY, BACKEND_SECRET_KEY and "
        "BACKEND_ENDPOINT (a Backend.AI cluster; the API version is negotiated), or from their "
        "SORNA_* twins (Sorna v2); BACKEND_API_VERSION / SORNA_API_VERSION pin a version.",
    )
    parser.add_argument("--version", action="version", version=f"sorna-sdk {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run code (-c) or files (uploaded, then built and run)",
        description="Run code in a kernel. Without -t the kernel is temporary.",
    )
    run.add_argument(
        "lang",
        metavar="LANG",
        help="kernel language, e.g. python3, lua5, bash (Backend.AI: an image such as python)",
    )
    run.add_argument("files", metavar="FILE", nargs="*", help="files to upload and run in batch")
    run.add_argument("-c", "--code", help="code to run in query mode")
    run.add_argument("--build", help="build command for FILEs ('*': the language's default)")
    run.add_argument("--exec", dest="exec_cmd", default="*", help="run command for FILEs")
    run.add_argument("--exec-timeout", type=int, default=0, metavar="S", help="time limit (s)")
    _common(run)

    shell = commands.add_parser("shell", help="an interactive terminal in a kernel (Ctrl-] leaves)")
    shell.add_argument("lang", metavar="LANG")
    shell.add_argument("-t", "--client-token", help="attach to the kernel with this token")
    shell.add_argument("-q", "--quiet", action="store_true", help="no status lines")

    info = commands.add_parser("info", help="show a kernel's information")
    info.add_argument("kernel_id", metavar="KERNEL_ID")
    info.add_argument("--json", action="store_true", help="print JSON")

    destroy = commands.add_parser("destroy", help="destroy a kernel")
    destroy.add_argument("kernel_id", metavar="KERNEL_ID")
    destroy.add_argument("-q", "--quiet", action="store_true")

    local = commands.add_parser(
        "local", help="the embedded local gateway ('sorna local serve --help')", add_help=False
    )
    local.add_argument("rest", nargs=argparse.REMAINDER)

    commands.add_parser("version", help="print the SDK version")
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-t", "--client-token", help="attach to the living kernel of this token")
    parser.add_argument("-q", "--quiet", action="store_true", help="no status or progress lines")
    parser.add_argument("--json", action="store_true", help="print one JSON result at the end")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sorna`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["local"]:
        return _local(args_list[1:])
    parser = _parser()
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "version":
        print(f"sorna-sdk {__version__}")
        return 0
    printer = Printer(quiet=getattr(args, "quiet", False))
    try:
        with Session() as session:
            return _dispatch(args, session, printer)
    except SornaError as exc:
        printer.error(str(exc))
        return 1
    except KeyboardInterrupt:
        printer.error("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (``sorna info ... | head``): stop quietly, as cat(1) does.
        _silence_stdout()
        return 141


def _dispatch(args: argparse.Namespace, session: Session, printer: Printer) -> int:
    if args.command == "run":
        from ._run import run_command

        return run_command(
            session,
            lang=args.lang,
            code=args.code,
            files=args.files,
            build=args.build,
            exec_cmd=args.exec_cmd,
            token=args.client_token,
            exec_timeout=args.exec_timeout,
            printer=printer,
            as_json=args.json,
        )
    if args.command == "shell":
        from ._shell import shell_command

        return shell_command(session, lang=args.lang, token=args.client_token, printer=printer)
    kern = Kernel(args.kernel_id, session=session)
    if args.command == "info":
        info = kern.get_info()
        if args.json:
            print(json.dumps({"kernelId": kern.kernel_id, **info.to_dict()}))
        else:
            for key, value in info.to_dict().items():
                print(f"{key:<20} {value}")
        return 0
    kern.destroy()
    printer.note(f"sorna: destroyed {kern.kernel_id}")
    return 0


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _local(rest: list[str]) -> int:
    try:
        from ..local.cli import main as local_main
    except ImportError as exc:
        print(f"sorna: error: {exc}", file=sys.stderr)
        return 1
    return local_main(rest)
