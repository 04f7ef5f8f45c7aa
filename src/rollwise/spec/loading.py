"""Loading and checking ``rollwise.yaml``: every problem is one line with file:line and path.

The line format is the one compilers taught everyone:
``rollwise.yaml:14: spec.strategy.canary.steps[1].setWeight: 140 is not in 0..100``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from rollwise.errors import SpecError, UsageError
from rollwise.spec.models import Rollout
from rollwise.spec.yaml_source import Located, dotted_path, load_yaml

__all__ = ["apply_overrides", "load_spec", "parse_spec", "spec_from_dict"]


def load_spec(path: str | Path) -> Rollout:
    """Read and validate a spec file; raises :class:`SpecError` with one line per problem."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([f"{file}: no such file; pass the spec with -f FILE"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([f"{file}: cannot read: {exc}"]) from None
    return parse_spec(text, str(file))


def parse_spec(text: str, file: str = "rollwise.yaml") -> Rollout:
    located = load_yaml(text, file)
    if not isinstance(located.data, dict):
        raise SpecError([f"{file}:1: a spec is a mapping that starts with apiVersion: rollwise/v1"])
    return _validate(located)


def spec_from_dict(data: dict[str, Any], file: str = "<stored spec>") -> Rollout:
    """Validate an already parsed spec (a stored revision, an API body)."""
    return _validate(Located(file=file, data=data))


def apply_overrides(spec: Rollout, sets: list[str]) -> Rollout:
    """Apply ``--set path=value`` (path under ``spec``, e.g. ``template.env.FOO=1``).

    Values are read as YAML scalars (``3`` is an int, ``true`` a bool) and the result is
    validated like a file, so a bad ``--set`` fails with the same kind of message.
    """
    data = spec.model_dump(
        mode="json", by_alias=True
    )  # nulls kept: `latency: null` turns a judge off
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {item!r}: write KEY=VALUE, e.g. template.env.LOG_LEVEL=debug")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        node: Any = data["spec"]
        parts = key.removeprefix("spec.").split(".")
        for part in parts[:-1]:
            child = node.get(part) if isinstance(node, dict) else None
            if child is None:
                child = {}
                node[part] = child
            if not isinstance(child, dict):
                raise UsageError(f"--set {item!r}: spec.{part} is not a mapping")
            node = child
        node[parts[-1]] = (
            value if parts[:1] != ["template"] or parts[1:2] != ["env"] else str(value)
        )
    return spec_from_dict(data, file="--set")


def _validate(located: Located) -> Rollout:
    try:
        return Rollout.model_validate(located.data)
    except ValidationError as exc:
        raise SpecError([_line(located, err) for err in exc.errors()]) from None


def _line(located: Located, err: ErrorDetails) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    line = located.line_of(loc)
    where = dotted_path(loc)
    msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    kind = err["type"]
    if kind == "extra_forbidden":
        msg = "unknown field; check the spelling (fields are camelCase, e.g. setWeight)"
    elif kind == "missing":
        msg = "required field is missing"
    elif kind == "literal_error":
        msg = f"{err['input']!r} is not allowed; {msg[0].lower()}{msg[1:]}"
    elif kind not in ("value_error", "assertion_error") and "input" in err:
        shown = repr(err["input"])
        if len(shown) > 40:
            shown = shown[:37] + "..."
        msg = f"{msg} (got {shown})"
    prefix = f"{located.file}:{line}" if located.file != "--set" else "--set"
    return f"{prefix}: {where}: {msg}"
