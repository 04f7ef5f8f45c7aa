"""Durations as people write them in specs (``500ms``, ``30s``, ``2m``, ``1h30m``, ``28d``).

Stored as float seconds. A bare number is seconds, as in Argo's ``*Seconds`` fields.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

__all__ = ["Duration", "format_duration", "parse_duration"]

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Seconds from ``28d``, ``1h30m``, ``2m``, ``30s``, ``250ms`` or a non-negative number."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write e.g. 30s, 2m, 500ms")  # noqa: TRY004
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value} is negative; a duration is 0 or more")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        pos, total = 0, 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNIT[match.group(2)]
            pos = match.end()
        if text and pos == len(text):
            return total
    raise ValueError(f"{value!r} is not a duration; write e.g. 30s, 2m, 1h30m, 28d, 500ms")


def format_duration(seconds: float) -> str:
    """The shortest spec form of ``seconds`` (``90`` → ``1m30s``, ``1.5`` → ``1s500ms``,
    ``2419200`` → ``28d``),
    exact to the millisecond: stored specs go through it and must keep their values."""
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    whole, ms = divmod(millis, 1000)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = (f"{days}d" if days else "") + (f"{hours}h" if hours else "")
    out += f"{minutes}m" if minutes else ""
    out += f"{secs}s" if secs else ""
    return out + (f"{ms}ms" if ms or not out else "")


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
