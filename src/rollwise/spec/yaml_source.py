"""YAML loading that remembers where every value was written.

pydantic reports an error by field path (``spec.replicas``); a person needs the line. PyYAML's
node tree carries marks, so the document is composed once, turned into plain Python values,
and each path is mapped to its line on the way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from rollwise.errors import SpecError

__all__ = ["Located", "dotted_path", "load_yaml"]

PathKey = tuple[str | int, ...]


@dataclass
class Located:
    """A YAML document as plain values, with the line of each path (1-based)."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: PathKey) -> int:
        """The line of ``path``, or of its closest ancestor that was written."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(path[:cut])
            if line is not None:
                return line
        return 1


def load_yaml(text: str, file: str) -> Located:
    """Parse one YAML document; syntax errors and duplicate keys become a :class:`SpecError`."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(
            [f"{file}:{line}: YAML syntax: {problem}; check indentation, colons and quotes"]
        ) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise SpecError(
            [
                f"{file}:{line}: YAML: character {exc.character!r} (#x{ord(exc.character):04x}) "
                "is not allowed; remove it (control characters cannot appear in YAML)"
                if isinstance(exc.character, str)
                else f"{file}:{line}: YAML: the file is not valid text ({exc.reason})"
            ]
        ) from None
    except yaml.YAMLError as exc:
        one_line = " ".join(str(exc).split())
        raise SpecError([f"{file}:1: YAML: {one_line}"]) from None
    located = Located(file=file, data=None)
    if node is None:
        raise SpecError(
            [f"{file}:1: the file is empty; a spec starts with apiVersion: rollwise/v1"]
        )
    constructor = yaml.SafeLoader("")
    try:
        located.data = _build(node, (), located, constructor)
    except yaml.MarkedYAMLError as exc:  # a tag nothing constructs (``!x``, ``=``)
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        raise SpecError(
            [f"{file}:{line}: YAML: {problem}; quote the value if it is meant as text"]
        ) from None
    return located


def _build(node: yaml.Node, path: PathKey, out: Located, ctor: yaml.SafeLoader) -> Any:
    out.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = ctor.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                raise SpecError(
                    [f"{out.file}:{key_node.start_mark.line + 1}: a key must be a plain value"]
                )
            child = (*path, str(key))
            if key in result:
                line = key_node.start_mark.line + 1
                raise SpecError(
                    [f"{out.file}:{line}: {dotted_path(child)}: duplicate key; keep only one"]
                )
            result[key] = _build(value_node, child, out, ctor)
            out.lines[child] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), out, ctor) for i, item in enumerate(node.value)]
    return ctor.construct_object(node, deep=True)


def dotted_path(path: PathKey) -> str:
    """``spec.steps[0].setWeight``; a key that is not a plain word is quoted, so that a
    message stays one line whatever the key holds."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        name = str(part)
        if not name.isprintable() or not name or any(c in name for c in ".[] "):
            name = repr(name)
        text += f".{name}" if text else name
    return text or "(document)"
