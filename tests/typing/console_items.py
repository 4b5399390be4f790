"""Console items are typed by kind: checking ``item.type`` narrows ``item.data``.

Checked by ``pyright tests/typing`` and ``mypy --strict tests``; never run.
"""

from __future__ import annotations

from pathlib import Path

from typing_extensions import assert_type

from sorna_sdk import (
    CompletionItem,
    ConsoleItem,
    ExecutionResult,
    MediaItem,
    ResultItem,
    TextItem,
)
from sorna_sdk.models import ConsoleKind, ResultOptions, TextKind, console_item


def narrowing_on_type(item: ConsoleItem) -> None:
    if item.type == "media":
        assert_type(item, MediaItem)
        mime, payload = item.data
        assert_type(mime, str)
        assert_type(payload, str)
    if item.type == "stdout":
        assert_type(item, TextItem)
        assert_type(item.data, str)
    if item.type == "completion":
        assert_type(item.data, list[str])
    if item.type == "result":
        assert_type(item.data, dict[str, str])
    if item.type != "media" and item.type != "completion" and item.type != "result":
        assert_type(item, TextItem)
        assert_type(item.type, TextKind)


def narrowing_by_class(item: ConsoleItem) -> None:
    if isinstance(item, MediaItem):
        assert_type(item.data, tuple[str, str])
    match item:
        case MediaItem(data=(mime, payload)):
            assert_type(mime, str)
            assert_type(payload, str)
        case CompletionItem(data=candidates):
            assert_type(candidates, list[str])
        case ResultItem(data=bundle):
            assert_type(bundle, dict[str, str])
        case TextItem(type=kind, data=text):
            assert_type(kind, TextKind)
            assert_type(text, str)


def the_old_pair(result: ExecutionResult) -> None:
    for kind, data in result.console:
        assert_type(kind, ConsoleKind)
        assert_type(data, str | tuple[str, str] | list[str] | dict[str, str])
    assert_type(result.console[0][0], ConsoleKind)


def shared_readers(item: ConsoleItem, path: Path) -> None:
    assert_type(item.bundle, dict[str, str])
    assert_type(item.mime_type, str | None)
    assert_type(item.payload, str | None)
    assert_type(item.text, str)
    assert_type(item.is_image, bool)
    assert_type(item.bytes(), bytes)
    assert_type(item.save(path), Path)


def building_items() -> None:
    assert_type(TextItem("stdout", "hi\n"), TextItem)
    assert_type(MediaItem("media", ("image/svg+xml", "<svg/>")), MediaItem)
    assert_type(CompletionItem("completion", ["import "]), CompletionItem)
    assert_type(ResultItem("result", {"text/plain": "1"}), ResultItem)
    assert_type(console_item("stdout", "hi\n"), ConsoleItem)
    TextItem("media", "x")  # type: ignore[arg-type]
    MediaItem("media", ["image/png", "x"])  # type: ignore[arg-type]


def result_fields(result: ExecutionResult) -> None:
    assert_type(result.options, ResultOptions | None)
    if result.options is not None:
        assert_type(result.options.get("is_password"), bool | None)
        assert_type(result.options.get("exitCode"), int | None)
    assert_type(result.files, list[str | dict[str, object]])
