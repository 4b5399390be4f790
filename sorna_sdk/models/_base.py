"""The base of every response model: typed attributes plus a read-only wire view."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = ["RequestModel", "SornaModel"]


class SornaModel(BaseModel):
    """A frozen response model that keeps unknown fields.

    Attributes are the typed API (``info.num_queries_executed``). ``model[key]``,
    ``key in model`` and ``model.get(key)`` are a read-only view keyed by wire
    names that returns JSON-shaped values, as the original dict-based client did
    (``result['console'] == [['stdout', 'hi\\n']]``). Each lookup returns a fresh
    value; mutating it does not change the model.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="allow",
        frozen=True,
        defer_build=True,
    )

    def __getitem__(self, key: str) -> Any:
        name = self._field_name(key)
        if name is not None:
            return self.model_dump(mode="json", by_alias=True, include={name})[key]
        extra = self.__pydantic_extra__ or {}
        if key in extra:
            return copy.deepcopy(extra[key])
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return self._field_name(key) is not None or key in (self.__pydantic_extra__ or {})

    def get(self, key: str, default: Any = None) -> Any:
        """``self[key]``, or ``default`` when the response has no such wire name."""
        try:
            return self[key]
        except KeyError:
            return default

    def to_dict(self) -> dict[str, Any]:
        """The response as JSON-shaped data keyed by wire names."""
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def _field_name(cls, key: str) -> str | None:
        for name, info in cls.model_fields.items():
            if key == (info.alias or name):
                return name
        return None


class RequestModel(BaseModel):
    """A request body: wire names on output, unknown fields refused."""

    model_config: ClassVar[ConfigDict] = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
        defer_build=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON body by wire names."""
        return self.model_dump(mode="json", by_alias=True)
