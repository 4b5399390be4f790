"""``python -m sorna_sdk.cli``: the same as the ``sorna`` command."""

from . import main

raise SystemExit(main())
