"""What every spec model shares: strict camelCase models, status codes, argv placeholders."""

from __future__ import annotations

import re
import string
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = ["NAME_RE", "Model", "http_url", "name_label", "placeholders", "status_code"]

# an app's, an SLO's name: a DNS label, as Kubernetes names its objects
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class Model(BaseModel):
    """Frozen, camelCase in YAML, and unknown fields refused: a typo must fail loudly rather
    than be ignored."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        str_strip_whitespace=True,
    )


_STATUS_RE = re.compile(r"^([1-5]xx|[1-5][0-9][0-9])$")


def status_code(value: object) -> str:
    """A status code (YAML reads ``429`` as a number) or a class such as ``5xx``."""
    text = str(value).strip().lower()
    if isinstance(value, bool) or not _STATUS_RE.match(text):
        raise ValueError(f"{value!r} is not a status code or class; write e.g. 200 or 5xx")
    return text


def name_label(what: str, example: str) -> Callable[[str], str]:
    """A validator: a DNS label (lowercase letters, digits, '-'; at most 63)."""

    def check(value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(
                f"{value!r} is not a valid {what}; use lowercase letters, digits and '-' "
                f"(at most 63, starting and ending with a letter or digit), e.g. {example}"
            )
        return value

    return check


def http_url(example: str) -> Callable[[str], str]:
    """A validator: an http(s) URL."""

    def check(value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL; write e.g. {example}")
        return value

    return check


def placeholders(allowed: frozenset[str]) -> Callable[[str], str]:
    """A validator: ``{name}`` placeholders in a string must be among ``allowed``."""

    def check(value: str) -> str:
        for _, name, _, _ in string.Formatter().parse(value.replace("{{", "").replace("}}", "")):
            if name is not None and name not in allowed:
                names = ", ".join("{" + f + "}" for f in sorted(allowed))
                raise ValueError(f"unknown placeholder {{{name}}}; allowed: {names}")
        return value

    return check
