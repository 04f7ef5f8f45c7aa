"""The proxy's latency histogram: any quantile read back is within 1 % of the exact one."""

from __future__ import annotations

import random

from rollwise.routing.proxy.stats import RevisionStats, bucket_index, bucket_value, quantile


def test_every_value_is_within_one_percent_of_its_bucket() -> None:
    rng = random.Random(7)
    for _ in range(20000):
        latency = 10 ** rng.uniform(-5, 2)  # 10 µs .. 100 s
        assert abs(bucket_value(bucket_index(latency)) - latency) / latency <= 0.01


def test_quantiles_match_exact_order_statistics() -> None:
    rng = random.Random(11)
    values = [rng.lognormvariate(-4.0, 1.0) for _ in range(50000)]
    stats = RevisionStats()
    for i, v in enumerate(values):
        stats.record(1000.0 + i / 1000, 200, v, failed=i % 100 == 0)
    hist: dict[int, int] = {}
    for bucket in stats.seconds.values():
        for index, count in bucket.hist.items():
            hist[index] = hist.get(index, 0) + count
    ordered = sorted(values)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        exact = ordered[int(q * (len(ordered) - 1))]
        got = quantile(hist, q)
        assert got is not None
        assert abs(got - exact) / exact <= 0.01, (q, got, exact)
    assert stats.requests_total == 50000
    assert stats.failures_total == 500
    assert quantile({}, 0.5) is None
