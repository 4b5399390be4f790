"""Terminal output of the ``sorna`` command: console items, progress lines, one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Generator
from contextlib import contextmanager
from typing import TextIO

from ..models import ConsoleItem

__all__ = ["Printer"]


class Printer:
    """Writes program output to the right stream, and notes to stderr."""

    def __init__(
        self, *, quiet: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None
    ) -> None:
        self.quiet = quiet
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self._progress_shown = False

    def console(self, items: list[ConsoleItem]) -> None:
        """Write one result's console: stdout and stderr verbatim, other kinds as notes."""
        for item in items:
            self.clear_progress()
            if item.type == "stdout":
                self.stdout.write(item.data)
                self.stdout.flush()
            elif item.type == "stderr":
                self.stderr.write(item.data)
                self.stderr.flush()
            elif item.type == "media":
                mime, payload = item.data
                self.note(f"[{mime} output, {len(payload)} characters of base64]")
            elif item.type == "html":
                self.note(f"[html output, {len(item.data)} characters]")
            elif item.type == "log":
                self.note(f"[log] {item.data}".rstrip("\n"))
            elif item.type == "completion":
                self.stdout.write("".join(f"{candidate}\n" for candidate in item.data))
            else:  # the value of the last expression
                self.stdout.write(f"{item.text}\n")
                self.stdout.flush()

    def note(self, text: str) -> None:
        """A status line on stderr, unless ``--quiet``."""
        if not self.quiet:
            self.clear_progress()
            print(text, file=self.stderr, flush=True)

    def error(self, text: str) -> None:
        """One line, always shown."""
        self.clear_progress()
        print(f"sorna: error: {text}", file=self.stderr, flush=True)

    @contextmanager
    def progress(self, text: str) -> Generator[None, None, None]:
        """Show ``text`` on stderr while the block runs, only on a terminal."""
        self.show_progress(text)
        try:
            yield
        finally:
            self.clear_progress()

    def show_progress(self, text: str) -> None:
        if self.quiet or not self.stderr.isatty():
            return
        self.stderr.write(f"\r\x1b[K{text}…")
        self.stderr.flush()
        self._progress_shown = True

    def clear_progress(self) -> None:
        if self._progress_shown:
            self.stderr.write("\r\x1b[K")
            self.stderr.flush()
            self._progress_shown = False
