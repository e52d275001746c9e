"""Load YAML keeping the line of every key and list item, so validation errors can name file and line.

The rules table and the configuration file both read their YAML here and word their validation problems
with ``validation_problems``: 'file:line: field: message'.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import RulesError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it: ten times faster

Path_ = tuple[str | int, ...]


class LineMap:
    """Line numbers (1-based) of every mapping key and sequence item, by path from the document root."""

    def __init__(self, lines: dict[Path_, int]) -> None:
        self._lines = lines

    def line_of(self, path: Path_) -> int:
        """Line of ``path`` or of its nearest ancestor that has one."""
        probe = tuple(path)
        while probe:
            line = self._lines.get(probe)
            if line is not None:
                return line
            probe = probe[:-1]
        return self._lines.get((), 1)


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            _walk(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines)


def load_yaml(text: str, source: str) -> tuple[Any, LineMap]:
    """Parse ``text``; a YAML syntax error becomes a RulesError naming the file and line."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise RulesError(source, [f"{source}:{line}: YAML syntax: {exc.problem or exc}"]) from None
    except yaml.YAMLError as exc:
        raise RulesError(source, [f"{source}: YAML: {exc}"]) from None
    lines: dict[Path_, int] = {(): 1}
    if node is not None:
        _walk(node, (), lines)
    return data, LineMap(lines)


def field_name(loc: Path_) -> str:
    """``code_rules[0].codes``: a path as the YAML author wrote it."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def validation_problems(exc: ValidationError, where: Callable[[Path_], str]) -> list[str]:
    """Each error as '<where(loc)>: field: message', ``where`` naming the place the value came from."""
    problems = []
    for err in exc.errors():
        loc = tuple(
            p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "tagged-")))
        )
        message = err["msg"].removeprefix("Value error, ")
        problems.append(f"{where(loc)}: {field_name(loc)}: {message}")
    return problems
