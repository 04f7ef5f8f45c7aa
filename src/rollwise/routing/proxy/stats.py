"""Per-revision, per-second request statistics: what canary analysis reads.

Latencies go into log-linear buckets whose bounds grow by 2 %, so any quantile read back is
within 1 % of the true value (HDR-histogram precision at a fraction of the code). A bucket is
an ``int`` key in a dict; at most a few hundred exist per second even under wide spreads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "GROWTH",
    "RETAIN_SECONDS",
    "STREAM_BOUNDS",
    "RevisionStats",
    "SecondBucket",
    "bucket_index",
    "bucket_value",
    "quantile",
]

GROWTH = 1.02
_INV_LOG_GROWTH = 1.0 / math.log(GROWTH)
_log = math.log
RETAIN_SECONDS = 900


def bucket_index(latency_s: float) -> int:
    """Bucket of a latency: index ``i`` holds ``[GROWTH**i, GROWTH**(i+1))`` microseconds."""
    micros = latency_s * 1e6
    return int(math.log(micros) * _INV_LOG_GROWTH) if micros > 1.0 else 0


def bucket_value(index: int) -> float:
    """Midpoint (geometric) of a bucket, in seconds: within 1 % of every value in it."""
    return float(GROWTH ** (index + 0.5)) / 1e6


def quantile(hist: dict[int, int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a histogram, in seconds; ``None`` when it is empty."""
    total = sum(hist.values())
    if not total:
        return None
    rank = q * (total - 1)
    seen = 0
    for index in sorted(hist):
        seen += hist[index]
        if seen > rank:
            return bucket_value(index)
    return bucket_value(max(hist))


@dataclass(slots=True)
class SecondBucket:
    requests: int = 0
    failures: int = 0
    hist: dict[int, int] = field(default_factory=dict)
    # A2A exchanges that did not end plainly: "<method> <outcome>" -> count
    outcomes: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = {"requests": self.requests, "failures": self.failures, "hist": self.hist}
        if self.outcomes:
            data["a2a"] = self.outcomes
        return data


# Prometheus-style upper bounds of a stream's whole duration, in seconds
STREAM_BOUNDS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class RevisionStats:
    """Counters of one revision of one app, kept per whole second for ``RETAIN_SECONDS``."""

    __slots__ = (
        "_current",
        "_second",
        "a2a",
        "failures_total",
        "requests_total",
        "seconds",
        "status",
        "streams",
    )

    def __init__(self) -> None:
        self.seconds: dict[int, SecondBucket] = {}
        self._second = -1
        self._current = SecondBucket()
        self.requests_total = 0
        self.failures_total = 0
        self.status: dict[int, int] = {}
        self.a2a: dict[str, int] = {}  # "<method> <outcome>" -> count, since the start
        # streams' whole durations: count per bucket of STREAM_BOUNDS (+Inf last), and the sum
        self.streams: list[float] = [0.0] * (len(STREAM_BOUNDS) + 2)

    def record(
        self, now: float, status: int, latency_s: float, failed: bool, outcome: str = ""
    ) -> None:
        """One request; ``outcome`` is an A2A exchange's ``"<method> <outcome>"``."""
        second = int(now)
        if second != self._second:
            self._rotate(second)
        cur = self._current
        cur.requests += 1
        self.requests_total += 1
        if failed:
            cur.failures += 1
            self.failures_total += 1
        micros = latency_s * 1e6  # bucket_index, inlined: this runs once per request
        index = int(_log(micros) * _INV_LOG_GROWTH) if micros > 1.0 else 0
        hist = cur.hist
        hist[index] = hist.get(index, 0) + 1
        self.status[status] = self.status.get(status, 0) + 1
        if outcome:
            self.a2a[outcome] = self.a2a.get(outcome, 0) + 1
            if not outcome.endswith(" ok"):
                cur.outcomes[outcome] = cur.outcomes.get(outcome, 0) + 1

    def stream(self, duration_s: float) -> None:
        """A streamed answer's whole duration (its latency for the judges is its first event)."""
        streams = self.streams
        index = next((i for i, b in enumerate(STREAM_BOUNDS) if duration_s <= b), -2)
        streams[index] += 1
        streams[-1] += duration_s

    def _rotate(self, second: int) -> None:
        self._second = second
        self._current = self.seconds.setdefault(second, SecondBucket())
        if len(self.seconds) > RETAIN_SECONDS:
            cutoff = second - RETAIN_SECONDS
            for old in [s for s in self.seconds if s < cutoff]:
                del self.seconds[old]

    def since(self, second: int) -> dict[int, SecondBucket]:
        return {s: b for s, b in self.seconds.items() if s >= second}
