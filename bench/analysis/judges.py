"""The other tools' judges, as the benchmark runs them on the same simulated streams.

Each one sees per-minute aggregates (what a Prometheus query at a 1-minute step returns) and
keeps a latched ``rolled_back`` flag and its time, batched over runs like rollwise's judges.

- Flagger: every ``interval`` (1 minute), success rate ≥ ``min_success`` and p99 ≤ the latency
  limit over the interval, else one failed check; the count is never reset; rollback at
  ``threshold`` failed checks. No data in an interval counts as a failed check.
- Argo Rollouts: one measurement every ``interval`` with the same conditions; the analysis fails
  when failed measurements exceed ``failureLimit`` (0: the first failed one aborts). No data is
  inconclusive (skipped).
- Kayenta: per-minute points of failure rate, p50 and p99 latency; every 10 minutes, a
  Mann–Whitney (Hodges–Lehmann) confidence interval at confLevel 0.98 for each metric over all
  points so far; a metric is High when the interval's lower end exceeds tolerance (0.25) × the
  estimate (Kayenta's ``MannWhitneyClassifier``); any High metric drops the score below the
  marginal threshold (75) and rolls back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from rollwise.analysis.series import BUCKET_VALUES, NBUCKETS, ArmSecond

__all__ = ["ArgoJudge", "FlaggerJudge", "KayentaJudge", "Minute", "MinuteWindow"]

Floats = NDArray[np.float64]


def _quantile(hist: NDArray[np.int64], q: float) -> Floats:
    cumulative = np.cumsum(hist, axis=-1)
    total = cumulative[..., -1]
    index = np.sum(cumulative <= (q * total)[..., None], axis=-1)
    return np.where(total > 0, BUCKET_VALUES[np.minimum(index, len(BUCKET_VALUES) - 1)], np.nan)


@dataclass(frozen=True)
class Minute:
    """Sums of one arm over a minute (or several), per run."""

    requests: Floats
    failures: Floats
    hist: NDArray[np.int64]

    @property
    def failure_rate(self) -> Floats:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.requests > 0, self.failures / self.requests, np.nan)

    def quantile(self, q: float) -> Floats:
        return _quantile(self.hist, q)

    def __add__(self, other: Minute) -> Minute:
        return Minute(
            self.requests + other.requests, self.failures + other.failures, self.hist + other.hist
        )


class MinuteWindow:
    """Sums seconds into minutes; ``add`` returns True when a minute just completed."""

    def __init__(self, runs: int) -> None:
        self.requests = np.zeros(runs)
        self.failures = np.zeros(runs)
        self.hist = np.zeros((runs, NBUCKETS), dtype=np.int64)
        self.seconds = 0

    def add(self, arm: ArmSecond) -> bool:
        self.requests += arm.requests
        self.failures += arm.failures
        self.hist += arm.hist
        self.seconds += 1
        return self.seconds % 60 == 0

    def take(self) -> Minute:
        """The minute's sums; the window then starts a new one."""
        minute = Minute(self.requests.copy(), self.failures.copy(), self.hist.copy())
        self.requests[:] = 0
        self.failures[:] = 0
        self.hist[:] = 0
        return minute


class _Threshold:
    """Shared by the Flagger and Argo judges: one check an interval on the canary alone.

    ``rollback_at`` failed checks roll back; ``no_data_fails`` says whether an interval
    without requests counts as a failed check (Flagger) or is skipped (Argo).
    """

    no_data_fails = False

    def __init__(
        self,
        runs: int,
        latency_limit_s: float | None,
        min_success: float,
        interval_min: int,
        rollback_at: int,
    ) -> None:
        self.limit = latency_limit_s
        self.min_success = min_success
        self.interval = interval_min
        self.rollback_at = rollback_at
        self.failed_checks = np.zeros(runs, dtype=np.int64)
        self.rolled_back = np.zeros(runs, dtype=bool)
        self.at = np.full(runs, np.inf)
        self.minutes = 0
        self.window: Minute | None = None

    def minute(self, t: float, canary: Minute) -> None:
        self.window = canary if self.window is None else self.window + canary
        self.minutes += 1
        if self.minutes % self.interval:
            return
        window, self.window = self.window, None
        rate = window.failure_rate
        no_data = np.isnan(rate)
        with np.errstate(invalid="ignore"):
            failed = (1 - rate) < self.min_success
            if self.limit is not None:
                failed |= window.quantile(0.99) > self.limit
        failed &= ~no_data
        self.failed_checks += (failed | no_data) if self.no_data_fails else failed
        now = ~self.rolled_back & (self.failed_checks >= self.rollback_at)
        self.at = np.where(now, t, self.at)
        self.rolled_back |= now


class FlaggerJudge(_Threshold):
    """``thresholdRange: {min: 99}`` on request-success-rate, ``max`` on request-duration."""

    no_data_fails = True

    def __init__(
        self,
        runs: int,
        latency_limit_s: float | None,
        threshold: int = 5,
        min_success: float = 0.99,
        interval_min: int = 1,
    ) -> None:
        super().__init__(runs, latency_limit_s, min_success, interval_min, threshold)


class ArgoJudge(_Threshold):
    """``successCondition: result[0] >= min_success``; aborts at failureLimit + 1 failures."""

    def __init__(
        self,
        runs: int,
        latency_limit_s: float | None,
        failure_limit: int = 0,
        min_success: float = 0.99,
        interval_min: int = 1,
    ) -> None:
        super().__init__(runs, latency_limit_s, min_success, interval_min, failure_limit + 1)


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


def _metrics(minute: Minute) -> Floats:
    """Kayenta's three metrics of a minute, (runs, 3): failure rate, p50, p99."""
    return np.stack([minute.failure_rate, minute.quantile(0.5), minute.quantile(0.99)], axis=1)


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

    def minute(self, t: float, canary: Minute, baseline: Minute) -> None:
        """One minute of both arms; every ``every_min`` minutes, a judgment of all so far."""
        self.points.append((_metrics(canary), _metrics(baseline)))
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
