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

    def as_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "failures": self.failures, "hist": self.hist}


class RevisionStats:
    """Counters of one revision of one app, kept per whole second for ``RETAIN_SECONDS``."""

    __slots__ = ("_current", "_second", "failures_total", "requests_total", "seconds", "status")

    def __init__(self) -> None:
        self.seconds: dict[int, SecondBucket] = {}
        self._second = -1
        self._current = SecondBucket()
        self.requests_total = 0
        self.failures_total = 0
        self.status: dict[int, int] = {}

    def record(self, now: float, status: int, latency_s: float, failed: bool) -> None:
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

    def _rotate(self, second: int) -> None:
        self._second = second
        self._current = self.seconds.setdefault(second, SecondBucket())
        if len(self.seconds) > RETAIN_SECONDS:
            cutoff = second - RETAIN_SECONDS
            for old in [s for s in self.seconds if s < cutoff]:
                del self.seconds[old]

    def since(self, second: int) -> dict[int, SecondBucket]:
        return {s: b for s, b in self.seconds.items() if s >= second}
