"""Griffe extension for the API reference: reStructuredText habits of the docstrings in Markdown.

The SDK's docstrings use reStructuredText roles (``:class:`~sorna_sdk.APIConfig```,
``:meth:`close```). Markdown has no such syntax, so this turns each role into an optional
cross-reference: a link where the target is on a reference page, plain code otherwise
(never a broken link, so ``mkdocs build --strict`` stays quiet). Doctest examples
(``>>>`` lines and their output) become ``pycon`` code blocks instead of Markdown quotes,
without their ``# doctest:`` directives. Loaded by mkdocs.yml.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

DIRECTIVE = re.compile(r"\s*# doctest:.*$")
ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|exc|data|obj|mod|const):`(~?)([^`<>]+?)`")


class SphinxRoles(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = _fence_doctests(_links(obj, obj.docstring.value))


def _walk(obj: griffe.Object) -> list[griffe.Object]:
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias:
            found.extend(_walk(member))  # type: ignore[arg-type]
    return found


def _links(obj: griffe.Object, text: str) -> str:
    return ROLE.sub(lambda match: _link(obj, match), text)


def _link(obj: griffe.Object, match: re.Match[str]) -> str:
    short, target = match.group(1) == "~", match.group(2).strip()
    title = target.rsplit(".", 1)[-1] if short else target.lstrip(".")
    identifier = _resolve(obj, target)
    code = f"<code>{title}</code>"
    if identifier is None:
        return code
    return f'<autoref identifier="{identifier}" optional>{code}</autoref>'


def _resolve(obj: griffe.Object, target: str) -> str | None:
    if target.startswith("sorna_sdk"):
        return target
    module = obj if obj.is_module else obj.module
    if target.startswith("."):
        base = module.path if module.is_package else module.path.rsplit(".", 1)[0]
        return f"{base}.{target.lstrip('.')}"
    head, _, rest = target.partition(".")
    try:
        resolved = obj.resolve(head)
    except griffe.NameResolutionError:
        return None
    return f"{resolved}.{rest}" if rest else resolved


def _fence_doctests(text: str) -> str:
    out: list[str] = []
    lines = text.split("\n")
    fenced = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if fenced or not line.lstrip().startswith(">>>"):
            out.append(line)
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        block: list[str] = []
        while i < len(lines) and lines[i].strip():
            block.append(DIRECTIVE.sub("", lines[i][indent:]))
            i += 1
        out.extend(["```pycon", *block, "```"])
    return "\n".join(out)
