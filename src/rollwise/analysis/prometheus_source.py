"""A Prometheus server as a ``MetricSource``: each revision's counts from PromQL.

Prometheus answers per query step, not per second: a range query at step ``interval``
evaluates ``increase(…[interval])`` at the multiples of ``interval`` (unix seconds), so each
answer covers the ``interval`` seconds before it and two answers never overlap. The counts of
such a window are reported on its last second and the seconds between carry none; the judges
condition every chunk on its own request split, so a chunk of ten seconds weighs as its
requests say. ``increase`` extrapolates, so counts are rounded to whole requests.

A latency histogram's ``le`` buckets (Prometheus' usual 10 or so bounds) are put in the 2 %
buckets of the judges at their upper bound: coarse, the same for both arms, and stated in
docs/analysis.md. Missing data is no data: a revision without series has no requests in
that window, so the judges stay inconclusive instead of failing. A query that fails (the
server is down, the query is wrong) is retried once, reported once per problem with its
query, counts as no data, and is not asked again before the next interval. The queries run
inside the app's reconcile pass, so a Prometheus that hangs delays it by up to twice
``timeout`` (default 2 s) once per interval.
"""

from __future__ import annotations

import asyncio
import math
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import stamina
import structlog

from rollwise.analysis.source import SecondCounts, Series
from rollwise.routing.proxy.stats import bucket_index
from rollwise.spec.duration import format_duration
from rollwise.spec.prometheus import PrometheusQueries, PrometheusSource

__all__ = ["PrometheusMetrics", "QueryError"]

log = structlog.get_logger("rollwise.prometheus")


class QueryError(Exception):
    """Prometheus did not answer a query (after retries)."""


@dataclass
class PrometheusMetrics:
    """The counts of the revisions in ``fields`` (revision -> its placeholder values)."""

    config: PrometheusSource
    fields: Mapping[int, Mapping[str, str]]
    clock: Callable[[], float] = time.time
    a2a_failures: str = ""  # an A2A app on a cluster: its failing outcomes (``resolved``)
    problem: str = ""  # the last query failure, '' once queries answer again
    settle_s: float = field(init=False)
    _quiet_until: float = 0.0

    def __post_init__(self) -> None:
        self.settle_s = self.config.delay

    async def seconds(self, app: str, since: int, *, preview: bool = True) -> Series:
        """Every whole interval from ``since`` on, per revision (``preview`` does not apply:
        the queries say what they count)."""
        del app, preview
        step = int(self.config.interval)
        first = math.ceil(since / step) * step
        last = int(self.clock())
        if first > last:
            return {}
        if self.clock() < self._quiet_until:
            return {}  # the last query failed: not again before the next interval
        queries = self.config.resolved(self.a2a_failures)
        # a client per call (a call is due once per interval; no connection outlives it);
        # the revisions asked side by side: a slow Prometheus delays a pass once, not twice
        async with httpx.AsyncClient(timeout=self.config.timeout) as client:
            answers = await asyncio.gather(
                *(
                    self._revision(client, queries, values, (first, last, step))
                    for values in self.fields.values()
                ),
                return_exceptions=True,
            )
        series: Series = {}
        failed = ""
        for revision, answer in zip(self.fields, answers, strict=True):
            if isinstance(answer, QueryError):
                failed = str(answer)
            elif isinstance(answer, BaseException):
                raise answer
            else:
                series[revision] = answer
        if failed:
            self._quiet_until = self.clock() + step
        if failed and failed != self.problem:
            log.warning("Prometheus query failed; no data for the analysis", problem=failed)
        self.problem = failed
        return series

    async def _revision(
        self,
        client: httpx.AsyncClient,
        queries: PrometheusQueries,
        values: Mapping[str, str],
        span: tuple[int, int, int],
    ) -> dict[int, SecondCounts]:
        fields = {**values, "interval": format_duration(span[2])}
        assert queries.requests is not None
        assert queries.failures is not None
        requests = await self._range(client, queries.requests, fields, span)
        failures = await self._range(client, queries.failures, fields, span)
        hists: dict[int, dict[int, int]] = {}
        if queries.latency:
            matrix = await self._matrix(client, queries.latency, fields, span)
            hists = _histograms(matrix, self.config.latency_scale())
        made = {}
        for second in sorted(requests):
            total = round(requests[second])
            bad = min(total, round(failures.get(second, 0.0)))
            if total > 0:
                made[second] = SecondCounts(total, bad, hists.get(second, {}))
        return made

    async def _range(
        self,
        client: httpx.AsyncClient,
        query: str,
        fields: Mapping[str, str],
        span: tuple[int, int, int],
    ) -> dict[int, float]:
        """Each step's value, summed over the series the query returns."""
        values: dict[int, float] = {}
        for _, points in await self._matrix(client, query, fields, span):
            for second, value in points:
                values[second] = values.get(second, 0.0) + value
        return values

    async def _matrix(
        self,
        client: httpx.AsyncClient,
        query: str,
        fields: Mapping[str, str],
        span: tuple[int, int, int],
    ) -> list[tuple[dict[str, str], list[tuple[int, float]]]]:
        promql = string.Template(query).substitute(fields)
        params = {"query": promql, "start": span[0], "end": span[1], "step": span[2]}
        try:
            body = await self._get(client, params)
        except (httpx.HTTPError, ValueError) as exc:
            raise QueryError(
                f"{self.config.address}: {exc or type(exc).__name__} ({promql})"
            ) from exc
        if body.get("status") != "success":
            raise QueryError(f"{self.config.address}: {body.get('error', body)} ({promql})")
        return [
            (dict(s.get("metric", {})), [(int(float(t)), _number(v)) for t, v in s["values"]])
            for s in body.get("data", {}).get("result", [])
        ]

    async def _get(self, client: httpx.AsyncClient, params: dict[str, Any]) -> dict[str, Any]:
        url = self.config.address.rstrip("/") + "/api/v1/query_range"
        async for attempt in stamina.retry_context(
            on=(httpx.TransportError, httpx.HTTPStatusError),
            attempts=2,
            wait_initial=0.1,
            wait_max=0.5,
        ):
            with attempt:
                answer = await client.get(url, params=params)
                if answer.status_code >= 500:
                    answer.raise_for_status()
        data: dict[str, Any] = answer.json()
        return data


def _number(text: str) -> float:
    value = float(text)
    return value if math.isfinite(value) else 0.0


def _histograms(
    matrix: list[tuple[dict[str, str], list[tuple[int, float]]]], scale: float
) -> dict[int, dict[int, int]]:
    """second -> 2 % bucket -> requests, from cumulative ``le`` buckets (``scale`` seconds
    per unit of ``le``); a bucket's requests go to its upper bound (+Inf: twice the last)."""
    by_second: dict[int, list[tuple[float, float]]] = {}
    for labels, points in matrix:
        if "le" not in labels:
            continue
        bound = float(labels["le"])
        for second, value in points:
            by_second.setdefault(second, []).append((bound, value))
    made: dict[int, dict[int, int]] = {}
    for second, cumulative in by_second.items():
        cumulative.sort()
        hist: dict[int, int] = {}
        below, previous = 0.0, 0.0
        for bound, count in cumulative:
            upper = bound if math.isfinite(bound) else 2 * previous
            requests = round(count - below)
            if requests > 0 and upper > 0:
                index = bucket_index(upper * scale)
                hist[index] = hist.get(index, 0) + requests
            below, previous = max(below, count), bound if math.isfinite(bound) else previous
        made[second] = hist
    return made
