"""Good and total requests of one SLO, from the per-second counts every metric source gives.

Availability: good is every request that did not fail (``traffic.failureStatus``, connection
errors, timeouts). Latency: good is every request answered within the threshold, read from
the 2 % latency buckets: the bucket holding the threshold counts as good when its midpoint
is within it, so a request within 2 % of the threshold may count either way.
"""

from __future__ import annotations

from collections.abc import Mapping

from rollwise.analysis.source import SecondCounts, Series
from rollwise.routing.proxy.stats import bucket_index, bucket_value
from rollwise.spec.slo import Objective

__all__ = ["fold_seconds", "good_of"]


def good_of(objective: Objective, counts: SecondCounts) -> int:
    """How many of ``counts``' requests were good for ``objective``."""
    if objective.indicator == "availability":
        return counts.requests - counts.failures
    assert objective.threshold is not None
    limit = bucket_index(objective.threshold)
    if bucket_value(limit) > objective.threshold:
        limit -= 1
    return sum(n for index, n in counts.hist.items() if index <= limit)


def fold_seconds(
    objective: Objective, series: Series, first: int, end: int
) -> Mapping[tuple[int, int], tuple[int, int]]:
    """The seconds ``first`` ≤ s < ``end`` of ``series``, added up per row: (row start,
    revision) → (good, total)."""
    width = int(objective.resolution)
    rows: dict[tuple[int, int], tuple[int, int]] = {}
    for revision, seconds in series.items():
        for second, counts in seconds.items():
            if not first <= second < end or not counts.requests:
                continue
            key = (second - second % width, revision)
            good, total = rows.get(key, (0, 0))
            rows[key] = (good + good_of(objective, counts), total + counts.requests)
    return rows
