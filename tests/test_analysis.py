"""The statistics of ``rollwise.analysis`` against values computed independently: closed forms,
a direct re-computation with ``scipy.stats``, and seeded simulations of the null."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from bench.analysis.promotions import Cell, simulate
from bench.analysis.streams import Arm, Stream
from scipy import stats

from rollwise.analysis import AnalysisRun, ArmSecond, FailureRateJudge, LatencyJudgeRun
from rollwise.analysis.evidence import (
    LOG_WEIGHTS,
    PRIOR_A,
    PRIOR_B,
    RATIOS,
    RatioEProcess,
    rate_bounds,
)
from rollwise.analysis.replay import replay_file
from rollwise.spec import parse_spec
from rollwise.spec.models import AnalysisSettings, AnalysisStep, ErrorRateJudge, LatencyJudge


def test_ratio_e_process_matches_a_direct_mixture_of_binomial_likelihood_ratios() -> None:
    """The e-value after a few uneven seconds, recomputed from scipy's binomial pmf; the
    weights are a prior, so they must sum to one."""
    assert math.fsum(math.exp(w) for w in LOG_WEIGHTS) == pytest.approx(1.0)
    rng = np.random.default_rng(7)
    seconds = [
        (int(rng.integers(0, 6)), int(rng.integers(0, 6)), int(n_c), 100)
        for n_c in rng.integers(5, 60, 30)
    ]
    for direction, r0 in (("greater", 1.0), ("greater", 1.2), ("less", 1.0)):
        process = RatioEProcess(direction, r0)  # type: ignore[arg-type]
        for ec, eb, nc, nb in seconds:
            process.update(ec, eb, nc, nb)
        ratios = RATIOS if direction == "greater" else 1 / RATIOS
        total = 0.0
        for r, log_w in zip(ratios, LOG_WEIGHTS, strict=True):
            lr = 1.0
            for ec, eb, nc, nb in seconds:
                pi = nc / (nc + nb)
                null = pi * r0 / (pi * r0 + 1 - pi)
                alt = pi * r0 * r / (pi * r0 * r + 1 - pi)
                lr *= stats.binom.pmf(ec, ec + eb, alt) / stats.binom.pmf(ec, ec + eb, null)
            total += lr * math.exp(log_w)
        assert float(process.e_value) == pytest.approx(total, rel=1e-9)


def test_rate_bounds_match_the_closed_form_with_no_events() -> None:
    """With s = 0 the Beta(a=1, b) mixture gives log(b/(b+n)) − n·log(1−p) = log(1/α)."""
    assert PRIOR_A == 1.0
    for n in (10, 100, 1000, 10_000):
        alpha = 0.01
        closed = 1 - math.exp(-(math.log(1 / alpha) + math.log((PRIOR_B + n) / PRIOR_B)) / n)
        lower, upper = rate_bounds(n, 0, alpha)
        assert float(lower) == 0.0
        assert float(upper) == pytest.approx(closed, rel=1e-6)


def test_rate_bounds_cover_the_true_rate_at_every_look() -> None:
    """Simulated: a rate's bounds miss it at some second of 1000 in at most α of the runs."""
    rng = np.random.default_rng(11)
    runs, alpha, p = 2000, 0.05, 0.03
    n = np.zeros(runs)
    s = np.zeros(runs)
    missed = np.zeros(runs, dtype=bool)
    for _ in range(200):
        k = rng.poisson(5, runs)
        n += k
        s += rng.binomial(k, p)
        lo, hi = rate_bounds(n, s, alpha)
        missed |= (lo > p) | (hi < p)
    assert missed.mean() <= alpha


def _simulate(
    judge_of: type[FailureRateJudge] | type[LatencyJudgeRun],
    spec: ErrorRateJudge | LatencyJudge,
    canary: Arm,
    baseline: Arm,
    seconds: int,
    runs: int,
    seed: int,
    weights: list[float] | None = None,
) -> tuple[float, float]:
    """Share of runs that failed and that passed within ``seconds``."""
    rng = np.random.default_rng(seed)
    judge = judge_of(spec, (runs,))  # type: ignore[arg-type]
    for second in range(seconds):
        c_arm, b_arm = canary, baseline
        if weights is not None:  # the canary's weight changes every 60 s, total rate constant
            w = weights[(second // 60) % len(weights)]
            total = canary.rate + baseline.rate
            c_arm = Arm(total * w, canary.failure, canary.latency_scale, canary.tail_scale)
            b_arm = Arm(total * (1 - w), baseline.failure)
        judge.update(Stream(c_arm, runs, rng).next(), Stream(b_arm, runs, rng).next())
    return float(judge.failed.mean()), float(judge.passed.mean())


@pytest.mark.parametrize(("rate", "weights"), [(100, None), (10, None), (50, [0.1, 0.5, 0.25])])
def test_failure_judge_a_a_false_alarms_stay_below_alpha(
    rate: float, weights: list[float] | None
) -> None:
    """A/A for 5 minutes, even with weights moving between steps: false alarms ≤ α."""
    runs, alpha = 1000, 0.01
    failed, _ = _simulate(
        FailureRateJudge,
        ErrorRateJudge(alpha=alpha),
        Arm(rate, 0.02),
        Arm(rate, 0.02),
        300,
        runs,
        seed=int(rate),
        weights=weights,
    )
    # Monte-Carlo slack: three standard errors of a rate α over ``runs``
    assert failed <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs)


def test_latency_judge_a_a_and_at_the_tolerance_stay_below_alpha() -> None:
    runs, alpha = 300, 0.01
    slack = 3 * math.sqrt(alpha * (1 - alpha) / runs)
    spec = LatencyJudge(quantile=[0.5, 0.95], alpha=alpha, tolerance=0.1)
    failed, _ = _simulate(LatencyJudgeRun, spec, Arm(50), Arm(50), 150, runs, seed=3)
    assert failed <= alpha + slack
    # exactly as slow as the tolerance allows: still inside the null
    failed, _ = _simulate(
        LatencyJudgeRun, spec, Arm(50, latency_scale=1.1), Arm(50), 150, runs, seed=4
    )
    assert failed <= alpha + slack


def test_judges_catch_regressions_and_pass_healthy_canaries_quickly() -> None:
    """At 100 req/s per arm: 2× failures and +25 % latency fail within a minute; A/A passes."""
    runs = 100
    failed, passed = _simulate(
        FailureRateJudge, ErrorRateJudge(), Arm(100, 0.02), Arm(100, 0.01), 60, runs, seed=5
    )
    assert failed >= 0.9 and passed == 0.0
    failed, passed = _simulate(
        LatencyJudgeRun,
        LatencyJudge(quantile=0.5, initial_delay=0),
        Arm(100, latency_scale=1.25),
        Arm(100),
        30,
        runs,
        seed=6,
    )
    assert failed >= 0.9 and passed == 0.0
    # no failure in either arm: no ratio can be shown, but a rate cap can
    failed, passed = _simulate(
        FailureRateJudge, ErrorRateJudge(), Arm(100, 0.0), Arm(100, 0.0), 60, runs, seed=8
    )
    assert failed == 0.0 and passed == 0.0
    failed, passed = _simulate(
        FailureRateJudge,
        ErrorRateJudge(max_failure_rate=0.01),
        Arm(100, 0.0),
        Arm(100, 0.0),
        60,
        runs,
        seed=8,
    )
    assert failed == 0.0 and passed == 1.0


@pytest.mark.parametrize(
    ("canary", "baseline"),
    [(0.002, 0.001), (0.015, 0.01), (0.02, 0.01)],
    ids=["2x at 0.1%", "1.5x at 1%", "2x at 1%"],
)
def test_a_worse_canary_is_not_promoted(canary: float, baseline: float) -> None:
    """The pass must be proven: a canary at least passTolerance (50 %) worse passes in no
    more than 5 % of runs (α = 1 % at the boundary), over 15 minutes at 100 req/s per arm
    (where the rule of before, with its 1-point margin, passed 2× at 0.1 % within 30 s)."""
    _, passed = _simulate(
        FailureRateJudge,
        ErrorRateJudge(),
        Arm(100, canary),
        Arm(100, baseline),
        900,
        200,
        seed=int(canary * 1e5),
    )
    assert passed <= 0.05


@pytest.mark.parametrize(
    ("base", "canary"),
    [(0.001, "failures 2×"), (0.01, "failures 1.5×"), (0.01, "p95 1.5×")],
)
def test_until_pass_with_every_default_judge_promotes_no_worse_canary(
    base: float, canary: str
) -> None:
    """The whole ``until: pass`` step at the defaults (both judges, ``minRequests``) as the
    benchmark runs it: a worse canary advances in at most 5 % of runs within 20 minutes at 100
    req/s per arm, while an identical one passes in 5 minutes (median) at a 1 % baseline."""
    worse = simulate(Cell(base, 100.0, canary, runs=100, horizon=1200, seed=17))
    assert worse["rollwise"]["advanced"] <= 0.05, worse["rollwise"]
    if base == 0.01 and canary == "failures 1.5×":
        same = simulate(Cell(base, 100.0, "identical", runs=100, horizon=600, seed=18))
        assert same["rollwise"]["advance_median_s"] <= 300, same["rollwise"]
        assert same["rollwise"]["aborted"] <= 0.03, same["rollwise"]


def test_an_identical_canary_passes_in_minutes_with_a_reason_while_it_waits() -> None:
    """At a 1 % baseline and 100 req/s per arm the median pass takes ≈ 2 minutes (the goal
    is 5); until then the verdict says what it would take."""
    rng = np.random.default_rng(11)
    runs = 100
    judge = FailureRateJudge(ErrorRateJudge(), (runs,), 0.01)
    took = np.full(runs, np.inf)
    single = FailureRateJudge(ErrorRateJudge(), (), 0.01)
    for second in range(600):
        c, b = Stream(Arm(100, 0.01), runs, rng).next(), Stream(Arm(100, 0.01), runs, rng).next()
        judge.update(c, b)
        took = np.where(judge.passed & np.isinf(took), second + 1, took)
        if second < 30:  # one live analysis: arms of no batch shape
            one_c, one_b = (Stream(Arm(100, 0.01), 1, rng).next() for _ in range(2))
            single.update(
                ArmSecond(one_c.requests[0], one_c.failures[0], one_c.hist[0]),
                ArmSecond(one_b.requests[0], one_b.failures[0], one_b.hist[0]),
            )
    assert float(np.median(took)) <= 300 and float(np.mean(np.isfinite(took))) >= 0.95
    waiting = single.result()
    assert waiting.outcome == "inconclusive"
    assert re.search(
        r"needs ≈ [\d,]+ more canary requests, ≈ \d+ (s|min) at the current rate, "
        r"to tell 1.5× from 1×",
        waiting.summary,
    ), waiting.summary


def test_no_traffic_is_never_a_failure() -> None:
    step = AnalysisStep(until="pass", max_duration=60)
    run = AnalysisRun(AnalysisSettings(), step)
    for second in range(120):
        run.feed(second, ArmSecond.empty(), ArmSecond.empty())
    verdict = run.verdict(120)
    assert verdict.outcome == "inconclusive"
    assert "minRequests" in verdict.detail


def test_dry_run_judges_report_but_do_not_decide() -> None:
    settings = AnalysisSettings(error_rate=ErrorRateJudge(dry_run=True), latency=None)
    run = AnalysisRun(settings, AnalysisStep(until="duration", duration=30, min_requests=10))
    rng = np.random.default_rng(1)
    bad, good = Stream(Arm(100, 0.3), 1, rng), Stream(Arm(100, 0.01), 1, rng)
    for second in range(30):
        c, b = bad.next(), good.next()
        run.feed(
            second,
            ArmSecond(c.requests[0], c.failures[0], c.hist[0]),
            ArmSecond(b.requests[0], b.failures[0], b.hist[0]),
        )
    verdict = run.verdict(30)
    assert verdict.outcome == "pass"
    (judge,) = [j for j in verdict.judges if j.name == "errorRate"]
    assert judge.outcome == "fail" and judge.dry_run
    assert judge.evidence["e_value"] >= 100


def test_spec_reads_percentages_quantiles_and_refuses_nonsense() -> None:
    latency = LatencyJudge.model_validate({"quantile": ["p99", "50%"], "tolerance": "10%"})
    assert latency.quantiles == [0.99, 0.5]
    assert latency.tolerance == pytest.approx(0.1)
    step = AnalysisStep.model_validate({"maxLatency": {"p99": "500ms"}, "maxErrorRate": "2%"})
    assert step.max_latency == {0.99: 0.5} and step.max_error_rate == pytest.approx(0.02)
    for bad in ({"alpha": 0.7}, {"tolerance": "lots%"}, {"margin": 3}):
        with pytest.raises(ValueError, match=r"alpha|percentage|between 0 and 1"):
            ErrorRateJudge.model_validate(bad)


def _record(
    path: Path,
    canary_fail: float,
    seconds: int = 60,
    rate: int = 80,
    arms: tuple[str, str] = ("1", "2"),
    worse_from: int | None = None,
) -> None:
    """``arms``: baseline and canary revisions, the canary's lines first in each second; from
    ``worse_from`` on the canary fails 30 %."""
    rng = np.random.default_rng(2)
    lines = []
    for second in range(seconds):
        late = worse_from is not None and second >= worse_from
        for revision, fail in ((arms[1], 0.3 if late else canary_fail), (arms[0], 0.05)):
            for _ in range(rate):
                status = 500 if rng.random() < fail else 200
                latency = 5 * math.exp(0.3 * rng.standard_normal())
                lines.append(
                    {
                        "ts": 1_700_000_000 + second + rng.random(),
                        "app": "sample-agent",
                        "revision": revision,
                        "version": "x",
                        "status": status,
                        "latency_ms": round(latency, 3),
                    }
                )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_replay_judges_a_recorded_log_like_the_controller(tmp_path: Path) -> None:
    spec_text = (Path(__file__).parents[1] / "examples" / "rollwise.yaml").read_text()
    rollout = parse_spec(spec_text, "rollwise.yaml")
    bad = tmp_path / "bad.jsonl"
    _record(bad, canary_fail=0.10)
    result = replay_file(bad, rollout)
    assert (result.canary, result.baseline) == ("2", "1")
    assert result.verdict.outcome == "fail"
    fail = next(t for t in result.timeline if t.judge == "errorRate" and t.outcome == "fail")
    assert fail.elapsed < 60 and "e=" in fail.summary

    good = tmp_path / "good.jsonl"
    _record(good, canary_fail=0.05)
    assert replay_file(good, rollout).verdict.outcome != "fail"

    # the command: JSON out, exit 1 on Fail; a broken line says file:line
    spec_file = tmp_path / "rollwise.yaml"
    spec_file.write_text(spec_text)
    cli = [sys.executable, "-m", "rollwise", "analysis", "replay"]
    done = subprocess.run(
        [*cli, str(bad), "-f", str(spec_file), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["verdict"]["outcome"] == "fail"
    text = subprocess.run(
        [*cli, str(bad), "-f", str(spec_file)], capture_output=True, text=True, timeout=60
    )
    assert "verdict: fail" in text.stdout and "errorRate" in text.stdout
    bad.write_text(bad.read_text() + "not json\n")
    broken = subprocess.run(
        [*cli, str(bad), "-f", str(spec_file)], capture_output=True, text=True, timeout=60
    )
    assert broken.returncode == 2
    assert f"{bad}:{len(bad.read_text().splitlines())}" in broken.stderr
    assert "Traceback" not in broken.stderr
    assert yaml.safe_load(spec_text)["metadata"]["name"] == result.app


def test_replay_tells_the_decision_a_live_step_would_act_on(tmp_path: Path) -> None:
    """A canary as good as its baseline passes first (a live step advances there); later in
    the log it fails: the verdict is the pass, then what the rest showed. The default arms
    are the highest revision and the next one down, whichever the log shows first."""
    spec_text = (Path(__file__).parents[1] / "examples" / "rollwise.yaml").read_text()
    rollout = parse_spec(spec_text, "rollwise.yaml")
    log = tmp_path / "requests.jsonl"
    _record(log, canary_fail=0.05, seconds=300, arms=("2", "3"), worse_from=200)
    result = replay_file(log, rollout)
    assert (result.canary, result.baseline) == ("3", "2")
    assert result.verdict.outcome == "pass" and result.decided_at is not None
    assert result.decided_at < 200 and result.end.outcome == "fail"
    shown = result.as_json()
    assert shown["verdict"]["outcome"] == "pass" and shown["verdict"]["at_s"] == result.decided_at
    assert shown["end"]["outcome"] == "fail"
    spec_file = tmp_path / "rollwise.yaml"
    spec_file.write_text(spec_text)
    text = subprocess.run(
        [sys.executable, "-m", "rollwise", "analysis", "replay", str(log), "-f", str(spec_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert text.returncode == 0, text.stderr  # the decision was a pass
    assert f"verdict: pass at +{result.decided_at:.0f}s (a live step would advance here)" in (
        text.stdout
    )
    assert "then, by the end of the log: fail" in text.stdout


@pytest.mark.slow
def test_benchmark_smoke(tmp_path: Path) -> None:
    """A tiny run of bench/analysis: it runs, and writes its JSON, both tables and plot."""
    bench = Path(__file__).parents[1] / "bench" / "analysis" / "run.py"
    done = subprocess.run(
        [
            sys.executable,
            str(bench),
            "--runs",
            "4",
            "--horizon",
            "120",
            "--jobs",
            "1",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {c["scenario"] for c in report["cells"]} >= {"A/A", "failures 1% → 2%"}
    assert len(report["false_promotions"]) == 4 * 4 * 5  # bases × rates × canaries
    tables = (tmp_path / "analysis.md").read_text()
    assert "| A/A | 100 |" in tables
    assert "| 0.1 % | 1000 |" in tables and "Flagger-like, docs" in tables
    assert tables in done.stderr
    assert (tmp_path / "analysis.png").read_bytes().startswith(b"\x89PNG")
