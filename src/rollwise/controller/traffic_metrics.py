"""Each revision's traffic on the controller's ``/metrics``: what the built-in proxy counted,
as counters and a histogram Prometheus and Grafana read like any service's.

- ``rollwise_requests_total{app,revision}``
- ``rollwise_request_failures_total{app,revision}`` (failures as ``traffic.failureStatus``
  defines them, the same the judges count)
- ``rollwise_request_duration_seconds{app,revision}`` (a histogram, Prometheus' default
  buckets; a stream's duration is its first event's)
- ``rollwise_a2a_outcomes_total{app,revision,method,outcome}`` (an A2A app's exchanges that
  did not end plainly: JSON-RPC error codes, task states such as ``failed`` or
  ``input-required``; docs/analysis.md)

They are folded in when scraped, from the whole seconds the proxy holds since the previous
scrape (nothing runs between scrapes: with no scraper, they cost nothing); counting starts at
the controller's first scrape. The ``rollwise`` preset of ``analysis.prometheus`` queries them.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import structlog
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from rollwise.analysis.source import MetricSource, SecondCounts
from rollwise.errors import RollwiseError
from rollwise.routing.proxy.stats import bucket_value

__all__ = ["TrafficSeries"]

log = structlog.get_logger("rollwise.controller")

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_LABELS = ["app", "revision"]
SCRAPE_WAIT_S = 5.0


@dataclass
class _Revision:
    requests: int = 0
    failures: int = 0
    seconds_sum: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BOUNDS) + 1))
    outcomes: Counter[str] = field(default_factory=Counter)  # "<method> <outcome>" -> count


class TrafficSeries(Collector):
    def __init__(
        self,
        metrics: MetricSource,
        apps: Callable[[], list[str]],
        clock: Callable[[], float],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.metrics = metrics
        self.apps = apps
        self.clock = clock
        self.loop = loop
        self.next: dict[str, int] = {}  # per app: the first second not folded in yet
        self.counts: dict[tuple[str, str], _Revision] = {}
        self.lock = asyncio.Lock()

    async def fold(self) -> None:
        """Add the whole seconds the proxy counted since the last fold."""
        async with self.lock:
            complete = int(self.clock() - self.metrics.settle_s)  # seconds before it are whole
            for app in self.apps():
                start = self.next.get(app, complete)
                if start >= complete:
                    self.next[app] = complete
                    continue
                series = await self.metrics.seconds(app, start)
                self.next[app] = complete  # once read: a failed read is read again next time
                for revision, seconds in series.items():
                    window = [c for s, c in seconds.items() if s < complete]
                    total = sum(window, SecondCounts())
                    into = self.counts.setdefault((app, str(revision)), _Revision())
                    into.requests += total.requests
                    into.failures += total.failures
                    into.outcomes.update(total.outcomes)
                    for index, n in total.hist.items():
                        value = bucket_value(index)
                        into.buckets[bisect.bisect_left(BOUNDS, value)] += n
                        into.seconds_sum += value * n

    def collect(self) -> Iterator[Metric]:
        if not self.loop.is_closed():
            try:
                done = asyncio.run_coroutine_threadsafe(self.fold(), self.loop)
                done.result(timeout=SCRAPE_WAIT_S)
            except (RollwiseError, TimeoutError, RuntimeError) as exc:
                log.warning("per-revision traffic not folded for this scrape", error=str(exc))
        requests = CounterMetricFamily(
            "rollwise_requests", "Requests the proxy sent to a revision", labels=_LABELS
        )
        failures = CounterMetricFamily(
            "rollwise_request_failures",
            "Requests of a revision that failed (traffic.failureStatus)",
            labels=_LABELS,
        )
        latency = HistogramMetricFamily(
            "rollwise_request_duration_seconds",
            "Time from a request's arrival at the proxy to its answer, per revision",
            labels=_LABELS,
        )
        outcomes = CounterMetricFamily(
            "rollwise_a2a_outcomes",
            "A2A exchanges of a revision that did not end plainly, by method and outcome",
            labels=[*_LABELS, "method", "outcome"],
        )
        for (app, revision), c in sorted(self.counts.items()):
            requests.add_metric([app, revision], c.requests)
            failures.add_metric([app, revision], c.failures)
            for said, n in sorted(c.outcomes.items()):
                method, _, outcome = said.partition(" ")
                outcomes.add_metric([app, revision, method, outcome], n)
            cumulative, running = [], 0
            for bound, n in zip([*map(str, BOUNDS), "+Inf"], c.buckets, strict=True):
                running += n
                cumulative.append((bound, running))
            latency.add_metric([app, revision], cumulative, c.seconds_sum)
        yield requests
        yield failures
        yield latency
        yield outcomes
