"""The ``sorna`` command line."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_USAGE = """usage: sorna <command> [options]

commands:
  local serve    start the embedded local gateway (needs: pip install 'sorna-sdk[local]')
  version        print the SDK version
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sorna`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_USAGE, end="")
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "version":
        from .._version import __version__

        print(f"sorna-sdk {__version__}")
        return 0
    if command == "local":
        try:
            from ..local.cli import main as local_main
        except ImportError as exc:
            print(f"sorna: {exc}", file=sys.stderr)
            return 1
        return local_main(rest)
    print(f"sorna: unknown command {command!r}\n\n{_USAGE}", end="", file=sys.stderr)
    return 2
