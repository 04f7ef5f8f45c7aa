"""What the judges read: per-second counts and latency histograms of two arms.

The proxy keeps, per revision and per whole second, requests, failures and a log-linear latency
histogram (buckets 2 % wide, ``routing/proxy/stats.py``). The judges take them as dense numpy
arrays with an optional leading batch shape: one analysis in the controller, hundreds of
simulated ones in the benchmark, through the same code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rollwise.analysis.source import SecondCounts
from rollwise.routing.proxy.stats import GROWTH, bucket_index, bucket_value

__all__ = [
    "BUCKET_VALUES",
    "GROWTH",
    "NBUCKETS",
    "ArmSecond",
    "bucket_of",
]

# 2 % buckets from 1 µs: index 930 is 100 s, far beyond any timeout; slower lands in the last.
NBUCKETS = 940
BUCKET_VALUES: NDArray[np.float64] = np.array([bucket_value(i) for i in range(NBUCKETS)])


def bucket_of(latency_s: float) -> int:
    return min(bucket_index(latency_s), NBUCKETS - 1)


@dataclass(frozen=True, slots=True)
class ArmSecond:
    """One second of one arm (canary or baseline): shapes ``S``, ``S``, ``S + (NBUCKETS,)``;
    ``outcomes``: its A2A exchanges that did not end plainly (``"<method> <outcome>"`` →
    count), for the evidence (the judges count failures, which include the failing ones)."""

    requests: NDArray[np.int64]
    failures: NDArray[np.int64]
    hist: NDArray[np.int64]
    outcomes: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def empty(cls, shape: tuple[int, ...] = ()) -> ArmSecond:
        return cls(
            np.zeros(shape, dtype=np.int64),
            np.zeros(shape, dtype=np.int64),
            np.zeros((*shape, NBUCKETS), dtype=np.int64),
        )

    @classmethod
    def from_stats(cls, second: Mapping[str, Any] | None) -> ArmSecond:
        """From the ``/stats`` JSON of one second (``None``: no request that second)."""
        return cls.from_counts(SecondCounts.from_json(second) if second else None)

    @classmethod
    def from_counts(cls, counts: SecondCounts | None) -> ArmSecond:
        """From a metric source's counts of one second (``None``: no request that second)."""
        if counts is None or not counts.requests:
            return cls.empty()
        hist = np.zeros(NBUCKETS, dtype=np.int64)
        for index, count in counts.hist.items():
            hist[min(index, NBUCKETS - 1)] += count
        return cls(
            np.asarray(counts.requests, dtype=np.int64),
            np.asarray(counts.failures, dtype=np.int64),
            hist,
            counts.outcomes,
        )

    @classmethod
    def from_requests(
        cls,
        latencies_s: list[float],
        failed: list[bool],
        outcomes: Mapping[str, int] | None = None,
    ) -> ArmSecond:
        """From single requests (a replayed ``--record`` file)."""
        hist = np.zeros(NBUCKETS, dtype=np.int64)
        for latency in latencies_s:
            hist[bucket_of(latency)] += 1
        return cls(
            np.asarray(len(latencies_s), dtype=np.int64),
            np.asarray(sum(failed), dtype=np.int64),
            hist,
            outcomes or {},
        )
