"""Reading JSON request bodies: the shapes the routes accept, and 400s for everything else."""

from __future__ import annotations

import json
import math
from typing import Any, Final

from ..._json import is_object
from .problems import params_problem

__all__ = ["extension_keys", "json_object", "loads", "number", "optional", "text"]

#: Largest accepted number: beyond it floats lose integer precision.
_MAX_NUMBER: Final = 2**53


def loads(body: bytes) -> object:
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object (400 otherwise)."""
    try:
        data = loads(body)
    except ValueError:
        raise params_problem("the body must be a JSON object") from None
    if not is_object(data):
        raise params_problem("the body must be a JSON object")
    return data


def text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise params_problem(f"{name} must be a non-empty string")
    return value


def optional(data: dict[str, Any], name: str, kind: type[Any], what: str) -> Any:
    value = data.get(name)
    if value is not None and not isinstance(value, kind):
        raise params_problem(f"{name} must be {what}")
    return value


def number(data: dict[str, Any], name: str, label: str, *, integer: bool) -> float:
    value = data.get(name, 0)
    if value is None:
        return 0
    kinds: tuple[type[Any], ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise params_problem(f"{label} must be {'an integer' if integer else 'a number'}")
    if value < 0:
        raise params_problem(f"{label} must be 0 or more")
    try:
        # math.isfinite() of an int beyond the float range raises OverflowError.
        sane = value <= _MAX_NUMBER and math.isfinite(value)
    except OverflowError:
        sane = False
    if not sane:
        raise params_problem(f"{label} must be a finite number up to {_MAX_NUMBER}")
    return float(value)


def extension_keys(data: dict[str, Any]) -> tuple[int | None, bool]:
    """This gateway's execute extensions, either dialect: ``offset`` (resume a run from its
    n-th console item) and ``eager`` (answer as soon as output is there)."""
    offset = data.get("offset")
    if offset is not None and (isinstance(offset, bool) or not isinstance(offset, int)):
        raise params_problem("offset must be an integer")
    if offset is not None and offset < 0:
        raise params_problem("offset must be 0 or more")
    eager = data.get("eager", False)
    if not isinstance(eager, bool):
        raise params_problem("eager must be true or false")
    return offset, eager
