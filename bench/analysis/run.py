"""Canary-analysis benchmark: rollwise's judges against Flagger-, Argo- and Kayenta-style ones.

Seeded simulated streams (``streams.py``) at 1, 10 and 100 requests per second per arm over a
60-minute horizon, ``--runs`` runs per cell, fed second by second to every judge at once:

- A/A: how many runs roll back a canary identical to its baseline (false rollbacks);
- regressions: failures 1 % → 2 % and 1 % → 1.2 %, median latency +25 %, p99 latency +50 %:
  how many runs roll back within the horizon, and how fast (median, p90);
- promotion: a healthy canary through steps 10 → 25 → 50 % with ``analysis: {until: pass}``
  after each, against fixed 5-minute pauses;
- false promotions (``promotions.py``): how often ``until: pass`` advances a canary whose
  failure rate or p95 latency is 1.5× or 2× the baseline's, at baseline failure rates from
  0.01 % to 10 % and 1 to 1000 req/s per arm, and how long an identical canary takes to pass.

rollwise runs its defaults: ``alpha: 0.01`` for the whole analysis, split between
``errorRate: {tolerance: 0%}`` and ``latency: {quantile: p95, tolerance: 10%, initialDelay:
10s}`` (0.005 each). The threshold judges use success rate ≥
99 % and p99 ≤ 1.2 × the baseline's true p99 (a tight but plausible SLO).

    .venv/bin/python bench/analysis/run.py [--runs 500] [--horizon 3600] [--jobs 2]

Prints JSON (the tables on stderr); writes bench/results/analysis.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.analysis import promotions  # noqa: E402
from bench.analysis.judges import ArgoJudge, FlaggerJudge, KayentaJudge, MinuteWindow  # noqa: E402
from bench.analysis.streams import MEDIAN_S, SIGMA, Arm, Stream  # noqa: E402

from rollwise.analysis.judges import FailureRateJudge, LatencyJudgeRun  # noqa: E402
from rollwise.spec.models import AnalysisSettings  # noqa: E402

RESULTS = ROOT / "bench" / "results"
RATES = (1.0, 10.0, 100.0)
BASE_FAILURE = 0.01
SCENARIOS: dict[str, Arm] = {
    "A/A": Arm(0, BASE_FAILURE),
    "failures 1% → 2%": Arm(0, 0.02),
    "failures 1% → 1.2%": Arm(0, 0.012),
    "median latency +25%": Arm(0, BASE_FAILURE, latency_scale=1.25),
    "p99 latency +50%": Arm(0, BASE_FAILURE, tail_scale=1.5),
}
JUDGES = ("rollwise", "Flagger-like", "Argo-like", "Kayenta-like")
TRUE_P99_S = MEDIAN_S * math.exp(SIGMA * 2.3263478740408408)
LATENCY_LIMIT_S = 1.2 * TRUE_P99_S


@dataclass
class Cell:
    scenario: str
    rate: float
    runs: int
    horizon: int
    seed: int


def simulate(cell: Cell) -> dict[str, Any]:
    """Every judge on the same streams of one cell; per judge, when each run rolled back."""
    rng = np.random.default_rng(cell.seed)
    shape = (cell.runs,)
    template = SCENARIOS[cell.scenario]
    canary_arm = Arm(cell.rate, template.failure, template.latency_scale, template.tail_scale)
    canary = Stream(canary_arm, cell.runs, rng)
    baseline = Stream(Arm(cell.rate, BASE_FAILURE), cell.runs, rng)
    settings = AnalysisSettings()
    assert settings.error_rate is not None
    assert settings.latency is not None
    failure = FailureRateJudge(
        settings.error_rate, shape, settings.judge_alpha(settings.error_rate)
    )
    latency = LatencyJudgeRun(settings.latency, shape, settings.judge_alpha(settings.latency))
    flagger = FlaggerJudge(cell.runs, LATENCY_LIMIT_S)
    argo = ArgoJudge(cell.runs, LATENCY_LIMIT_S)
    kayenta = KayentaJudge(cell.runs)
    window_c, window_b = MinuteWindow(cell.runs), MinuteWindow(cell.runs)
    rollwise_at = np.full(cell.runs, np.inf)
    started = time.perf_counter()
    for second in range(cell.horizon):
        c, b = canary.next(), baseline.next()
        failure.update(c, b)
        latency.update(c, b)
        failed = failure.failed | latency.failed
        rollwise_at = np.where(failed & np.isinf(rollwise_at), second + 1, rollwise_at)
        window_b.add(b)
        if window_c.add(c):
            t = float(second + 1)
            minute_c, minute_b = window_c.take(), window_b.take()
            flagger.minute(t, minute_c)
            argo.minute(t, minute_c)
            kayenta.minute(t, minute_c, minute_b)
        decided = all(np.all(j.rolled_back) for j in (flagger, argo, kayenta))
        if cell.scenario != "A/A" and np.all(np.isfinite(rollwise_at)) and decided:
            break  # everyone decided every run: the rest of the horizon changes nothing
    times = {
        "rollwise": rollwise_at,
        "Flagger-like": flagger.at,
        "Argo-like": argo.at,
        "Kayenta-like": kayenta.at,
    }
    return {
        "scenario": cell.scenario,
        "rate": cell.rate,
        "runs": cell.runs,
        "horizon_s": cell.horizon,
        "cpu_s": round(time.perf_counter() - started, 1),
        "judges": {name: _summary(t, cell.horizon) for name, t in times.items()},
        "times": {name: [float(x) for x in t if math.isfinite(x)] for name, t in times.items()},
    }


def _summary(at: np.ndarray[Any, Any], horizon: int) -> dict[str, Any]:
    hit = at[np.isfinite(at)]
    share = len(hit) / len(at)
    median = float(np.quantile(at, 0.5, method="higher"))
    p90 = float(np.quantile(at, 0.9, method="higher"))
    return {
        "rolled_back": round(share, 4),
        "median_s": median if math.isfinite(median) else None,
        "p90_s": p90 if math.isfinite(p90) else None,
        "mean_when_hit_s": round(float(hit.mean()), 1) if len(hit) else None,
    }


def promotion(
    rate: float, runs: int, seed: int, fixed_pause_s: float = 300.0, step_limit: int = 600
) -> dict[str, Any]:
    """A healthy canary through 10/25/50 % with ``until: pass`` after each step (fresh analysis
    per step, at most 10 minutes) against fixed pauses; ``rate`` is per arm at 50/50."""
    rng = np.random.default_rng(seed)
    total = 2 * rate
    settings = AnalysisSettings()
    assert settings.error_rate is not None
    assert settings.latency is not None
    elapsed = np.zeros(runs)
    unfinished = np.zeros(runs, dtype=bool)
    for weight in (0.10, 0.25, 0.50):
        canary = Stream(Arm(total * weight, BASE_FAILURE), runs, rng)
        baseline = Stream(Arm(total * (1 - weight), BASE_FAILURE), runs, rng)
        failure = FailureRateJudge(
            settings.error_rate, (runs,), settings.judge_alpha(settings.error_rate)
        )
        latency = LatencyJudgeRun(settings.latency, (runs,), settings.judge_alpha(settings.latency))
        took = np.full(runs, np.inf)
        for second in range(step_limit):
            c, b = canary.next(), baseline.next()
            failure.update(c, b)
            latency.update(c, b)
            done = failure.passed & latency.passed
            took = np.where(done & np.isinf(took), second + 1, took)
            if np.all(np.isfinite(took)):
                break
        unfinished |= np.isinf(took)
        elapsed += np.where(np.isfinite(took), took, step_limit)
    return {
        "rate": rate,
        "runs": runs,
        "adaptive_median_s": float(np.median(elapsed)),
        "adaptive_p90_s": float(np.quantile(elapsed, 0.9)),
        "inconclusive_share": round(float(unfinished.mean()), 4),
        "fixed_s": 3 * fixed_pause_s,
    }


def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Runs per cell: {report['runs']}, horizon {report['horizon_s'] // 60} min, "
        f"seed {report['seed']}, α = 0.01.",
        "",
        "| scenario | req/s per arm | " + " | ".join(JUDGES) + " |",
        "|---|---|" + "---|" * len(JUDGES),
    ]
    for cell in report["cells"]:
        row = [cell["scenario"], f"{cell['rate']:g}"]
        for name in JUDGES:
            j = cell["judges"][name]
            if cell["scenario"] == "A/A":
                row.append(f"false rollback {j['rolled_back']:.1%}")
            else:
                row.append(
                    f"{j['rolled_back']:.0%} caught; median {_fmt_time(j['median_s'])}"
                    f" (p90 {_fmt_time(j['p90_s'])})"
                )
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "| healthy canary, req/s per arm | adaptive steps: median (p90) | fixed 5-min pauses |"
        " inconclusive steps |",
        "|---|---|---|---|",
    ]
    for p in report["promotion"]:
        lines.append(
            f"| {p['rate']:g} | {_fmt_time(p['adaptive_median_s'])} "
            f"({_fmt_time(p['adaptive_p90_s'])}) | {_fmt_time(p['fixed_s'])} | "
            f"{p['inconclusive_share']:.1%} |"
        )
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [c for c in report["cells"] if c["scenario"] != "A/A" and c["rate"] == 100.0]
    fig, axes = plt.subplots(1, len(cells), figsize=(4 * len(cells), 4), sharey=True)
    for ax, cell in zip(np.atleast_1d(axes), cells, strict=True):
        data = [np.array(cell["times"][name]) / 60 for name in JUDGES]
        ax.boxplot([d if len(d) else [np.nan] for d in data], showfliers=False)
        ax.set_xticks(range(1, len(JUDGES) + 1), [n.replace("-like", "") for n in JUDGES])
        ax.set_title(f"{cell['scenario']}\n(100 req/s per arm)", fontsize=9)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("minutes to rollback (runs that rolled back)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--horizon", type=int, default=3600, help="seconds")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    cells = [
        Cell(s, r, args.runs, args.horizon, args.seed + 1000 * i + int(r))
        for i, s in enumerate(SCENARIOS)
        for r in RATES
    ]
    table2 = [
        promotions.Cell(base, rate, canary, args.runs, args.horizon, args.seed + 7919 * i)
        for i, (base, rate, canary) in enumerate(
            (b, r, c)
            for b in promotions.BASES
            for r in promotions.RATES
            for c in promotions.CANARIES
        )
    ]
    started = time.time()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(simulate, cells))
        false_promotions = list(pool.map(promotions.simulate, table2))
        limit = min(600, args.horizon)
        healthy = list(
            pool.map(
                promotion,
                (10.0, 100.0),
                (args.runs, args.runs),
                (args.seed, args.seed + 1),
                (300.0, 300.0),
                (limit, limit),
            )
        )
    report = {
        "runs": args.runs,
        "horizon_s": args.horizon,
        "seed": args.seed,
        "wall_s": round(time.time() - started, 1),
        "cells": results,
        "promotion": healthy,
        "false_promotions": false_promotions,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    brief = {**report, "cells": [{k: v for k, v in c.items() if k != "times"} for c in results]}
    (args.out / "analysis.json").write_text(json.dumps(brief, indent=1) + "\n")
    tables = markdown(report) + "\n" + promotions.markdown(false_promotions, args.runs, args.seed)
    (args.out / "analysis.md").write_text(tables)
    plot(report, args.out / "analysis.png")
    print(json.dumps(brief, indent=1))
    print(tables, file=sys.stderr)  # stdout stays one JSON document


if __name__ == "__main__":
    main()
