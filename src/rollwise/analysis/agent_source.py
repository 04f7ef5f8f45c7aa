"""The agent's own counters as metric sources: each ready replica's ``/metrics`` scraped once
a second while an analysis asks for them.

The proxy sees requests and answers; it cannot see an agent that answers 200 from a
fallback because its dependency fails, or a circuit breaker that opens more often in the
canary. The agent counts those itself (``rollwise.toolkit``'s ``rollwise_toolkit_*``
series, or its own); an ``agentMetrics`` entry of the analysis names two counters, and this
module turns their per-second increase, summed over a revision's replicas, into the same
per-revision seconds the proxy's statistics give: ``total`` as requests, ``failures`` as
failures. The failure-rate judge then compares canary with baseline as it does for the
proxy's own counts.

Scraping costs nothing while no analysis runs: an app's scrape loop starts when an analysis
first asks (``watch``) and ends ``IDLE_S`` after the last ask. A tick at ``S + 1.1`` gives
second ``S`` the counters' increase since the previous tick, so a second is whole
``settle_s`` after it ended. A replica that does not answer within ``TIMEOUT_S`` is skipped
for that tick (its increase lands in the next); a counter that went down was reset (the
replica restarted), and its new value is the increase.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from rollwise.analysis.source import SecondCounts, Series
from rollwise.backends.base import DIRECT, Reach
from rollwise.spec.models import AgentMetric
from rollwise.spec.selector import SeriesSelector

__all__ = ["AgentMetricSource", "ReplicaScraper"]

Addresses = Callable[[str, int], list[str]]  # (app, revision) -> ready "host:port"s


@dataclass
class _App:
    metrics: dict[str, AgentMetric] = field(default_factory=dict)
    revisions: dict[int, float] = field(default_factory=dict)  # revision -> last asked
    last: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)  # metric name -> seconds
    asked: float = 0.0
    task: asyncio.Task[None] | None = None


class ReplicaScraper:
    """Scrapes the replicas of the revisions analyses ask about (see the module docstring)."""

    settle_s = 1.5
    TIMEOUT_S = 0.3
    IDLE_S = 30.0
    KEEP_S = 900

    def __init__(
        self,
        addresses: Addresses,
        reach: Reach = DIRECT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.addresses = addresses
        self.reach = reach
        self.clock = clock
        self.apps: dict[str, _App] = {}
        self._client: httpx.AsyncClient | None = None
        self.scrapes = 0  # replica scrapes made, for tests and the benchmark

    def watch(self, app: str, metrics: list[AgentMetric], revisions: list[int]) -> None:
        """Scrape these revisions of ``app`` for ``metrics`` from now on (for ``IDLE_S``
        after the last call)."""
        state = self.apps.setdefault(app, _App())
        now = self.clock()
        state.asked = now
        for metric in metrics:
            state.metrics[metric.name] = metric
            state.series.setdefault(metric.name, {})
        for revision in revisions:
            state.revisions[revision] = now
        if state.task is None or state.task.done():
            state.task = asyncio.create_task(self._loop(app, state), name=f"scrape:{app}")

    def source(self, metric: AgentMetric) -> AgentMetricSource:
        return AgentMetricSource(self, metric.name)

    def seconds_of(self, app: str, metric: str, since: int) -> Series:
        state = self.apps.get(app)
        if state is None:
            return {}
        return {
            revision: {s: c for s, c in seconds.items() if s >= since}
            for revision, seconds in state.series.get(metric, {}).items()
        }

    async def _loop(self, app: str, state: _App) -> None:
        while self.clock() - state.asked < self.IDLE_S:
            now = self.clock()
            tick = math.floor(now - 0.1) + 1.1
            await asyncio.sleep(max(0.0, tick - now))
            await self._tick(app, state, int(tick) - 1)
        self.apps.pop(app, None)

    async def _tick(self, app: str, state: _App, second: int) -> None:
        now = self.clock()
        wanted = [r for r, asked in state.revisions.items() if now - asked < self.IDLE_S]
        paths = {m.path for m in state.metrics.values()}
        jobs = [
            (revision, address, path)
            for revision in wanted
            for address in self.addresses(app, revision)
            for path in paths
        ]
        texts = await asyncio.gather(*(self._get(address, path) for _, address, path in jobs))
        added: dict[str, dict[int, SecondCounts]] = {}
        for (revision, address, path), text in zip(jobs, texts, strict=True):
            if text is None:
                continue
            samples = _samples(text)
            for metric in (m for m in state.metrics.values() if m.path == path):
                failures, total = _read(samples, metric)
                key = (address, metric.name)
                before = state.last.get(key)
                state.last[key] = (failures, total)
                if before is None:
                    continue  # the first look gives the starting point only
                more = _increase(before[1], total)
                if more <= 0:
                    continue
                counts = SecondCounts(int(more), int(min(more, _increase(before[0], failures))))
                into = added.setdefault(metric.name, {})
                into[revision] = into[revision] + counts if revision in into else counts
        oldest = second - self.KEEP_S
        for name, series in state.series.items():
            for revision, counts in added.get(name, {}).items():
                series.setdefault(revision, {})[second] = counts
            for seconds in series.values():
                for old in [s for s in seconds if s < oldest]:
                    del seconds[old]

    async def _get(self, address: str, path: str) -> str | None:
        if self._client is None:
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            self._client = self.reach.client(self.TIMEOUT_S, limits)
        self.scrapes += 1
        try:
            response = await self._client.get(self.reach.url(address) + path)
        except httpx.HTTPError:
            return None
        return response.text if response.status_code == 200 else None

    async def aclose(self) -> None:
        for state in list(self.apps.values()):
            if state.task is not None:
                state.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await state.task
        self.apps.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None


@dataclass(frozen=True, slots=True)
class AgentMetricSource:
    """One agent metric of the scraper as a ``MetricSource`` (``total`` as requests)."""

    scraper: ReplicaScraper
    metric: str
    settle_s: float = ReplicaScraper.settle_s

    async def seconds(self, app: str, since: int, *, preview: bool = True) -> Series:
        del preview  # replicas are scraped by revision, whichever listener serves them
        return self.scraper.seconds_of(app, self.metric, since)


def _increase(before: float, now: float) -> float:
    return now - before if now >= before else now  # lower: the replica restarted


def _samples(text: str) -> list[Sample]:
    """Every sample of a Prometheus text page, read once for all the metrics on it."""
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def _read(samples: list[Sample], metric: AgentMetric) -> tuple[float, float]:
    """(failures, total): the sums of the samples each selector matches."""
    failures_of = SeriesSelector.parse(metric.failures)
    total_of = SeriesSelector.parse(metric.total)
    failures = total = 0.0
    for sample in samples:
        if failures_of.matches(sample.name, sample.labels):
            failures += sample.value
        if total_of.matches(sample.name, sample.labels):
            total += sample.value
    return failures, total
