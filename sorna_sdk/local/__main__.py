"""``python -m sorna_sdk.local [serve] [options]``: run the local gateway."""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
