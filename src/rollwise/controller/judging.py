"""The analysis runs of one app, fed second by second from its metric source.

A run lives in memory and is fed only whole seconds it has not seen (the source's current
second is still filling; ``settle_s`` later it is whole). Its verdict is written to the store
whenever it changes and at most every ``SAVE_EVERY_S`` otherwise, so that ``get``, the API
and a restarted controller see it. After a controller restart a run is rebuilt from the
seconds the source still holds (the proxy keeps 15 minutes), which is a fresh, equally valid
test. An analysis with ``agentMetrics`` also asks the replica scraper
(``analysis/agent_source.py``) to watch the canary's and baseline's replicas, and feeds
each metric's seconds beside the proxy's; its seconds are whole a little later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from rollwise.analysis.source import MetricSource, Series
from rollwise.spec.duration import format_duration
from rollwise.spec.models import AnalysisSettings, AnalysisStep
from rollwise.store import Store
from rollwise.store.db import AnalysisRow

if TYPE_CHECKING:
    from rollwise.analysis.agent_source import ReplicaScraper
    from rollwise.analysis.run import AnalysisRun, Verdict
    from rollwise.analysis.series import ArmSecond

__all__ = ["AppAnalyses"]

SAVE_EVERY_S = 2.0


@dataclass
class _Live:
    run: AnalysisRun
    row: AnalysisRow
    identity: tuple[Any, ...]
    source: MetricSource  # the controller's, or the analysis' own Prometheus


class AppAnalyses:
    def __init__(
        self, app: str, store: Store, metrics: MetricSource, clock: Callable[[], float]
    ) -> None:
        self.app = app
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.live: dict[str, _Live] = {}
        # each SLO's current burn rate and its window (``controller/slos.py``)
        self.burn_rates: Callable[[], dict[str, tuple[float, float]]] = dict
        self.agent: ReplicaScraper | None = None  # the replicas' own counters, if scraped
        self.settle_s = metrics.settle_s

    def next_second(self) -> float:
        """When the next second becomes whole: the time to ask for a verdict again."""
        now = self.clock()
        return int(now - self.settle_s) + 1 + self.settle_s

    async def judge(
        self,
        key: str,
        kind: str,
        settings: AnalysisSettings,
        step: AnalysisStep,
        canary: int,
        baseline: int | None,
        since: float,
        *,
        judges: bool = True,
    ) -> Verdict:
        """Feed the run named ``key`` what is new since its last call and return its verdict."""
        now = self.clock()
        identity = (canary, baseline, since, settings, step, judges)
        live = self.live.get(key)
        if live is None or live.identity != identity:
            row = AnalysisRow(
                self.app, key, canary, baseline, kind, since, now, "wait", {"outcome": "wait"}
            )
            from rollwise.analysis.run import AnalysisRun  # numpy and scipy: when first judged

            source = self._source(settings, canary, baseline)
            live = _Live(AnalysisRun(settings, step, judges=judges), row, identity, source)
            self.live[key] = live
        run = live.run
        agent = self.agent if judges and settings.agent_metrics else None
        settle = live.source.settle_s
        if agent is not None:
            arms = [canary] if baseline is None else [canary, baseline]
            agent.watch(self.app, settings.agent_metrics, arms)
            settle = max(settle, agent.settle_s)
        self.settle_s = settle
        first = int(since) + 1  # the second holding ``since`` is partly before it
        start = first if run.last_second is None else max(first, run.last_second + 1)
        complete = int(now - settle)  # seconds < this one are whole
        if start < complete:
            series = await live.source.seconds(self.app, start)
            own: dict[str, Series] = {}
            if agent is not None:
                for metric in settings.agent_metrics:
                    own[metric.name] = await agent.source(metric).seconds(self.app, start)
            for second in range(start, complete):
                run.feed(
                    second,
                    _arm(series, canary, second),
                    _arm(series, baseline, second),
                    {
                        name: (_arm(s, canary, second), _arm(s, baseline, second))
                        for name, s in own.items()
                    },
                )
        verdict = self._within_budget(run.verdict(now - since), step)
        if verdict.outcome != live.row.outcome or now - live.row.updated >= SAVE_EVERY_S:
            live.row = AnalysisRow(
                self.app,
                key,
                canary,
                baseline,
                kind,
                since,
                now,
                verdict.outcome,
                verdict.as_json(),
            )
            self.store.put_analysis(live.row)
        return verdict

    def _within_budget(self, verdict: Verdict, step: AnalysisStep) -> Verdict:
        """The step's ``maxBurnRate`` guardrail: an app burning an SLO's error budget faster
        fails the analysis, whatever the canary's own figures say."""
        if step.max_burn_rate is None or verdict.outcome == "fail":
            return verdict
        for slo, (rate, window) in sorted(self.burn_rates().items()):
            if rate > step.max_burn_rate:
                detail = (
                    f"SLO {slo} burns its error budget {rate:.1f}x over the last "
                    f"{format_duration(window)}, above the step's maxBurnRate "
                    f"{step.max_burn_rate:g}x"
                )
                return replace(verdict, outcome="fail", detail=detail)
        return verdict

    def _source(
        self, settings: AnalysisSettings, canary: int, baseline: int | None
    ) -> MetricSource:
        """The proxy's counts, or the analysis' Prometheus asked about both arms."""
        if settings.prometheus is None:
            return self.metrics
        from rollwise.analysis.prometheus_source import PrometheusMetrics

        arms = {canary: "canary"} | ({baseline: "stable"} if baseline is not None else {})
        fields = {}
        a2a_failures = ""
        for revision, role in arms.items():
            row = self.store.revision(self.app, revision)
            if revision == canary:
                a2a_failures = _a2a_failures(row.spec)
            backend = row.spec.get("spec", {}).get("backend") or {}
            fields[revision] = {
                "app": self.app,
                "revision": str(revision),
                "version": row.version,
                "service": f"{self.app}-{role}",
                "namespace": str(backend.get("namespace", "default")),
            }
        return PrometheusMetrics(settings.prometheus, fields, self.clock, a2a_failures)

    def forget(self, revision: int) -> None:
        """Drop a revision's runs (it left the history)."""
        for key in [k for k in self.live if k.split("/")[0] == str(revision)]:
            del self.live[key]


def _a2a_failures(document: dict[str, Any]) -> str:
    """A stored revision's ``cluster_a2a_failures``."""
    from pydantic import ValidationError

    from rollwise.spec.models import Rollout

    try:
        return Rollout.model_validate(document).spec.cluster_a2a_failures
    except ValidationError:  # a revision stored by an older rollwise, of other fields
        return ""


def _arm(series: Series, revision: int | None, second: int) -> ArmSecond:
    from rollwise.analysis.series import ArmSecond

    if revision is None:
        return ArmSecond.empty()
    return ArmSecond.from_counts(series.get(revision, {}).get(second))
