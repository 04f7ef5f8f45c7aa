"""Judges: canary vs baseline, second by second, with anytime-valid evidence.

Each judge is fed the same seconds of both arms (concurrent comparison: a before/after
comparison mixes the release with everything else that changed) and keeps two latched flags,
``failed`` and ``passed``. Both are arrays of the batch shape, so that the benchmark runs
hundreds of simulated analyses through this very code; ``result()`` describes a single one.

- :class:`FailureRateJudge`: failures, with :class:`~rollwise.analysis.evidence.RatioEProcess`
  for *worse* and per-arm rate confidence sequences for *no worse than the tolerance*.
- :class:`LatencyJudge`: per quantile ``q``, a request of the baseline is an event when it is
  slower than the baseline's running ``q`` quantile (from earlier seconds only, so that the
  threshold is fixed before the second it judges), and a request of the canary when it is
  slower than that threshold × (1 + tolerance). If the canary's latency is no worse than the
  baseline's scaled by (1 + tolerance), its event rate is no higher: the same ratio e-process
  then tests it, in both directions. Thresholding turns latency into counts, which makes the
  test exact on histograms, cheap, and as fast for a p99 shift as the events allow. The
  canary's first ``initialDelay`` seconds of traffic are skipped (cold processes are slow).
- :class:`Guardrails`: absolute limits on the canary alone, once it served ``minRequests``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from rollwise.analysis.evidence import RatioEProcess, quantile_band, rate_bounds
from rollwise.analysis.series import BUCKET_VALUES, GROWTH, NBUCKETS, ArmSecond
from rollwise.spec.models import AnalysisStep, ErrorRateJudge, LatencyJudge

__all__ = [
    "FailureRateJudge",
    "Guardrails",
    "JudgeResult",
    "LatencyJudgeRun",
    "Outcome",
]

Outcome = Literal["pass", "fail", "inconclusive"]
Bools = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class JudgeResult:
    """One judge's state for a person and for the record."""

    name: str
    outcome: Outcome
    dry_run: bool
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "outcome": self.outcome,
            "dry_run": self.dry_run,
            "summary": self.summary,
            "evidence": self.evidence,
        }


DEFAULT_ALPHA = 0.01


def _level(own: float | None, given: float | None) -> float:
    """A judge's level: what the analysis gives it, else its own, else the default."""
    if given is not None:
        return given
    return own if own is not None else DEFAULT_ALPHA


def _outcome(failed: Bools, passed: Bools) -> Outcome:
    if bool(failed):
        return "fail"
    return "pass" if bool(passed) else "inconclusive"


def _e(log_e: float) -> str:
    """An e-value for people: ``143``, ``8820``, ``3.1e+07``."""
    if log_e >= 690:
        return "1e300+"
    value = math.exp(log_e)
    return f"{value:.0f}" if value >= 10 and value < 1e6 else f"{value:.3g}"


def _r(x: float) -> float | None:
    return None if not math.isfinite(x) else round(x, 6)


class FailureRateJudge:
    """Failure rate of the canary against the baseline's over the same seconds.

    Fail: the ratio e-process shows canary > baseline × (1 + tolerance) at ``alpha``. Pass:
    one of the pass rules is shown at its share of ``alpha`` (``ErrorRateJudge``): the ratio
    e-process for canary ≤ baseline × (1 + passTolerance), the canary's rate confidence
    sequence below ``maxFailureRate``, or below the baseline's plus ``margin``.
    """

    name = "errorRate"
    # what the mixture pays over an oracle that knew the ratio, in nats (for estimates only)
    MIXTURE_COST = 3.0

    def __init__(
        self,
        spec: ErrorRateJudge,
        shape: tuple[int, ...] = (),
        alpha: float | None = None,
        name: str | None = None,
    ) -> None:
        self.spec = spec
        if name is not None:  # an agent metric: the same test of another ratio
            self.name = name
        self.alpha = _level(spec.alpha, alpha)
        self.worse = RatioEProcess("greater", 1.0 + spec.tolerance, shape)
        self.no_worse = RatioEProcess("less", 1.0 + spec.pass_tolerance, shape)
        self.rules = ["ratio"]
        if spec.max_failure_rate is not None:
            self.rules.append("cap")
        if spec.margin > 0:
            self.rules.append("margin")
        self.pass_alpha = self.alpha / len(self.rules)
        self.requests = np.zeros((2, *shape))  # canary, baseline; seconds both arms served
        self.failures = np.zeros((2, *shape))
        self.seconds = np.zeros(shape)  # seconds in which both arms served
        self.failed: Bools = np.zeros(shape, dtype=bool)
        self.passed: Bools = np.zeros(shape, dtype=bool)
        self.passed_by = np.full(shape, -1, dtype=np.int64)  # index into ``rules``

    def update(self, canary: ArmSecond, baseline: ArmSecond) -> None:
        spec = self.spec
        both = (canary.requests > 0) & (baseline.requests > 0)
        counts = (canary.failures, baseline.failures, canary.requests, baseline.requests)
        self.worse.update(*counts)
        self.no_worse.update(*counts)
        self.requests += np.where(both, [canary.requests, baseline.requests], 0)
        self.failures += np.where(both, [canary.failures, baseline.failures], 0)
        self.seconds += both
        self.failed |= self.worse.rejected(self.alpha)
        open_ = ~(self.failed | self.passed) & (self.requests[0] > 0)
        if not np.any(open_):
            return
        shown = [self.no_worse.rejected(self.pass_alpha)]
        if spec.max_failure_rate is not None:
            _, high = rate_bounds(self.requests[0], self.failures[0], self.pass_alpha, "upper")
            shown.append(high <= spec.max_failure_rate)
        if spec.margin > 0:  # two bounds at half the rule's share each (union bound)
            level = self.pass_alpha / 2
            _, high = rate_bounds(self.requests[0], self.failures[0], level, "upper")
            low, _ = rate_bounds(self.requests[1], self.failures[1], level, "lower")
            shown.append(high <= low + spec.margin)
        for index, rule in enumerate(shown):
            now = open_ & rule & (self.passed_by < 0)
            self.passed_by = np.where(now, index, self.passed_by)
        self.passed |= open_ & np.any(shown, axis=0)

    def result(self) -> JudgeResult:
        spec = self.spec
        (nc, nb), (fc, fb) = self.requests.tolist(), self.failures.tolist()
        rate_c = fc / nc if nc else math.nan
        rate_b = fb / nb if nb else math.nan
        lo_c, hi_c = (float(x) for x in rate_bounds(nc, fc, self.alpha / 2))
        lo_b, hi_b = (float(x) for x in rate_bounds(nb, fb, self.alpha / 2))
        ratio = rate_c / rate_b if rate_b else math.inf if rate_c else math.nan
        ratio_bounds = (lo_c / hi_b if hi_b else math.nan, hi_c / lo_b if lo_b else math.inf)
        log_e = float(self.worse.max_log_e)
        outcome = _outcome(self.failed, self.passed)
        own = self.name == FailureRateJudge.name  # else an agent metric's ratio
        what, unit = ("failure rate", "requests") if own else (f"{self.name} rate", "counts")
        if outcome == "fail":
            summary = (
                f"{what} {rate_c:.2%} vs {rate_b:.2%} "
                f"(e={_e(log_e)} ≥ {1 / self.alpha:g}; {int(fc)}/{int(nc)} vs {int(fb)}/{int(nb)})"
            )
        elif outcome == "pass":
            summary = f"{what} {rate_c:.2%} vs {rate_b:.2%}: " + self._pass_rule(hi_c)
        elif nc:
            summary = (
                f"{what} {rate_c:.2%} vs {rate_b:.2%} so far "
                f"({int(nc)} vs {int(nb)} {unit}, e={_e(log_e)}); {self.needs()}"
            )
        else:
            summary = f"no canary {unit} alongside the baseline yet"
        return JudgeResult(
            self.name,
            outcome,
            spec.dry_run,
            summary,
            {
                "e_value": _r(math.exp(min(log_e, 700.0))),
                "p_value": _r(float(self.worse.p_value)),
                "pass_e_value": _r(math.exp(min(float(self.no_worse.max_log_e), 700.0))),
                "alpha": self.alpha,
                "pass_alpha": self.pass_alpha,
                "tolerance": spec.tolerance,
                "pass_tolerance": spec.pass_tolerance,
                "pass_rules": self.rules,
                "passed_by": self.rules[int(self.passed_by)] if outcome == "pass" else None,
                "canary": {"requests": int(nc), "failures": int(fc), "rate": _r(rate_c)},
                "baseline": {"requests": int(nb), "failures": int(fb), "rate": _r(rate_b)},
                "canary_rate_bounds": [_r(lo_c), _r(hi_c)],
                "baseline_rate_bounds": [_r(lo_b), _r(hi_b)],
                "ratio": _r(ratio),
                "ratio_bounds": [_r(ratio_bounds[0]), _r(ratio_bounds[1])],
            },
        )

    def _pass_rule(self, high: float) -> str:
        spec, rule = self.spec, self.rules[int(self.passed_by)]
        if rule == "cap":
            return f"shown ≤ {spec.max_failure_rate:.2%} (maxFailureRate)"
        if rule == "margin":
            return f"shown ≤ the baseline's + {spec.margin:.2%} (margin)"
        e = _e(float(self.no_worse.max_log_e))
        return (
            f"shown ≤ {1 + spec.pass_tolerance:g}× the baseline's (e={e} ≥ {1 / self.pass_alpha:g})"
        )

    def needs(self) -> str:
        """What it would take to pass at the current traffic, for people."""
        (nc, nb), (fc, fb) = self.requests.tolist(), self.failures.tolist()
        target = 1 + self.spec.pass_tolerance
        if fc + fb == 0:
            cap = self.spec.max_failure_rate
            more = (
                "a rate cap (maxFailureRate) can pass on zero failures"
                if cap is None
                else f"maxFailureRate {cap:.2%} is the rule that can pass"
            )
            return f"no failures in either arm: a ratio cannot be shown yet; {more}"
        share = nc / (nc + nb)
        pooled = (fc + fb) / (nc + nb)
        null = share * target / (share * target + 1 - share)
        per_event = share * math.log(share / null) + (1 - share) * math.log(
            (1 - share) / (1 - null)
        )
        wanted = math.log(1 / self.pass_alpha) + self.MIXTURE_COST
        left = max(0.0, wanted - float(self.no_worse.log_e))
        requests = left / per_event * share / pooled  # canary requests that many events take
        seconds = float(self.seconds)
        rate = nc / seconds if seconds else 0.0
        when = f", ≈ {_duration(requests / rate)} at the current rate" if rate else ""
        return f"needs ≈ {requests:,.0f} more canary requests{when}, to tell {target:g}× from 1×"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _above(hist: NDArray[np.int64], index: NDArray[np.int64]) -> NDArray[np.int64]:
    """Per batch element, how many requests fell in buckets above ``index``."""
    cumulative = np.cumsum(hist, axis=-1)
    below = np.take_along_axis(cumulative, index[..., None], axis=-1)[..., 0]
    return np.asarray(cumulative[..., -1] - below)


class LatencyJudgeRun:
    """Latency of the canary against the baseline's, around each configured quantile."""

    # A threshold needs some baseline history; before that, seconds carry no latency evidence.
    WARMUP_REQUESTS = 20

    def __init__(
        self, spec: LatencyJudge, shape: tuple[int, ...] = (), alpha: float | None = None
    ) -> None:
        self.spec = spec
        self.quantiles = spec.quantiles
        self.judge_alpha = _level(spec.alpha, alpha)
        self.alpha = self.judge_alpha / len(self.quantiles)  # Bonferroni over quantiles
        self.shift = math.floor(math.log1p(spec.tolerance) / math.log(GROWTH) + 1e-9)
        self.baseline = np.zeros((*shape, NBUCKETS), dtype=np.int64)
        self.canary = np.zeros((*shape, NBUCKETS), dtype=np.int64)
        self.slower = [RatioEProcess("greater", 1.0, shape) for _ in self.quantiles]
        self.faster = [RatioEProcess("less", 1.0, shape) for _ in self.quantiles]
        self.events = np.zeros((len(self.quantiles), 2, *shape))
        self.failed: Bools = np.zeros(shape, dtype=bool)
        self.passed: Bools = np.zeros(shape, dtype=bool)
        self.seconds_with_canary = np.zeros(shape, dtype=np.int64)
        self._passed_each = np.zeros((len(self.quantiles), *shape), dtype=bool)

    @property
    def name(self) -> str:
        return "latency " + ",".join(f"p{q * 100:g}" for q in self.quantiles)

    def update(self, canary: ArmSecond, baseline: ArmSecond) -> None:
        both = (canary.requests > 0) & (baseline.requests > 0)
        self.seconds_with_canary += canary.requests > 0
        both &= self.seconds_with_canary > self.spec.initial_delay
        cumulative = np.cumsum(self.baseline, axis=-1)
        total = cumulative[..., -1]
        ready = both & (total >= self.WARMUP_REQUESTS)
        if np.any(ready):
            n_c = canary.hist.sum(axis=-1)
            n_b = baseline.hist.sum(axis=-1)
            for k, q in enumerate(self.quantiles):
                # the bucket holding the baseline's q quantile so far: its events are above it
                base_index = np.asarray(
                    np.sum(cumulative <= (q * total)[..., None], axis=-1), dtype=np.int64
                )
                base_index = np.minimum(base_index, NBUCKETS - 1)
                canary_index = np.minimum(base_index + self.shift, NBUCKETS - 1)
                ev_c = np.where(ready, _above(canary.hist, canary_index), 0)
                ev_b = np.where(ready, _above(baseline.hist, base_index), 0)
                exp_c = np.where(ready, n_c, 0)
                exp_b = np.where(ready, n_b, 0)
                self.slower[k].update(ev_c, ev_b, exp_c, exp_b)
                self.faster[k].update(ev_c, ev_b, exp_c, exp_b)
                self.events[k] += [ev_c, ev_b]
                self.failed |= self.slower[k].rejected(self.alpha)
                self._passed_each[k] |= self.faster[k].rejected(self.alpha)
            self.passed |= np.all(self._passed_each, axis=0) & ~self.failed
        self.baseline += np.where(both[..., None], baseline.hist, 0)
        self.canary += np.where(both[..., None], canary.hist, 0)

    def result(self) -> JudgeResult:
        outcome = _outcome(self.failed, self.passed)
        cum_c = np.cumsum(self.canary)
        cum_b = np.cumsum(self.baseline)
        per_quantile: list[dict[str, Any]] = []
        worst = ""
        for k, q in enumerate(self.quantiles):
            est_c, lo_c, hi_c = quantile_band(cum_c, BUCKET_VALUES, q, self.alpha / 2)
            est_b, lo_b, hi_b = quantile_band(cum_b, BUCKET_VALUES, q, self.alpha / 2)
            ratio = est_c / est_b if est_b and math.isfinite(est_b) else math.nan
            log_e = float(self.slower[k].max_log_e)
            label = f"p{q * 100:g}"
            line = (
                f"{label} {est_c * 1000:.1f} ms vs {est_b * 1000:.1f} ms"
                if math.isfinite(est_c) and math.isfinite(est_b)
                else f"{label}: no data yet"
            )
            if bool(self.slower[k].rejected(self.alpha)):
                worst = f"{line} (e={_e(log_e)} ≥ {1 / self.alpha:g})"
            per_quantile.append(
                {
                    "quantile": q,
                    "canary_s": _r(est_c),
                    "baseline_s": _r(est_b),
                    "canary_band_s": [_r(lo_c), _r(hi_c)],
                    "baseline_band_s": [_r(lo_b), _r(hi_b)],
                    "ratio": _r(ratio),
                    "ratio_bounds": [
                        _r(lo_c / hi_b if hi_b else math.nan),
                        _r(hi_c / lo_b if lo_b else math.inf),
                    ],
                    "e_value_slower": _r(math.exp(min(log_e, 700.0))),
                    "e_value_faster": _r(math.exp(min(float(self.faster[k].max_log_e), 700.0))),
                    "p_value": _r(float(self.slower[k].p_value)),
                    "events": {
                        "canary": int(self.events[k][0]),
                        "baseline": int(self.events[k][1]),
                    },
                }
            )
        lines = "; ".join(
            f"p{p['quantile'] * 100:g} {p['canary_s'] * 1000:.1f} ms vs "
            f"{p['baseline_s'] * 1000:.1f} ms"
            for p in per_quantile
            if p["canary_s"] is not None and p["baseline_s"] is not None
        )
        tolerance = f"+{self.spec.tolerance:.0%}"
        if outcome == "fail":
            summary = f"latency {worst}, tolerance {tolerance}"
        elif outcome == "pass":
            summary = f"latency {lines}: within {tolerance}"
        else:
            summary = f"latency {lines or 'no data yet'}"
        return JudgeResult(
            self.name,
            outcome,
            self.spec.dry_run,
            summary,
            {
                "alpha": self.judge_alpha,
                "tolerance": self.spec.tolerance,
                "quantiles": per_quantile,
            },
        )


class Guardrails:
    """An analysis step's absolute limits on the canary, applied past ``minRequests``."""

    name = "guardrails"

    def __init__(self, step: AnalysisStep, shape: tuple[int, ...] = ()) -> None:
        self.step = step
        self.requests = np.zeros(shape, dtype=np.int64)
        self.failures = np.zeros(shape, dtype=np.int64)
        self.hist = np.zeros((*shape, NBUCKETS), dtype=np.int64)
        self.failed: Bools = np.zeros(shape, dtype=bool)
        self.reason = ""

    def update(self, canary: ArmSecond) -> None:
        step = self.step
        self.requests += canary.requests
        self.failures += canary.failures
        self.hist += canary.hist
        enough = self.requests >= step.min_requests
        if not np.any(enough):
            return
        if step.max_error_rate is not None:
            rate = self.failures / np.maximum(self.requests, 1)
            over = enough & (rate > step.max_error_rate)
            if np.ndim(over) == 0 and bool(over) and not bool(self.failed):
                self.reason = (
                    f"failure rate {float(rate):.2%} > maxErrorRate {step.max_error_rate:.2%} "
                    f"({int(self.failures)}/{int(self.requests)})"
                )
            self.failed |= over
        if step.max_latency:
            cumulative = np.cumsum(self.hist, axis=-1)
            for q, limit in step.max_latency.items():
                index = np.sum(cumulative <= (q * cumulative[..., -1])[..., None], axis=-1)
                value = BUCKET_VALUES[np.minimum(index, NBUCKETS - 1)]
                over = enough & (value > limit)
                if np.ndim(over) == 0 and bool(over) and not bool(self.failed):
                    self.reason = (
                        f"p{q * 100:g} latency {float(value) * 1000:.0f} ms > maxLatency "
                        f"{limit * 1000:.0f} ms over {int(self.requests)} requests"
                    )
                self.failed |= over

    def result(self) -> JudgeResult:
        requests, failures = int(self.requests), int(self.failures)
        enough = requests >= self.step.min_requests
        outcome: Outcome = "fail" if bool(self.failed) else "pass" if enough else "inconclusive"
        summary = self.reason or (
            f"{failures}/{requests} failed; limits hold"
            if enough
            else f"only {requests} canary requests, minRequests is {self.step.min_requests}"
        )
        return JudgeResult(
            self.name,
            outcome,
            False,
            summary,
            {"requests": requests, "failures": failures, "min_requests": self.step.min_requests},
        )
