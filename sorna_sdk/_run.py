"""Sans-IO state machine behind ``Kernel.run()``: follow ``continued``/``build-finished``/
``clean-finished``, answer ``waiting-input``, merge everything into one result."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeAlias

from .exceptions import ExecutionError
from .models import ConsoleItem, ExecutionResult, ResultFile, TextItem

__all__ = ["InputSource", "RunState", "input_lines"]

#: Where ``run()`` gets lines for ``waiting-input``: a callback given the
#: waiting result (its console holds the prompt), an iterable of lines, or a ``str``:
#: the text typed in, one prompt answered per line (``"Bob"`` is one line, never one
#: character per prompt; ``"Bob\n42\n"`` answers two prompts).
InputSource: TypeAlias = Callable[[ExecutionResult], str] | str | Iterable[str]


def input_lines(input: str | Iterable[str]) -> Iterator[str]:
    """The lines of an ``input=`` that is not a callback (a ``str`` is split into lines)."""
    if isinstance(input, str):
        return iter(input.splitlines() or [""])
    return iter(input)


class RunState:
    """Accumulates results; :meth:`next_code` says what to send next."""

    def __init__(self, input: InputSource | None) -> None:
        self._console: list[ConsoleItem] = []
        self._files: list[ResultFile] = []
        self._last: ExecutionResult | None = None
        self._answer: Callable[[ExecutionResult], str] | None
        self._lines: Iterator[str] | None
        if input is None:
            self._answer, self._lines = None, None
        elif callable(input):
            self._answer, self._lines = input, None
        else:
            self._answer, self._lines = None, input_lines(input)

    def feed(self, result: ExecutionResult) -> None:
        """Take one execute result."""
        self._last = result
        self._files.extend(f for f in result.files if f not in self._files)
        for item in result.console:
            previous = self._console[-1] if self._console else None
            if (
                isinstance(item, TextItem)
                and isinstance(previous, TextItem)
                and item.type in ("stdout", "stderr")
                and previous.type == item.type
            ):
                self._console[-1] = TextItem(item.type, previous.data + item.data)
            else:
                self._console.append(item)

    @property
    def started(self) -> bool:
        """Whether a result has been fed."""
        return self._last is not None

    @property
    def done(self) -> bool:
        """Whether the last result ended the run."""
        return self._last is not None and self._last.done

    def next_code(self) -> str:
        """The ``code`` of the next execute call (``""`` to continue, or an input line)."""
        last = self._last
        assert last is not None, "feed() a result first"
        if last.status != "waiting-input":
            return ""
        if self._answer is not None:
            return self._answer(last)
        if self._lines is not None:
            line = next(self._lines, None)
            if line is not None:
                return line.rstrip("\n")
        raise ExecutionError(
            "the program is waiting for input and run() has no more input; "
            "pass input= (a callback or lines), or continue with execute()"
        )

    def result(self) -> ExecutionResult:
        """One result holding the whole console of the run and its final status."""
        last = self._last
        assert last is not None, "feed() a result first"
        return last.model_copy(update={"console": list(self._console), "files": self._files})
