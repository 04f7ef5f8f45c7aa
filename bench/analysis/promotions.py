"""False promotions: how often a step with ``until: pass`` advances a canary that is worse.

Per cell — a baseline failure rate (0.01 %, 0.1 %, 1 %, 10 %) and a rate per arm (1, 10, 100,
1000 req/s) — seeded runs of five canaries against the same baseline: an identical one, and
ones whose failure rate or p95 latency is 1.5× or 2× the baseline's (the latency ones slow
every request above the baseline's p90, so p95 and p99 move by the factor and the median not).

- rollwise, at its defaults, advances when every judge has passed (and ``minRequests``
  canary requests were seen) before any failed, and aborts when one fails first. It keeps
  judging for the whole horizon (60 minutes, as ``onInconclusive: wait`` would): a longer
  look can only find more false passes, so the share it shows bounds the default's, which
  stops at ``maxDuration`` (10 minutes) and pauses.
- The threshold judges run a 10-minute step: they advance when they did not roll back
  within it. Each runs as its docs' example configures it and at the setting of the first
  table; Kayenta's docs setting is the first table's (confLevel 0.98, tolerance 0.25, one
  judgment at the end of the step).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from bench.analysis.judges import ArgoJudge, FlaggerJudge, KayentaJudge, MinuteWindow
from bench.analysis.streams import MEDIAN_S, SIGMA, Arm, Stream

from rollwise.analysis.judges import FailureRateJudge, LatencyJudgeRun
from rollwise.spec.analysis import AnalysisSettings, AnalysisStep

__all__ = ["BASES", "CANARIES", "OTHERS", "RATES", "Cell", "markdown", "simulate"]

BASES = (0.0001, 0.001, 0.01, 0.1)
RATES = (1.0, 10.0, 100.0, 1000.0)
# name: (failure-rate factor, latency factor above the baseline's p90)
CANARIES: dict[str, tuple[float, float]] = {
    "identical": (1.0, 1.0),
    "failures 1.5×": (1.5, 1.0),
    "failures 2×": (2.0, 1.0),
    "p95 1.5×": (1.0, 1.5),
    "p95 2×": (1.0, 2.0),
}
WORSE = tuple(name for name in CANARIES if name != "identical")
STEP_S = 600
TRUE_P99_S = MEDIAN_S * math.exp(SIGMA * 2.3263478740408408)
# Flagger's docs: request-success-rate min 99 and request-duration max 500 ms, interval 1m,
# threshold 5. Argo's docs: success-rate >= 0.95, interval 5m, failureLimit 3. The first
# table: success rate ≥ 99 % and p99 ≤ 1.2 × the baseline's true p99, every minute;
# Flagger's threshold 5, Argo's failureLimit 0.
OTHERS = (
    "Flagger-like, docs",
    "Flagger-like, table 1",
    "Argo-like, docs",
    "Argo-like, table 1",
    "Kayenta-like",
)


@dataclass
class Cell:
    base: float
    rate: float
    canary: str
    runs: int
    horizon: int
    seed: int


def _others(runs: int) -> dict[str, Any]:
    return {
        "Flagger-like, docs": FlaggerJudge(runs, 0.5, threshold=5, min_success=0.99),
        "Flagger-like, table 1": FlaggerJudge(runs, 1.2 * TRUE_P99_S, threshold=5),
        "Argo-like, docs": ArgoJudge(runs, None, failure_limit=3, min_success=0.95, interval_min=5),
        "Argo-like, table 1": ArgoJudge(runs, 1.2 * TRUE_P99_S, failure_limit=0),
        "Kayenta-like": KayentaJudge(runs),
    }


def simulate(cell: Cell) -> dict[str, Any]:
    """Every judge on the same streams of one cell: when rollwise advanced or aborted each run,
    and whether each threshold judge rolled it back within the step."""
    rng = np.random.default_rng(cell.seed)
    factor, slower = CANARIES[cell.canary]
    canary = Stream(Arm(cell.rate, cell.base * factor, tail_scale=slower), cell.runs, rng)
    baseline = Stream(Arm(cell.rate, cell.base), cell.runs, rng)
    settings, step = AnalysisSettings(), AnalysisStep()
    assert settings.error_rate is not None
    assert settings.latency is not None
    shape = (cell.runs,)
    failure = FailureRateJudge(
        settings.error_rate, shape, settings.judge_alpha(settings.error_rate)
    )
    latency = LatencyJudgeRun(settings.latency, shape, settings.judge_alpha(settings.latency))
    others = _others(cell.runs)
    window_c, window_b = MinuteWindow(cell.runs), MinuteWindow(cell.runs)
    seen = np.zeros(cell.runs)
    advanced = np.full(cell.runs, np.inf)
    aborted = np.full(cell.runs, np.inf)
    step_s = min(STEP_S, cell.horizon)
    started = time.perf_counter()
    for second in range(1, cell.horizon + 1):
        c, b = canary.next(), baseline.next()
        failure.update(c, b)
        latency.update(c, b)
        seen += c.requests
        open_ = np.isinf(advanced) & np.isinf(aborted)
        failed = failure.failed | latency.failed
        passed = failure.passed & latency.passed & (seen >= step.min_requests) & ~failed
        aborted = np.where(open_ & failed, second, aborted)
        advanced = np.where(open_ & passed, second, advanced)
        if second <= step_s:
            window_b.add(b)
            if window_c.add(c):
                minute_c, minute_b = window_c.take(), window_b.take()
                for name, judge in others.items():
                    if name.startswith("Kayenta"):
                        judge.minute(second, minute_c, minute_b)
                    else:
                        judge.minute(second, minute_c)
        elif np.all(np.isfinite(advanced) | np.isfinite(aborted)):
            break  # every run decided, and the step of the others is over
    return {
        "base": cell.base,
        "rate": cell.rate,
        "canary": cell.canary,
        "runs": cell.runs,
        "horizon_s": cell.horizon,
        "step_s": step_s,
        "cpu_s": round(time.perf_counter() - started, 1),
        "rollwise": {
            "advanced": _share(advanced),
            "aborted": _share(aborted),
            "advance_median_s": _median(advanced),
            "abort_median_s": _median(aborted),
        },
        "others": {name: {"advanced": 1 - _share(j.at)} for name, j in others.items()},
    }


def _share(at: np.ndarray[Any, Any]) -> float:
    return round(float(np.mean(np.isfinite(at))), 4)


def _median(at: np.ndarray[Any, Any]) -> float | None:
    """The median over all runs; ``None`` when more than half never got there."""
    median = float(np.quantile(at, 0.5, method="higher"))
    return median if math.isfinite(median) else None


def _time(seconds: float | None, horizon: int) -> str:
    if seconds is None:
        return f"> {horizon // 60} min"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _pct(share: float) -> str:
    return f"{share:.1%}" if 0 < share < 0.1 else f"{share:.0%}"


def markdown(cells: list[dict[str, Any]], runs: int, seed: int) -> str:
    """Three tables: rollwise per cell; the others' false promotions; their false rollbacks."""
    by = {(c["base"], c["rate"], c["canary"]): c for c in cells}
    keys = sorted({(c["base"], c["rate"]) for c in cells})
    horizon = cells[0]["horizon_s"]
    lines = [
        f"Runs per cell: {runs}, seed {seed}; rollwise judges for up to {horizon // 60} min, "
        f"the others over a {cells[0]['step_s'] // 60}-minute step.",
        "",
        "rollwise (defaults): share of runs advanced by `until: pass`; for the worse canaries "
        "also the share aborted and the median time to abort.",
        "",
        "| baseline failures | req/s per arm | identical: passed, median time | identical: "
        "rolled back | " + " | ".join(WORSE) + " |",
        "|---|---|---|---|" + "---|" * len(WORSE),
    ]
    for base, rate in keys:
        same = by[(base, rate, "identical")]["rollwise"]
        row = [
            _base(base),
            f"{rate:g}",
            f"{_pct(same['advanced'])}, {_time(same['advance_median_s'], horizon)}",
            _pct(same["aborted"]),
        ]
        for name in WORSE:
            r = by[(base, rate, name)]["rollwise"]
            row.append(
                f"**{_pct(r['advanced'])}** promoted; {_pct(r['aborted'])} aborted, "
                f"{_time(r['abort_median_s'], horizon)}"
            )
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "The others, worse canaries advanced (false promotions), per canary: "
        + " / ".join(WORSE)
        + ".",
        "",
        "| baseline failures | req/s per arm | " + " | ".join(OTHERS) + " |",
        "|---|---|" + "---|" * len(OTHERS),
    ]
    for base, rate in keys:
        row = [_base(base), f"{rate:g}"]
        for judge in OTHERS:
            shares = [by[(base, rate, name)]["others"][judge]["advanced"] for name in WORSE]
            row.append(" / ".join(f"{s:.0%}" for s in shares))
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "The others, identical canaries rolled back (false rollbacks) within the step.",
        "",
        "| baseline failures | req/s per arm | " + " | ".join(OTHERS) + " |",
        "|---|---|" + "---|" * len(OTHERS),
    ]
    for base, rate in keys:
        same = by[(base, rate, "identical")]["others"]
        row = [_base(base), f"{rate:g}"]
        row += [f"{1 - same[judge]['advanced']:.0%}" for judge in OTHERS]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _base(base: float) -> str:
    return f"{base * 100:g} %"
