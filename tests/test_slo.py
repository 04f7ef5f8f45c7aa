"""SLOs in process: the burn-rate arithmetic against hand-computed figures, the spec's rules,
the keeper's alert states on a real store with an injected clock, and the Prometheus rules
checked and run in virtual time by ``promtool``."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from rollwise.analysis.source import SecondCounts
from rollwise.controller.events import Events
from rollwise.controller.slos import SloKeeper
from rollwise.errors import SpecError
from rollwise.routing.proxy.stats import bucket_index
from rollwise.slo import SloReport, burn_rate, good_of
from rollwise.slo.prometheus import rules
from rollwise.spec import parse_spec
from rollwise.spec.slo import DEFAULT_BURN_WINDOWS, Objective
from rollwise.store import Store

from .fakes import FakeClock, FakeMetrics
from .test_spec import GOOD

SLOS = """\
  slos:
    - {name: availability, indicator: availability, target: 99.9%, window: 30d}
    - {name: fast, indicator: latency, threshold: 300ms, target: 99%, window: 28d,
       runbook: "https://runbooks.example/fast"}
"""


def spec_with(extra: str) -> str:
    return GOOD.replace("  replicas: 2\n", "  replicas: 2\n" + extra)


# (target, bad, total, burn rate, budget remaining) — by hand: burn = bad/total / (1-target)
TABLE = [
    (0.999, 144, 10_000, 14.4, 1 - 14.4),  # the workbook's page threshold: 2 % of 30 d in 1 h
    (0.999, 60, 10_000, 6.0, -5.0),
    (0.999, 10, 10_000, 1.0, 0.0),  # exactly on budget
    (0.999, 5, 10_000, 0.5, 0.5),
    (0.99, 50, 1_000, 5.0, -4.0),
    (0.95, 0, 1_000, 0.0, 1.0),
    (0.999, 0, 0, 0.0, 1.0),  # no request: nothing burnt
]


@pytest.mark.parametrize(("target", "bad", "total", "burn", "left"), TABLE)
def test_burn_rate_and_budget_match_the_hand_computed_table(
    target: float, bad: int, total: int, burn: float, left: float
) -> None:
    ratio = bad / total if total else 0.0
    assert burn_rate(ratio, target) == pytest.approx(burn)
    objective = Objective(name="a", indicator="availability", target=target, window=30 * 86400)
    report = SloReport.evaluate(
        "app", objective, DEFAULT_BURN_WINDOWS, 1e9, lambda s: [(total - bad, total)] * len(s)
    )
    assert report.budget_remaining == pytest.approx(left)
    assert report.current_burn_rate == pytest.approx(burn)
    page = report.checks[0]
    assert page.window.burn_rate == 14.4
    assert page.active == (burn >= 14.4)
    assert [c.active for c in report.checks[1:]] == [burn >= 6, burn >= 1]


def test_an_alert_needs_both_windows() -> None:
    """A burst in the short window alone, or a long burn that has stopped, pages nobody."""
    objective = Objective(name="a", indicator="availability", target=0.999)
    windows = [DEFAULT_BURN_WINDOWS[0]]  # 1h / 5m at 14.4

    def sums(short_bad: int, long_bad: int) -> Any:
        # starts are sorted by window: 5m, 1h, 28d
        return lambda starts: [(1000 - short_bad, 1000), (10_000 - long_bad, 10_000), (0, 0)]

    burst = SloReport.evaluate("app", objective, windows, 1e9, sums(short_bad=100, long_bad=100))
    assert burst.checks[0].short_burn == pytest.approx(100) and not burst.checks[0].active
    over = SloReport.evaluate("app", objective, windows, 1e9, sums(short_bad=0, long_bad=1000))
    assert over.checks[0].long_burn == pytest.approx(100) and not over.checks[0].active
    both = SloReport.evaluate("app", objective, windows, 1e9, sums(short_bad=15, long_bad=145))
    assert both.checks[0].active


def test_latency_good_is_within_the_threshold() -> None:
    objective = Objective(name="l", indicator="latency", target=0.99, threshold=0.3)
    hist = {bucket_index(0.05): 90, bucket_index(0.29): 5, bucket_index(0.31): 3, 900: 2}
    assert good_of(objective, SecondCounts(100, 7, hist)) == 95  # failures do not matter
    available = Objective(name="a", indicator="availability", target=0.99)
    assert good_of(available, SecondCounts(100, 7, hist)) == 93


def test_slos_in_the_spec() -> None:
    spec = parse_spec(spec_with(SLOS)).spec
    assert [o.name for o in spec.slos] == ["availability", "fast"]
    assert spec.slos[0].target == pytest.approx(0.999) and spec.slos[0].window == 30 * 86400
    assert spec.slos[1].threshold == pytest.approx(0.3)
    assert [w.name for w in spec.alerting.windows] == ["1h/5m", "6h/30m", "3d/6h"]
    assert spec.error_budget_policy is None


@pytest.mark.parametrize(
    ("extra", "line", "where"),
    [
        (
            "  slos: [{name: l, indicator: latency, target: 99%}]\n",
            7,
            "spec.slos[0]: SLO l: a latency objective needs a threshold, e.g. threshold: 300ms",
        ),
        (
            "  slos: [{name: a, indicator: availability, target: 100%}]\n",
            7,
            "spec.slos[0].target: 1 is not a usable target; write e.g. 99.9% (below 100%)",
        ),
        (
            "  slos: [{name: a, indicator: availability, target: 99%, window: 5m}]\n",
            7,
            "spec.slos[0]: SLO a: window 5m holds fewer than 10 rows of 1m",
        ),
        ("  slos: [{name: a, indicator: errors, target: 99%}]\n", 7, "spec.slos[0].indicator"),
        (
            SLOS + "  errorBudgetPolicy: {slos: [latency]}\n",
            11,
            "spec.errorBudgetPolicy: slos names latency, not among the app's slos "
            "(availability, fast)",
        ),
        ("  errorBudgetPolicy: {}\n", 7, "errorBudgetPolicy needs slos to watch"),
        (
            SLOS + "  alerting: {windows: [{severity: page, long: 1h, short: 2h, burnRate: 2}]}\n",
            11,
            "spec.alerting.windows[0]: short window 2h must be shorter than the long window 1h",
        ),
        (
            SLOS + "  alerting: {alertmanager: 'localhost:9093'}\n",
            11,
            "spec.alerting.alertmanager: 'localhost:9093' is not an http(s) URL",
        ),
    ],
)
def test_bad_slos_are_one_line_with_their_place(extra: str, line: int, where: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(spec_with(extra), file="rollwise.yaml")
    problem = caught.value.problems[0]
    assert problem.startswith(f"rollwise.yaml:{line}: ") and where in problem, problem


# the keeper: a real store, the fake metric source, an injected clock

SCALED = """\
  slos:
    - {name: availability, indicator: availability, target: 99%, window: 10m, resolution: 1s,
       runbook: "check the canary"}
  alerting:
    windows:
      - {severity: page, long: 30s, short: 3s, burnRate: 14.4}
      - {severity: ticket, long: 2m, short: 10s, burnRate: 2, for: 20s}
  errorBudgetPolicy: {}
"""


class Keeper:
    def __init__(self, db: Path, clock: FakeClock, metrics: FakeMetrics) -> None:
        self.store = Store(db)
        self.spec = parse_spec(spec_with(SCALED)).spec
        self.events = Events(self.store, CollectorRegistry())
        self.keeper = SloKeeper(
            self.store,
            metrics,
            self.events,
            CollectorRegistry(),
            clock,
            lambda app: self.spec,
            lambda: ["web"],
        )

    def tick(self) -> None:
        asyncio.run(self.keeper.tick("web", self.spec))

    def kinds(self) -> list[tuple[str, str]]:
        rows = self.store.events("web")
        return [(e.kind, e.data.get("window", "")) for e in rows if e.kind.startswith("Alert")]


def serve(clock: FakeClock, metrics: FakeMetrics, seconds: int, failures: int) -> None:
    for _ in range(seconds):
        metrics.serve(1, int(clock.now), 100, failures)
        clock.advance(1)


def test_alerts_fire_once_wait_for_their_for_resolve_and_survive_a_restart(tmp_path: Path) -> None:
    clock, metrics = FakeClock(), FakeMetrics()
    k = Keeper(tmp_path / "state.db", clock, metrics)
    serve(clock, metrics, 40, failures=0)
    k.tick()
    assert k.kinds() == [] and k.keeper.refusal("web", k.spec) is None
    told: dict[str, float] = {}
    for _ in range(35):  # half the requests fail: burn 50x
        serve(clock, metrics, 1, failures=50)
        k.tick()
        for _, window in k.kinds():
            told.setdefault(window, clock.now)
    # each fired once; the ticket only after its 20 s in pending
    assert k.kinds() == [("AlertFiring", "30s/3s"), ("AlertFiring", "2m/10s")]
    ticket = next(r for r in k.store.alerts("web") if r.windows == "2m/10s")
    assert ticket.state == "firing" and told["2m/10s"] - ticket.since >= 20
    refusal = k.keeper.refusal("web", k.spec)
    assert refusal is not None and "error budget of SLO availability is spent" in refusal

    # a new controller on the same store: firing alerts are known, not told again
    k2 = Keeper(tmp_path / "state.db", clock, metrics)
    serve(clock, metrics, 1, failures=50)
    k2.tick()
    assert len(k2.kinds()) == 2
    serve(clock, metrics, 12, failures=0)
    k2.tick()
    assert k2.kinds()[2:] == [("AlertResolved", "30s/3s"), ("AlertResolved", "2m/10s")]
    k2.tick()
    assert len(k2.kinds()) == 4
    assert {r.state for r in k2.store.alerts("web")} == {"resolved"}
    resolved = next(e for e in k2.store.events("web") if e.kind == "AlertResolved")
    assert "runbook: check the canary" in resolved.message


def test_a_pending_alert_that_stops_burning_tells_nobody(tmp_path: Path) -> None:
    clock, metrics = FakeClock(), FakeMetrics()
    k = Keeper(tmp_path / "state.db", clock, metrics)
    for failures in [0] * 30 + [5] * 12 + [0] * 12:  # 5 % burns 5x: the ticket's 2x only
        serve(clock, metrics, 1, failures)
        k.tick()
    assert k.kinds() == []
    assert k.store.alerts("web") == []


def test_rows_are_folded_once_per_second_and_pruned_past_the_longest_window(
    tmp_path: Path,
) -> None:
    clock, metrics = FakeClock(), FakeMetrics()
    k = Keeper(tmp_path / "state.db", clock, metrics)
    serve(clock, metrics, 5, failures=1)
    k.tick()
    k.tick()  # nothing new: nothing added twice
    rows = k.store.sli_rows("web", 0)
    assert sum(r.total for r in rows) == 300 and sum(r.total - r.good for r in rows) == 3
    clock.advance(11 * 60)  # beyond the 10-minute window and the 2-minute alert window
    k.tick()
    assert k.store.sli_rows("web", 0) == []


@pytest.mark.skipif(shutil.which("promtool") is None, reason="Debian's prometheus (promtool)")
def test_generated_rules_pass_promtool_and_page_and_resolve_in_virtual_time(
    tmp_path: Path,
) -> None:
    spec = parse_spec(
        spec_with("  slos: [{name: availability, indicator: availability, target: 99.9%}]\n")
    ).spec
    (tmp_path / "rules.yml").write_text(rules("web", spec))
    (tmp_path / "alerts.yml").write_text(rules("web", spec, alerts_only=True))
    for name in ("rules.yml", "alerts.yml"):
        checked = subprocess.run(
            ["promtool", "check", "rules", str(tmp_path / name)], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    # 100 requests a minute; from minute 60 on, 10 of them fail (burn 100x) for 30 minutes
    series = {
        "rollwise_slo_requests_total": "0+100x130",
        "rollwise_slo_bad_requests_total": "0+0x60 10+10x29 300+0x40",
    }
    labels = {
        "alertname": "ErrorBudgetBurn",
        "app": "web",
        "slo": "availability",
        "sloth_id": "web-availability",
        "sloth_service": "web",
        "sloth_slo": "availability",
    }

    def alert(severity: str, long: str, short: str, rate: str) -> dict[str, Any]:
        return {
            "exp_labels": {
                **labels,
                "severity": severity,
                "sloth_severity": severity,
                "window": f"{long}/{short}",
            },
            "exp_annotations": {
                "summary": f"SLO availability of web burns its error budget at least {rate}x "
                f"over {long} and {short}",
                "title": f"{severity}: web availability error budget burn",
            },
        }

    fast, slow, ticket = (
        ("page", "1h", "5m", "14.4"),
        ("page", "6h", "30m", "6"),
        ("ticket", "3d", "6h", "1"),
    )
    expected = [
        ("55m", []),
        ("70m", [fast, slow, ticket]),  # ten minutes into a 100x burn: every window agrees
        ("100m", [slow, ticket]),  # ten minutes after it stopped, the 5-minute window is clean
        ("121m", [ticket]),  # and the 30-minute one; the ticket's 6 hours still burn
    ]
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'{name}{{app="web", slo="availability"}}', "values": values}
                    for name, values in series.items()
                ],
                "alert_rule_test": [
                    {
                        "eval_time": at,
                        "alertname": "ErrorBudgetBurn",
                        "exp_alerts": [alert(*a) for a in alerts],
                    }
                    for at, alerts in expected
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    run = subprocess.run(
        ["promtool", "test", "rules", str(tmp_path / "test.yml")], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_an_analysis_step_fails_while_the_app_burns_faster_than_its_max_burn_rate(
    tmp_path: Path,
) -> None:
    from rollwise.controller.judging import AppAnalyses
    from rollwise.spec.models import AnalysisSettings, AnalysisStep

    clock, metrics = FakeClock(), FakeMetrics()
    store = Store(tmp_path / "state.db")
    analyses = AppAnalyses("web", store, metrics, clock)
    burning = {"availability": (3.0, 300.0)}
    analyses.burn_rates = lambda: burning
    step = AnalysisStep(max_burn_rate=6)
    since = clock.now
    for second in range(5):
        metrics.serve(1, int(since) + 1 + second, 50)
        metrics.serve(2, int(since) + 1 + second, 50)
    clock.advance(8)

    def verdict() -> Any:
        return asyncio.run(
            analyses.judge("2/step1", "step 1", AnalysisSettings(), step, 2, 1, since)
        )

    assert verdict().outcome != "fail"
    burning["availability"] = (20.0, 300.0)
    failed = verdict()
    assert failed.outcome == "fail"
    assert failed.detail == (
        "SLO availability burns its error budget 20.0x over the last 5m, above the step's "
        "maxBurnRate 6x"
    )


def test_max_burn_rate_needs_slos() -> None:
    text = GOOD.replace("- pause: {duration: 30s}", "- analysis: {maxBurnRate: 6}")
    with pytest.raises(SpecError) as caught:
        parse_spec(text, file="rollwise.yaml")
    assert (
        "strategy.canary.steps[1].analysis.maxBurnRate watches the app's SLOs, and it has none"
        in (caught.value.problems[0])
    )
    assert parse_spec(
        spec_with(SLOS).replace("- pause: {duration: 30s}", "- analysis: {maxBurnRate: 6}")
    )


def test_the_benchmark_smoke() -> None:
    import json
    import sys

    run = subprocess.run(
        [sys.executable, "bench/slo/run.py", "--days", "1", "--no-write"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)["result"]
    assert result["rows"] == 2 * 1440 and result["store_bytes"] > 0
    assert "| 1 | 2 | 60 s | 2,880 |" in run.stderr
