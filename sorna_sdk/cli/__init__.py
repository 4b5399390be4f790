"""The ``sorna`` command line: run code, open a terminal, inspect kernels, serve locally.

Every failure prints one line (``sorna: error: ...``) and exits non-zero; no tracebacks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._version import __version__

if TYPE_CHECKING:
    from ..exceptions import SornaError
    from ..session import Session
    from ._output import Printer

__all__ = ["cli_message", "main"]


class _HelpFormatter(argparse.HelpFormatter):
    """Each option's default after its help (unless the help says it), epilogs as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default in (None, False, argparse.SUPPRESS)
            or action.option_strings == []
        ):
            return text
        return f"{text} (default: {default})"

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:  # an epilog of examples: as written
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


_ENV_HELP = """\
configuration (environment):
  BACKEND_ENDPOINT, BACKEND_ACCESS_KEY, BACKEND_SECRET_KEY   a Backend.AI cluster
  SORNA_ENDPOINT, SORNA_ACCESS_KEY, SORNA_SECRET_KEY         a Sorna server or the embedded
                                                             gateway (sorna local serve)
  BACKEND_API_VERSION / SORNA_API_VERSION                    pin the API version
"""

_MAIN_EPILOG = f"""\
examples:
  sorna run python3 -c 'print("hello")'
  sorna run python3 other.py helper.py      # uploads both, runs other.py
  sorna shell python3                       # a Python REPL in a kernel; exit() leaves
  sorna info KERNEL_ID
  sorna local serve --port 0                # the embedded gateway, prints SORNA_* exports

{_ENV_HELP}
'sorna COMMAND --help' shows a command's options and examples.
"""

_RUN_EPILOG = """\
examples:
  sorna run python3 -c 'print(input("name? "))'
  sorna run lua5 -c 'print("hello world")'
  sorna run python3 other.py lib/util.py      # uploads both, runs python3 other.py
  sorna run python3 main.py                   # main.*: the language's own default command
  sorna run bash hello.c --build 'gcc -o hello hello.c' --exec ./hello
  sorna run -t my-token python3 -c 'x = 1'    # keep the kernel; reuse it with -t my-token

FILEs are uploaded by their path relative to the current folder, which must contain them.
The first FILE is run with its language's command (python3 FILE, node FILE, bash FILE; a Lua
file in the kernel's Lua) unless --exec says otherwise.
exit status: the program's (an uncaught error: 1), 124 after the execution time limit,
130 when interrupted (Ctrl-C), 1 for sorna's own errors.
"""

_SHELL_EPILOG = """\
examples:
  sorna shell python3           # a Python REPL; exit() or Ctrl-D leaves
  sorna shell nodejs            # node's REPL; .exit or Ctrl-D leaves
  sorna shell bash              # bash in the kernel's folder; exit or Ctrl-D leaves
  sorna shell -t my-token bash  # the kernel's shared terminal, as the last user left it

Ctrl-] leaves at once (the kernel's shell keeps running while the kernel lives).
exit status: the shell's or REPL's, 1 when the stream failed.
"""

_INFO_EPILOG = """\
examples:
  sorna info 0123456789abcdef0123456789abcdef
  sorna info KERNEL_ID --json | jq .numQueriesExecuted
"""

_DESTROY_EPILOG = """\
examples:
  sorna destroy KERNEL_ID      # the id that 'sorna run -t TOKEN' prints on stderr
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sorna",
        description="Run code in kernels of a Sorna server, the embedded gateway, or a "
        "Backend.AI cluster.",
        epilog=_MAIN_EPILOG,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sorna-sdk {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run code (-c) or files (uploaded, then built and run)",
        description="Run code in a kernel and stream its output. Without -t the kernel is "
        "temporary (destroyed afterwards). Its id is printed on stderr.",
        epilog=_RUN_EPILOG,
        formatter_class=_HelpFormatter,
    )
    run.add_argument(
        "lang",
        metavar="LANG",
        help="kernel language, e.g. python3, lua5, bash, nodejs (Backend.AI: an image such "
        "as python)",
    )
    run.add_argument(
        "files", metavar="FILE", nargs="*", help="files to upload; the first one is run (batch)"
    )
    run.add_argument("-c", "--code", help="code to run in query mode (instead of FILEs)")
    run.add_argument(
        "--build",
        metavar="CMD",
        help="shell command run before --exec; '*': the language's default, e.g. make when "
        "there is a Makefile (default: no build)",
    )
    run.add_argument(
        "--exec",
        dest="exec_cmd",
        metavar="CMD",
        help="shell command that runs the program; '*': the language's default, which runs "
        "main.* (default: run the first FILE with the language's command)",
    )
    run.add_argument(
        "--exec-timeout",
        type=int,
        default=0,
        metavar="S",
        help="time limit of the kernel's runs in seconds (default: 0, the server's)",
    )
    _common(run)

    shell = commands.add_parser(
        "shell",
        help="an interactive REPL or shell in a kernel (exit, Ctrl-D or Ctrl-] leaves)",
        description="Open LANG's REPL (python3, nodejs, lua5) or bash in a kernel, in raw "
        "mode; window resizes follow. Without -t the kernel is temporary.",
        epilog=_SHELL_EPILOG,
        formatter_class=_HelpFormatter,
    )
    shell.add_argument("lang", metavar="LANG", help="kernel language: python3, nodejs, lua5, bash")
    shell.add_argument(
        "-t",
        "--client-token",
        help="attach to the kernel with this token, kept afterwards (default: a temporary kernel)",
    )
    shell.add_argument("-q", "--quiet", action="store_true", help="no status lines")

    info = commands.add_parser(
        "info",
        help="show a kernel's information",
        description="Show a kernel's information (Backend.AI: a session's).",
        epilog=_INFO_EPILOG,
        formatter_class=_HelpFormatter,
    )
    info.add_argument("kernel_id", metavar="KERNEL_ID", help="the id 'sorna run' printed")
    info.add_argument("--json", action="store_true", help="print JSON")

    destroy = commands.add_parser(
        "destroy",
        help="destroy a kernel",
        description="Destroy a kernel and everything running in it.",
        epilog=_DESTROY_EPILOG,
        formatter_class=_HelpFormatter,
    )
    destroy.add_argument("kernel_id", metavar="KERNEL_ID", help="the id 'sorna run' printed")
    destroy.add_argument("-q", "--quiet", action="store_true", help="no status line")

    local = commands.add_parser(
        "local", help="the embedded local gateway ('sorna local --help')", add_help=False
    )
    local.add_argument("rest", nargs=argparse.REMAINDER)

    commands.add_parser(
        "version",
        help="print the SDK version",
        description="Print the SDK version.",
        epilog="example:\n  sorna version",
        formatter_class=_HelpFormatter,
    )
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-t",
        "--client-token",
        help="use (or create) the living kernel of this token and keep it (default: a "
        "temporary kernel)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no status or progress lines")
    parser.add_argument("--json", action="store_true", help="print one JSON result at the end")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sorna`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["local"]:
        return _local(args_list[1:])
    parser = _parser()
    # parse_known_args: FILEs after an option (``run python3 --exec CMD a.py``) come back as
    # extras, which argparse's nargs="*" would refuse.
    args, extras = parser.parse_known_args(args_list)
    if extras:
        if args.command != "run" or any(extra.startswith("-") for extra in extras):
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        args.files = [*args.files, *extras]
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "version":
        print(f"sorna-sdk {__version__}")
        return 0
    # The SDK loads only for a command that talks to a server (not for --help).
    from ..exceptions import SornaError
    from ..session import Session
    from ._output import Printer

    printer = Printer(quiet=getattr(args, "quiet", False))
    try:
        with Session() as session:
            return _dispatch(args, session, printer)
    except SornaError as exc:
        printer.error(cli_message(exc))
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
    from ..kernels import Kernel

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


#: SDK advice (for Python callers) and what a user of the command line does instead.
_CLI_ADVICE = (
    (
        "export it or pass the key to APIConfig() directly",
        "export it (sorna local serve prints the SORNA_* exports of a local gateway; "
        "see sorna --help)",
    ),
    (
        "; pass base_dir= to name it relative to another folder",
        ": run sorna from a folder that contains every FILE",
    ),
)


def cli_message(exc: SornaError) -> str:
    """``exc``'s message, with advice for Python callers replaced by the command line's."""
    text = str(exc)
    for sdk, cli in _CLI_ADVICE:
        text = text.replace(sdk, cli)
    return text


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _local(rest: list[str]) -> int:
    try:
        from ..local._cli import main as local_main
    except ImportError as exc:
        print(f"sorna: error: {exc}", file=sys.stderr)
        return 1
    return local_main(rest)
