"""The other tools' judges, as the benchmark runs them on the same simulated streams.

Each one sees per-minute aggregates (what a Prometheus query at a 1-minute step returns) and
keeps a latched ``rolled_back`` flag and its time, batched over runs like rollwise's judges.

- Flagger: every minute, success rate ≥ 99 % and p99 ≤ the latency threshold, else one failed
  check; the count is never reset; rollback at ``threshold`` (5) failed checks. No data in a
  window counts as a failed check.
- Argo Rollouts: one measurement a minute with the same conditions; ``failureLimit: 0``, so the
  first failed measurement aborts. No data is inconclusive (skipped).
- Kayenta: per-minute points of failure rate, p50 and p99 latency; every 10 minutes, a
  Mann–Whitney (Hodges–Lehmann) confidence interval at confLevel 0.98 for each metric over all
  points so far; a metric is High when the interval's lower end exceeds tolerance (0.25) × the
  estimate (Kayenta's ``MannWhitneyClassifier``); any High metric drops the score below the
  marginal threshold (75) and rolls back.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from rollwise.analysis.series import BUCKET_VALUES, ArmSecond

__all__ = ["ArgoJudge", "FlaggerJudge", "KayentaJudge", "MinuteWindow"]

Floats = NDArray[np.float64]


def _quantile(hist: NDArray[np.int64], q: float) -> Floats:
    cumulative = np.cumsum(hist, axis=-1)
    total = cumulative[..., -1]
    index = np.sum(cumulative <= (q * total)[..., None], axis=-1)
    return np.where(total > 0, BUCKET_VALUES[np.minimum(index, len(BUCKET_VALUES) - 1)], np.nan)


class MinuteWindow:
    """Sums seconds into minutes; ``add`` returns True when a minute just completed."""

    def __init__(self, runs: int, buckets: int) -> None:
        self.requests = np.zeros(runs)
        self.failures = np.zeros(runs)
        self.hist = np.zeros((runs, buckets), dtype=np.int64)
        self.seconds = 0

    def add(self, arm: ArmSecond) -> bool:
        self.requests += arm.requests
        self.failures += arm.failures
        self.hist += arm.hist
        self.seconds += 1
        return self.seconds % 60 == 0

    def take(self) -> tuple[Floats, Floats, Floats, Floats]:
        """Failure rate, p50, p99 and request count of the minute; then start a new one."""
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(self.requests > 0, self.failures / self.requests, np.nan)
        out = (rate, _quantile(self.hist, 0.5), _quantile(self.hist, 0.99), self.requests.copy())
        self.requests[:] = 0
        self.failures[:] = 0
        self.hist[:] = 0
        return out


class _Threshold:
    """Shared by the Flagger and Argo judges: one check a minute on the canary alone."""

    def __init__(self, runs: int, latency_limit_s: float) -> None:
        self.limit = latency_limit_s
        self.failed_checks = np.zeros(runs, dtype=np.int64)
        self.rolled_back = np.zeros(runs, dtype=bool)
        self.at = np.full(runs, np.inf)

    def check(self, rate: Floats, p99: Floats) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """(failed, no data) per run for one minute."""
        no_data = np.isnan(rate)
        with np.errstate(invalid="ignore"):
            failed = ((1 - rate) < 0.99) | (p99 > self.limit)
        return failed & ~no_data, no_data


class FlaggerJudge(_Threshold):
    name = "Flagger-like"

    def __init__(self, runs: int, latency_limit_s: float, threshold: int = 5) -> None:
        super().__init__(runs, latency_limit_s)
        self.threshold = threshold

    def minute(self, t: float, rate: Floats, p99: Floats) -> None:
        failed, no_data = self.check(rate, p99)
        self.failed_checks += failed | no_data
        now = ~self.rolled_back & (self.failed_checks >= self.threshold)
        self.at = np.where(now, t, self.at)
        self.rolled_back |= now


class ArgoJudge(_Threshold):
    name = "Argo-like"

    def minute(self, t: float, rate: Floats, p99: Floats) -> None:
        failed, _ = self.check(rate, p99)
        now = ~self.rolled_back & failed
        self.at = np.where(now, t, self.at)
        self.rolled_back |= now


def hodges_lehmann_interval(
    canary: Floats, baseline: Floats, conf: float
) -> tuple[float, float, float]:
    """Mann–Whitney confidence interval of the shift canary − baseline (normal approximation)."""
    diffs = np.sort(np.subtract.outer(canary, baseline).ravel())
    m, n = len(canary), len(baseline)
    z = float(stats.norm.ppf(0.5 + conf / 2))
    k = math.floor(m * n / 2 - z * math.sqrt(m * n * (m + n + 1) / 12))
    k = max(k, 0)
    return (
        float(diffs[k]),
        float(np.median(diffs)),
        float(diffs[min(len(diffs) - 1, m * n - k - 1)]),
    )


class KayentaJudge:
    name = "Kayenta-like"

    def __init__(
        self, runs: int, conf: float = 0.98, tolerance: float = 0.25, every_min: int = 10
    ) -> None:
        self.conf = conf
        self.tolerance = tolerance
        self.every = every_min
        self.points: list[tuple[Floats, Floats]] = []  # per minute: (canary, baseline) metrics
        self.rolled_back = np.zeros(runs, dtype=bool)
        self.at = np.full(runs, np.inf)
        self.minutes = 0

    def minute(self, t: float, canary: Floats, baseline: Floats) -> None:
        """``canary``/``baseline``: (runs, metrics) values of the minute (NaN: no data)."""
        self.points.append((canary, baseline))
        self.minutes += 1
        if self.minutes % self.every:
            return
        c = np.stack([p[0] for p in self.points], axis=1)  # runs, minutes, metrics
        b = np.stack([p[1] for p in self.points], axis=1)
        for run in np.flatnonzero(~self.rolled_back):
            for metric in range(c.shape[2]):
                cv = c[run, :, metric]
                bv = b[run, :, metric]
                cv, bv = cv[~np.isnan(cv)], bv[~np.isnan(bv)]
                if len(cv) == 0 or len(bv) == 0 or np.array_equal(cv, bv):
                    continue  # Nodata, or identical: Pass
                low, estimate, _ = hodges_lehmann_interval(cv, bv, self.conf)
                if low > self.tolerance * abs(estimate):
                    self.rolled_back[run] = True
                    self.at[run] = t
                    break
