"""Where the judges' numbers come from: per-revision, per-second requests, failures, latency.

A ``MetricSource`` answers, for one app, the whole seconds it knows since a moment: each
revision's requests, failures (as the app's ``traffic.failureStatus`` defines them) and a
latency histogram in the 2 %-wide buckets of ``routing/proxy/stats.py``. A second is
*whole* ``settle_s`` after it ended (the built-in proxy needs 1.25 s for every worker to have
counted it; a scraped Prometheus needs its scrape interval). The built-in proxy's statistics
are the first source (``analysis/proxy_source.py``); a Prometheus source is another module
with the same shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

__all__ = ["MetricSource", "NoTraffic", "SecondCounts", "Series", "merge_seconds"]


@dataclass(frozen=True, slots=True)
class SecondCounts:
    """One revision's counts in one second; ``outcomes``: its A2A exchanges that did not end
    plainly, ``"<method> <outcome>"`` → count (``a2a/outcomes.py``)."""

    requests: int = 0
    failures: int = 0
    hist: Mapping[int, int] = field(default_factory=dict)  # bucket index -> requests
    outcomes: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SecondCounts:
        return cls(
            int(data.get("requests", 0)),
            int(data.get("failures", 0)),
            {int(k): int(v) for k, v in data.get("hist", {}).items()},
            {str(k): int(v) for k, v in data.get("a2a", {}).items()},
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "requests": self.requests,
            "failures": self.failures,
            "hist": {str(k): v for k, v in self.hist.items()},
        }
        if self.outcomes:
            data["a2a"] = dict(self.outcomes)
        return data

    def __add__(self, other: SecondCounts) -> SecondCounts:
        return SecondCounts(
            self.requests + other.requests,
            self.failures + other.failures,
            _added(self.hist, other.hist),
            _added(self.outcomes, other.outcomes),
        )


K = TypeVar("K", int, str)


def _added(a: Mapping[K, int], b: Mapping[K, int]) -> dict[K, int]:
    out = dict(a)
    for key, count in b.items():
        out[key] = out.get(key, 0) + count
    return out


# revision number -> unix second -> counts
Series = dict[int, dict[int, SecondCounts]]


def merge_seconds(parts: Iterable[Series]) -> Series:
    """Add series of one app counted in several places (its listeners, the proxy workers)."""
    merged: Series = {}
    for part in parts:
        for revision, seconds in part.items():
            into = merged.setdefault(revision, {})
            for second, counts in seconds.items():
                into[second] = into[second] + counts if second in into else counts
    return merged


class MetricSource(Protocol):
    """Per-second, per-revision counts of one app's requests."""

    settle_s: float  # a second is whole this long after it ended

    async def seconds(self, app: str, since: int, *, preview: bool = True) -> Series:
        """Every second from ``since`` (unix seconds) on that the source holds, per revision;
        the latest ones may still be filling (see ``settle_s``). Without ``preview``, only
        the requests of the app's live listener (what its users see: its SLOs)."""


class NoTraffic:
    """A source with no counts: a cluster's gateway counts requests in Prometheus, not here,
    so without ``analysis.prometheus`` there is nothing to judge and the analysis stays
    inconclusive."""

    settle_s = 0.0

    async def seconds(self, app: str, since: int, *, preview: bool = True) -> Series:
        return {}
