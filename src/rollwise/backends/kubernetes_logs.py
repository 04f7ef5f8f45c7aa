"""A pod's log through the API server (``pods/NAME/log``, what ``kubectl logs`` reads):
the crashed container's last lines for an abort's message, and ``rollwise logs`` of a
cluster app, followed by asking again for the lines after the newest one seen.

The kubelet stamps each line (``timestamps=true``) with RFC 3339 time to the nanosecond;
``sinceTime`` only takes whole seconds, so lines of the second already shown come again and
are dropped here by their stamp.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence

import httpx

from rollwise.errors import BackendError

__all__ = ["LogLine", "follow", "read_pod_log", "stamp_nanos"]

LogLine = tuple[str, str]  # (the kubelet's RFC 3339 stamp, the line)

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")


def stamp_nanos(stamp: str) -> tuple[str, int]:
    """A stamp as (whole seconds, nanoseconds): comparable, which the text is not (Go trims
    trailing zeros of the fraction)."""
    found = _STAMP.match(stamp)
    if found is None:
        raise ValueError(f"{stamp!r} is not an RFC 3339 UTC time")
    return found[1], int((found[2] or "0").ljust(9, "0"))


async def read_pod_log(
    http: httpx.AsyncClient,
    namespace: str,
    pod: str,
    *,
    tail: int | None = None,
    since: str | None = None,
    previous: bool = False,
) -> list[LogLine]:
    """The pod's (first container's) lines: its last ``tail``, or those after the stamp
    ``since``; ``previous``: the container that exited before this one."""
    params: dict[str, str | int] = {"timestamps": "true"}
    if previous:
        params["previous"] = "true"
    if since is not None:
        params["sinceTime"] = stamp_nanos(since)[0] + "Z"
    elif tail is not None:
        params["tailLines"] = tail
    path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
    try:
        answer = await http.get(path, params=params)
    except httpx.HTTPError as exc:
        raise BackendError(f"pod {namespace}/{pod}: its log could not be read: {exc}") from None
    if answer.status_code != 200:
        try:
            said = str(answer.json().get("message", ""))
        except ValueError:
            said = answer.text[:200]
        hint = "; the controller needs get on pods/log" if answer.status_code == 403 else ""
        raise BackendError(f"pod {namespace}/{pod}: its log: {said or answer.status_code}{hint}")
    lines = []
    for text in answer.text.splitlines():
        stamp, _, line = text.partition(" ")
        lines.append((stamp, line) if _STAMP.match(stamp) else ("", text))
    if since is not None:
        after = stamp_nanos(since)
        lines = [(s, line) for s, line in lines if not s or stamp_nanos(s) > after]
    return lines


def follow(
    since: dict[str, str], found: Iterable[tuple[str, Sequence[Sequence[str]]]]
) -> list[tuple[str, str]]:
    """The (pod, line) pairs to show of what a read found (pod, its (stamp, line) pairs),
    with ``since`` moved to each pod's newest stamp for the next read. A line without a
    stamp says why a pod's log is unreadable: ``since`` then moves to now, so it is said
    once."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    shown = []
    for pod, lines in found:
        for stamp, line in lines:
            shown.append((pod, line))
            since[pod] = stamp or since.get(pod) or now
    return shown
