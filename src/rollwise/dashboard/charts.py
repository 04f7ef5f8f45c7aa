"""The dashboard's charts: weights over a rollout, and an analysis' evidence second by second.

Weights are sampled once a second for the apps with a rollout in progress (set by the
controller, and as the data plane runs them). The evidence chart replays the newest analysis
run of an app through the same judges, fed the same seconds from the app's metric source,
and keeps each second's figures: the arms' failure rates, the latency quantile's estimates
with their time-uniform confidence bands, and the e-values on their way toward 1/α (the
line the test must cross to fail, or the pass rule to pass). A run is replayed once and then
fed only the seconds it has not seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollwise.analysis.run import AnalysisRun
    from rollwise.controller.controller import Controller

__all__ = ["Charts"]

KEEP_WEIGHTS = 3600  # one hour of seconds per app


@dataclass
class _Evidence:
    identity: tuple[Any, ...]
    run: AnalysisRun
    last: int
    points: dict[str, list[Any]] = field(default_factory=dict)
    threshold: float | None = None


class Charts:
    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.weights: dict[str, deque[tuple[float, int, int]]] = {}
        self.evidence: dict[str, _Evidence] = {}
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self._sample(), name="dashboard-weights")

    async def _sample(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a proxy restarting: the next second
                await self.sample_weights()
            await asyncio.sleep(1.0)

    async def sample_weights(self) -> None:
        controller = self.controller
        active = [
            (app, w.state.current)
            for app, w in list(controller.workers.items())
            if w.state.current.canary is not None
        ]
        if not active:
            return
        table = await controller.router.applied()
        now = time.time()
        for app, status in active:
            canary = status.canary
            applied = table.apps.get(app)
            actual = applied.weights().get(str(canary), 0) if applied and canary is not None else 0
            ring = self.weights.setdefault(app, deque(maxlen=KEEP_WEIGHTS))
            ring.append((now, status.weights.get(canary, 0) if canary is not None else 0, actual))

    def weight_chart(self, app: str) -> dict[str, list[Any]]:
        ring = list(self.weights.get(app, ()))
        return {
            "t": [p[0] for p in ring],
            "set": [p[1] for p in ring],
            "actual": [p[2] for p in ring],
        }

    async def evidence_chart(self, app: str) -> dict[str, Any] | None:
        """The newest analysis run of ``app``, second by second (``None``: none yet)."""
        rows = self.controller.store.analyses(app, limit=10)
        if not rows:
            return None
        row = max(rows, key=lambda r: r.started)
        worker = self.controller.worker(app)
        try:
            spec = worker.state.revision(row.revision).spec
        except Exception:
            return None
        settings = spec.analysis_settings
        identity = (row.key, row.revision, row.baseline, row.started)
        chart = self.evidence.get(app)
        if chart is None or chart.identity != identity:
            from rollwise.analysis.run import AnalysisRun
            from rollwise.spec.models import AnalysisStep

            chart = _Evidence(identity, AnalysisRun(settings, AnalysisStep()), int(row.started))
            self.evidence[app] = chart
        metrics = self.controller.providers.metrics
        end = int(time.time() - metrics.settle_s)
        if row.outcome in ("pass", "fail", "inconclusive"):
            end = min(end, int(row.updated) + 1)
        if chart.last + 1 < end:
            series = await metrics.seconds(app, chart.last + 1)
            for second in range(chart.last + 1, end):
                _feed(chart, series, row.revision, row.baseline, second)
            chart.last = end - 1
        return {
            "key": row.key,
            "kind": row.kind,
            "revision": row.revision,
            "baseline": row.baseline,
            "outcome": row.outcome,
            "detail": row.verdict.get("detail", ""),
            "threshold": chart.threshold,
            "points": chart.points,
        }


def _feed(chart: _Evidence, series: Any, canary: int, baseline: int | None, second: int) -> None:
    from rollwise.analysis.series import ArmSecond
    from rollwise.routing.proxy.stats import quantile

    c = series.get(canary, {}).get(second)
    b = series.get(baseline, {}).get(second) if baseline is not None else None
    chart.run.feed(second, ArmSecond.from_counts(c), ArmSecond.from_counts(b))
    verdict = chart.run.verdict(0.0)
    p = chart.points
    for name in (
        "t", "canary_rate", "baseline_rate", "canary_p95_ms", "baseline_p95_ms", "e_fail",
        "e_pass", "latency_q", "canary_q_ms", "canary_lo_ms", "canary_hi_ms", "baseline_q_ms",
        "baseline_lo_ms", "baseline_hi_ms", "e_slower",
    ):  # fmt: skip
        p.setdefault(name, [])
    p["t"].append(second)
    for arm, counts in (("canary", c), ("baseline", b)):
        rate = counts.failures / counts.requests if counts and counts.requests else None
        p[f"{arm}_rate"].append(rate)
        q95 = quantile(dict(counts.hist), 0.95) if counts and counts.requests else None
        p[f"{arm}_p95_ms"].append(q95 * 1000 if q95 is not None else None)
    errors = next((j for j in verdict.judges if j.name == "errorRate"), None)
    if errors is not None and errors.evidence.get("alpha"):
        chart.threshold = 1 / float(errors.evidence["alpha"])  # the judge's share of α
    p["e_fail"].append(errors.evidence.get("e_value") if errors else None)
    p["e_pass"].append(errors.evidence.get("pass_e_value") if errors else None)
    latency = next((j for j in verdict.judges if j.name.startswith("latency")), None)
    first = (latency.evidence.get("quantiles") or [{}])[0] if latency else {}

    def ms(value: Any) -> float | None:
        return value * 1000 if isinstance(value, int | float) else None

    p["latency_q"].append(first.get("quantile"))
    p["canary_q_ms"].append(ms(first.get("canary_s")))
    p["baseline_q_ms"].append(ms(first.get("baseline_s")))
    # no estimate yet (the judge's initial delay): no band either, though its bounds read 0
    band_c = first.get("canary_band_s") if first.get("canary_s") is not None else None
    band_b = first.get("baseline_band_s") if first.get("baseline_s") is not None else None
    band_c, band_b = band_c or [None, None], band_b or [None, None]
    p["canary_lo_ms"].append(ms(band_c[0]))
    p["canary_hi_ms"].append(ms(band_c[1]))
    p["baseline_lo_ms"].append(ms(band_b[0]))
    p["baseline_hi_ms"].append(ms(band_b[1]))
    p["e_slower"].append(first.get("e_value_slower"))
