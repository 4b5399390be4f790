"""Reading the Python-repr strings some Backend.AI servers send instead of JSON objects.

``GET /session/{id}`` returns fields such as ``occupiedSlots`` as ``str(dict)``:
``"{'cpu': Decimal('1.000000'), 'mem': Decimal('1140850688.000000')}"``. This module
evaluates only literals (dicts, lists, tuples, strings, numbers, ``None``/``True``/``False``)
and ``Decimal('...')`` calls, never arbitrary code; anything else is left as the string.
"""

from __future__ import annotations

import ast
from decimal import Decimal, InvalidOperation
from typing import TypeAlias

__all__ = ["PyValue", "parse_repr"]

PyValue: TypeAlias = (
    "bool | int | float | str | Decimal | list[PyValue] | dict[str, PyValue] | None"
)

_MAX_LENGTH = 1 << 20


class _Unsupported(ValueError):
    pass


def parse_repr(text: str) -> PyValue:
    """Evaluate a Python literal repr; raise ``ValueError`` for anything else."""
    if len(text) > _MAX_LENGTH:
        raise ValueError("the repr is too long to parse")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, MemoryError, RecursionError) as exc:
        raise ValueError(f"not a Python literal: {exc}") from None
    try:
        return _value(tree.body)
    except RecursionError:
        raise ValueError("the repr is nested too deeply") from None


def _value(node: ast.expr) -> PyValue:
    if isinstance(node, ast.Constant):
        value = node.value
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise _Unsupported(f"unsupported constant {value!r}")
    if isinstance(node, ast.Dict):
        result: dict[str, PyValue] = {}
        for key, item in zip(node.keys, node.values, strict=True):
            if key is None:
                raise _Unsupported("dict unpacking is not a literal")
            name = _value(key)
            if not isinstance(name, str):
                raise _Unsupported("only string keys are supported")
            result[name] = _value(item)
        return result
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_value(item) for item in node.elts]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        operand = _value(node.operand)
        if isinstance(operand, (int, float, Decimal)) and not isinstance(operand, bool):
            return -operand
        raise _Unsupported("unary minus needs a number")
    if isinstance(node, ast.Call) and _is_decimal(node.func) and not node.keywords:
        if len(node.args) == 1 and isinstance(node.args[0], ast.Constant):
            argument = node.args[0].value
            if isinstance(argument, (str, int)) and not isinstance(argument, bool):
                try:
                    return Decimal(argument)
                except InvalidOperation:
                    raise _Unsupported(f"bad Decimal {argument!r}") from None
        raise _Unsupported("Decimal() takes one string or integer")
    raise _Unsupported(f"unsupported expression {type(node).__name__}")


def _is_decimal(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id == "Decimal"
    return isinstance(func, ast.Attribute) and func.attr == "Decimal"
