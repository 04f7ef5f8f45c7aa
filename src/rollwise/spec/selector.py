"""A Prometheus series selector as people write it in a spec: ``name{label="v",other!="w"}``.

Only what an agent's own counters need: a metric name and label matchers, exact (``=``),
negated (``!=``) or by regular expression (``=~``, ``!~``, matched whole, as Prometheus
does). A counter may be named with or without its ``_total`` suffix.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["SeriesSelector", "check_selector"]

_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
EXAMPLE = 'e.g. rollwise_toolkit_operations_total{operation="lookup",outcome="error"}'


@dataclass(frozen=True, slots=True)
class SeriesSelector:
    name: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, "=", "!=", "=~" or "!~", value)

    @staticmethod
    @functools.cache
    def parse(text: str) -> SeriesSelector:
        found = _SELECTOR.fullmatch(text.strip())
        if found is None:
            raise ValueError(f"{text!r} is not a series selector; write {EXAMPLE}")
        name, body = found.group(1), (found.group(2) or "").strip()
        matchers: list[tuple[str, str, str]] = []
        position = 0
        while position < len(body):
            matcher = _MATCHER.match(body, position)
            if matcher is None or matcher.end() == position:
                raise ValueError(
                    f"{text!r}: cannot read the labels from {body[position:]!r}; write "
                    f'label="value", label!="value", label=~"regex" or label!~"regex", '
                    f"separated by commas ({EXAMPLE})"
                )
            label, op, value = matcher.groups()
            value = value.replace('\\"', '"').replace("\\\\", "\\")
            if op in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as exc:
                    problem = f"{text!r}: {value!r} is not a regular expression: {exc}"
                    raise ValueError(problem) from None
            matchers.append((label, op, value))
            position = matcher.end()
        return SeriesSelector(name, tuple(matchers))

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        if name not in (self.name, f"{self.name}_total"):
            return False
        for label, op, value in self.matchers:
            have = labels.get(label, "")
            if op in ("=~", "!~"):
                if (_full(value).fullmatch(have) is not None) != (op == "=~"):
                    return False
            elif (have == value) != (op == "="):
                return False
        return True

    def __str__(self) -> str:
        inner = ",".join(f'{label}{op}"{value}"' for label, op, value in self.matchers)
        return f"{self.name}{{{inner}}}" if inner else self.name


@functools.cache
def _full(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def check_selector(text: str) -> str:
    """A pydantic validator: the text, once it reads as a selector."""
    SeriesSelector.parse(text)
    return text
