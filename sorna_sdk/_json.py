"""Narrowing decoded JSON (what ``json.loads`` returns) to concrete container types.

``isinstance(value, dict)`` alone leaves the key and value types unknown; a decoded JSON
object always has ``str`` keys, and its values are arbitrary JSON (``object``).
"""

from __future__ import annotations

from typing_extensions import TypeIs

__all__ = ["is_array", "is_object", "str_list"]


def is_object(value: object) -> TypeIs[dict[str, object]]:
    """Whether ``value`` is a decoded JSON object."""
    return isinstance(value, dict)


def is_array(value: object) -> TypeIs[list[object]]:
    """Whether ``value`` is a decoded JSON array."""
    return isinstance(value, list)


def str_list(value: object) -> list[str] | None:
    """``value`` as a new list when it is a JSON array of strings only, else ``None``."""
    if not is_array(value):
        return None
    strings = [item for item in value if isinstance(item, str)]
    return strings if len(strings) == len(value) else None
