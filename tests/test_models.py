"""Models: the read-only wire view, typed attributes, unknown fields, literal spec JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from sorna_sdk.models import (
    AuthorizeResponse,
    BatchRequest,
    CompletionItem,
    ConsoleItem,
    CreateKernelRequest,
    ExecutionResult,
    KernelCreated,
    KernelInfo,
    Limits,
    MediaItem,
    OutFrame,
    ProblemDetails,
    QueryRequest,
    ResizeFrame,
    StdinFrame,
    TextItem,
    console_item,
    decode_client_frame,
    decode_server_frame,
)

from .conftest import transcript

SPEC_RESULT = """{"status": "finished", "console": [["stdout", "hello\\n"], ["stderr", "..."]],
 "options": null, "files": []}"""

SPEC_INFO = {
    "lang": "python3",
    "age": 1234,
    "queryTimeout": 0,
    "idleTimeout": 600000,
    "memoryLimit": 0,
    "maxCpuCredit": 0,
    "numQueriesExecuted": 3,
    "idle": 10,
    "memoryUsed": 15000,
    "cpuCreditUsed": 40,
}


def test_execution_result_from_spec_json_has_wire_view_and_typed_view() -> None:
    result = ExecutionResult.model_validate_json(SPEC_RESULT)
    assert result["console"] == [["stdout", "hello\n"], ["stderr", "..."]]
    assert result["status"] == "finished"
    assert result["options"] is None
    assert result["files"] == []
    assert result.console[0] == TextItem("stdout", "hello\n")
    wire_pair: object = result["console"][0]
    assert result.console[0] == ("stdout", "hello\n")
    assert result.console[0] == wire_pair
    assert result.console[0].type == "stdout" and result.console[0].data == "hello\n"
    kind, data = result.console[1]
    assert (kind, data) == ("stderr", "...")
    assert result.stdout == "hello\n" and result.stderr == "..."
    assert json.dumps(result["console"]) == '[["stdout", "hello\\n"], ["stderr", "..."]]'


def test_wire_view_returns_fresh_values() -> None:
    result = ExecutionResult.model_validate_json(SPEC_RESULT)
    console = result["console"]
    console.append(["stdout", "x"])
    assert len(result["console"]) == 2


def test_media_and_completion_items() -> None:
    result = ExecutionResult.model_validate(
        {
            "status": "finished",
            "console": [["media", ["image/png", "iVBOR"]], ["completion", ["abs", "all"]]],
        }
    )
    assert result["console"] == [["media", ["image/png", "iVBOR"]], ["completion", ["abs", "all"]]]
    media, completion = result.console
    assert isinstance(media, MediaItem) and media.data == ("image/png", "iVBOR")
    assert media == ["media", ["image/png", "iVBOR"]]  # equal to its wire pair
    assert isinstance(completion, CompletionItem) and completion.data == ["abs", "all"]
    assert isinstance(media, ConsoleItem) and isinstance(completion, ConsoleItem)
    assert result.console[0].data == ["image/png", "iVBOR"]  # the pair equals the wire's list


def test_console_items_are_the_old_named_tuple_pairs() -> None:
    result = ExecutionResult.model_validate(
        {
            "status": "finished",
            "console": [
                ["stdout", "hi\n"],
                ["media", ["image/png", "iVBOR"]],
                ["completion", ["abs"]],
                ["result", {"text/plain": "1"}],
            ],
        }
    )
    text, media, completion, value = result.console
    assert all(isinstance(item, tuple) and len(item) == 2 for item in result.console)
    assert json.dumps(result.console) == json.dumps(result["console"])
    assert text[0] == "stdout" and text[1] == "hi\n" and text._asdict()["data"] == "hi\n"
    kind, data = media
    assert (kind, data) == ("media", ["image/png", "iVBOR"])
    assert (kind, data) == ("media", ("image/png", "iVBOR"))
    assert media != ("media", ["image/png", "other"]) and text != ["stderr", "hi\n"]
    assert hash(media) == hash(("media", ("image/png", "iVBOR")))
    assert ("stdout", "hi\n") in {text}
    assert MediaItem("media", ("image/png", "iVBOR")) == media
    assert completion == ("completion", ["abs"]) and value == ("result", {"text/plain": "1"})
    assert result.console == result["console"]
    assert repr(text) == "TextItem(type='stdout', data='hi\\n')"
    assert ExecutionResult.model_validate({"status": "finished", "console": result.console}) == (
        result
    )
    dumped = result.model_dump()["console"]
    assert dumped[1] == ["media", ["image/png", "iVBOR"]] and type(dumped[1][1]) is list


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        (["stdout", 3], "stdout data must be a string"),
        (["media", ["image/png"]], "media data must be a [mime_type, payload] pair"),
        (["media", "image/png"], "media data must be a [mime_type, payload] pair"),
        (["completion", ["a", 1]], "completion data must be a list of strings"),
        (["result", "x"], "result data must be a MIME bundle"),
        (["beep", "x"], "unknown console item kind 'beep'"),
        (["stdout"], "a console item is a [kind, data] pair"),
    ],
)
def test_malformed_console_items_are_validation_errors(pair: list[object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        ExecutionResult.model_validate({"status": "finished", "console": [pair]})


def test_console_item_builds_the_typed_item_of_a_wire_pair() -> None:
    assert console_item("log", "note") == TextItem("log", "note")
    assert console_item("media", ["image/svg+xml", "<svg/>"]).data == ("image/svg+xml", "<svg/>")
    value = console_item("result", {"text/plain": "1", "application/json": {"a": 1}})
    assert value.data == {"text/plain": "1", "application/json": '{"a": 1}'}
    assert hash(console_item("stdout", "x")) == hash(TextItem("stdout", "x"))
    with pytest.raises(ValueError, match="html data must be a string"):
        console_item("html", None)


def test_unknown_fields_are_kept_and_reachable() -> None:
    created = KernelCreated.model_validate({"kernelId": "k1", "created": True, "shiny": 1})
    assert created.kernel_id == "k1" and created.created is True
    assert created["shiny"] == 1 and "shiny" in created
    assert created.to_dict() == {"kernelId": "k1", "created": True, "shiny": 1}
    assert created.get("nope", "dflt") == "dflt"
    nested = KernelCreated.model_validate({"kernelId": "k1", "extra": [1]})
    nested["extra"].append(2)
    assert nested["extra"] == [1]  # the wire view hands out copies
    with pytest.raises(KeyError):
        created["nope"]


def test_kernel_info_wire_names() -> None:
    info = KernelInfo.model_validate(SPEC_INFO)
    assert info["numQueriesExecuted"] == 3
    assert info.num_queries_executed == 3
    assert "memoryUsed" in info and "memory_used" not in info
    assert info.to_dict() == SPEC_INFO


def test_models_are_frozen_and_not_mappings() -> None:
    info = KernelInfo.model_validate(SPEC_INFO)
    with pytest.raises(ValidationError):
        info.age = 1  # type: ignore[misc]
    from collections.abc import Mapping

    assert not isinstance(info, Mapping) and not isinstance(info, dict)  # type: ignore[unreachable]


@pytest.mark.parametrize(
    "bad",
    [
        {"status": "exploded", "console": []},
        {"status": "finished", "console": [["nonsense-kind", "x"]]},
        {"console": []},
    ],
)
def test_invalid_results_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ExecutionResult.model_validate(bad)


def test_create_request_matches_the_reference_client_body() -> None:
    # The body the 2017 client sent in transcript 25, byte for byte through json.dumps.
    sent = transcript("25-get-or-create-no-agents.json")["exchanges"][-1]["request"]["body"]
    body = CreateKernelRequest(
        lang="python3", client_session_token="lab-token-aa435a31bb7e", limits=Limits()
    )
    assert json.dumps(body.to_wire()) == sent


def test_request_models_refuse_unknown_fields_and_bad_tokens() -> None:
    with pytest.raises(ValidationError):
        QueryRequest(code="x", bogus=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        CreateKernelRequest(lang="python3", client_session_token="short")
    batch = BatchRequest.model_validate({"options": {"build": "*", "buildLog": True}})
    assert batch.to_wire() == {
        "mode": "batch",
        "code": "",
        "options": {"build": "*", "buildLog": True, "exec": None},
    }


def test_authorize_and_problem_models_from_transcripts() -> None:
    ok = transcript("03-authorize-ok.json")["exchanges"][-1]["response"]["body"]
    assert AuthorizeResponse.model_validate_json(ok).echo == "hello-sorna-lab"
    problem = transcript("31-get-info-unknown-kernel.json")["exchanges"][-1]["response"]["body"]
    parsed = ProblemDetails.model_validate_json(problem)
    assert parsed.type == "https://api.sorna.io/probs/kernel-not-found"
    agent = ProblemDetails.model_validate(
        {"type": "t", "title": "x", "agent-details": {"type": "a", "title": "b", "exception": "c"}}
    )
    assert agent.agent_details is not None and agent.agent_details.exception == "c"


def test_pty_frames_encode_and_decode() -> None:
    raw = bytes(range(256))
    frame = StdinFrame.from_bytes(raw)
    assert json.loads(frame.encode()) == {"type": "stdin", "chars": frame.chars}
    decoded = decode_client_frame(frame.encode())
    assert isinstance(decoded, StdinFrame) and decoded.payload == raw
    resize = decode_client_frame('{"type": "resize", "rows": 40, "cols": 132}')
    assert resize == ResizeFrame(rows=40, cols=132)
    out = decode_server_frame(OutFrame.from_bytes(b"\xff\x00hi").encode())
    assert out.payload == b"\xff\x00hi"
    with pytest.raises(ValidationError):
        decode_client_frame('{"type": "explode"}')
    with pytest.raises(ValidationError):
        decode_client_frame('{"type": "resize", "rows": 0, "cols": 10}')


PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5Er"
    "kJggg=="
)


def test_media_items_are_typed_and_saved(tmp_path: Path) -> None:
    result = ExecutionResult.model_validate(
        {
            "status": "finished",
            "console": [
                ["stdout", "x\n"],
                ["media", ["image/png", PNG]],
                ["media", ["image/svg+xml", "<svg/>"]],
                ["html", "<b>hi</b>"],
                ["result", {"text/plain": "<Fig>", "image/png": PNG}],
            ],
        }
    )
    png, svg, value = result.images
    assert png.mime_type == "image/png" and png.payload == PNG
    assert png.bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert png.save(tmp_path / "a.png").read_bytes() == png.bytes()
    assert svg.mime_type == "image/svg+xml" and svg.bytes() == b"<svg/>" and svg.text == "<svg/>"
    assert value.type == "result" and value.mime_type == "image/png" and value.text == "<Fig>"
    assert value.bytes("text/plain") == b"<Fig>"
    assert result.html == ["<b>hi</b>"]
    assert result.last_value == value
    assert result.console[0].mime_type == "text/plain" and result.console[0].bytes() == b"x\n"
    # The dict-style view and unpacking stay as the 2017 client had them.
    assert result["console"][1] == ["media", ["image/png", PNG]]
    kind, data = result.console[1]
    assert (kind, data) == ("media", ("image/png", PNG))
    with pytest.raises(ValueError):
        result.console[0].bytes("image/png")


def test_query_options_are_dropped_when_unset() -> None:
    from sorna_sdk.models import QueryOptions

    assert QueryRequest(code="x").to_wire() == {"mode": "query", "code": "x"}
    request = QueryRequest(code="x", options=QueryOptions(last_value=True))
    assert request.to_wire() == {"mode": "query", "code": "x", "options": {"lastValue": True}}
