"""Every public field and attribute of the public classes has a docstring: what editors show
on hover and completion, and what the API reference renders.

The classes are those named in ``sorna_sdk.__all__``, ``sorna_sdk.models.__all__`` and
``sorna_sdk.local.__all__``. An attribute (pydantic, dataclass and named-tuple fields,
annotated or assigned class attributes, ``self.name`` set in ``__init__``, properties) is
documented when the class that declares it, or one of its bases from this package, has a
docstring under the declaration, or a docstring on the property or method of that name.
(The models do not set pydantic's ``use_attribute_docstrings``: parsing every model's
source at import would cost about 40 ms; editors and the reference read the source.)
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from types import ModuleType

import pydantic

import sorna_sdk
import sorna_sdk.local
import sorna_sdk.models

MODULES: tuple[ModuleType, ...] = (sorna_sdk, sorna_sdk.models, sorna_sdk.local)
#: Class-body names that are configuration, not API.
_NOT_ATTRIBUTES = frozenset({"model_config", "__slots__"})


def public_classes() -> list[type]:
    found: dict[str, type] = {}
    for module in MODULES:
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type) and value.__module__.startswith("sorna_sdk"):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[key] for key in sorted(found)]


def _own_sources(cls: type) -> list[ast.ClassDef]:
    """The class definitions of ``cls`` and of its bases from this package."""
    classes = [cls, *(k for k in cls.__mro__[1:] if k.__module__.startswith("sorna_sdk"))]
    found: list[ast.ClassDef] = []
    for klass in classes:
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        node = tree.body[0]
        assert isinstance(node, ast.ClassDef), klass
        found.append(node)
    return found


def _is_docstring(statement: ast.stmt | None) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
        and bool(statement.value.value.strip())
    )


def _target(statement: ast.stmt, in_init: bool) -> str | None:
    """The attribute a statement declares: ``name`` in a class body, ``self.name`` in
    ``__init__``."""
    target: ast.expr
    if isinstance(statement, ast.AnnAssign):
        target = statement.target
    elif isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
    else:
        return None
    if isinstance(target, ast.Name) and not in_init:
        return target.id
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and in_init:
        return target.attr if target.value.id == "self" else None
    return None


def documented_in_source(cls: type) -> tuple[set[str], set[str]]:
    """(the public attributes ``cls`` and its bases from this package declare, those of them
    with a docstring)."""
    declared: set[str] = set()
    documented: set[str] = set()
    for body in _own_sources(cls):
        functions = [node for node in body.body if isinstance(node, ast.FunctionDef)]
        blocks = [(body.body, False)] + [
            (node.body, True) for node in functions if node.name == "__init__"
        ]
        for block, in_init in blocks:
            for statement, following in zip(block, [*block[1:], None], strict=True):
                name = _target(statement, in_init)
                if name is None or name.startswith("_") or name in _NOT_ATTRIBUTES:
                    continue
                declared.add(name)
                if _is_docstring(following):
                    documented.add(name)
        for node in functions:
            if node.name.startswith("_"):
                continue
            is_property = any(
                isinstance(d, ast.Name) and d.id in ("property", "cached_property")
                for d in node.decorator_list
            )
            if is_property:
                declared.add(node.name)
            if ast.get_docstring(node):
                documented.add(node.name)
    return declared, documented


def undocumented(cls: type) -> list[str]:
    """The public fields and attributes of ``cls`` without a docstring, by name."""
    declared, documented = documented_in_source(cls)
    if dataclasses.is_dataclass(cls):
        declared.update(f.name for f in dataclasses.fields(cls) if not f.name.startswith("_"))
    fields: tuple[str, ...] = getattr(cls, "_fields", ())
    if issubclass(cls, tuple):  # a named tuple: its fields are declared in a base's body
        declared.update(name for name in fields if not name.startswith("_"))
    missing = declared - documented
    if issubclass(cls, pydantic.BaseModel):
        missing.update(name for name in cls.model_fields if name not in documented)
    return sorted(missing)


def test_every_public_attribute_has_a_docstring() -> None:
    missing = [
        f"{cls.__module__}.{cls.__qualname__}.{name}"
        for cls in public_classes()
        for name in undocumented(cls)
    ]
    assert not missing, (
        f"{len(missing)} public attributes have no docstring (add one on the line under each):\n"
        + "\n".join(missing)
    )


def test_the_check_sees_undocumented_attributes() -> None:
    class Example:
        documented: int = 1
        """Has one."""
        bare: int = 2
        plain = 3

        def __init__(self) -> None:
            self.also_bare = 4
            self.also_documented = 5
            """Has one too."""

        @property
        def described(self) -> int:
            """A property with a docstring."""
            return 1

        @property
        def silent(self) -> int:
            return 2

    assert undocumented(Example) == ["also_bare", "bare", "plain", "silent"]

    @dataclasses.dataclass
    class Data:
        documented: int
        """Has one."""
        bare: int

    assert undocumented(Data) == ["bare"]

    class Model(pydantic.BaseModel):
        documented: int
        """Has one."""
        bare: int

    assert undocumented(Model) == ["bare"]


def test_the_check_reads_named_tuple_fields_from_their_base() -> None:
    from sorna_sdk.models import TextItem

    declared, documented = documented_in_source(TextItem)
    assert {"type", "data", "text", "bundle"} <= declared & documented
    assert undocumented(TextItem) == []
