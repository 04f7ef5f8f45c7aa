"""The proxy's admin channel: a unix socket that only the controller's user reaches.

Authentication is the kernel's: the socket file is mode 0600, and every connection's peer
credentials (``SO_PEERCRED``) must name the proxy's own user or root, else it gets 403 and is
closed. No token to leak, rotate or pass on a command line.

``PUT /routes`` applies a whole routing table and answers the generation applied (the
controller's ``VerifyWeight``); ``PATCH /routes`` does the same for the apps it names only;
``GET /routes[?app=A...]`` reads it back with per-replica state;
``GET /stats?since=S[&app=A...]`` returns per-second counters and latency histograms for
analysis (of the apps named, else all); ``GET /replicas`` each replica's in-flight requests
and passive health, for draining and ejection events;
``GET /metrics`` is the Prometheus exposition of the same counters. With ``--workers N`` the
primary answers for all workers (see ``workers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import traceback
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ClassVar, cast
from urllib.parse import parse_qs, urlsplit

import httptools
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from rollwise.peer import allowed_peer
from rollwise.routing.proxy import report
from rollwise.routing.proxy.server import ProxyServer
from rollwise.routing.proxy.stats import STREAM_BOUNDS
from rollwise.routing.proxy.workers import WorkerPool, merge

__all__ = ["AdminConnection", "serve_admin"]

Answer = tuple[int, bytes, str]  # status, body, content type
Endpoint = Callable[["AdminConnection", str, bytes], Awaitable[Answer]]


class AdminConnection(asyncio.Protocol):
    """One admin connection; requests are small JSON documents, answered in order."""

    def __init__(self, proxy: ProxyServer, pool: WorkerPool | None) -> None:
        self.proxy = proxy
        self.pool = pool
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.queue: asyncio.Queue[tuple[str, str, bytes, bool]] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if not allowed_peer(transport):
            self.transport.write(
                b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            self.transport.close()
            return
        self.worker = asyncio.get_running_loop().create_task(self._serve())

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.worker is not None:
            self.worker.cancel()

    def data_received(self, data: bytes) -> None:
        if self.worker is None:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode()
        keep = self.parser.should_keep_alive()
        self.queue.put_nowait((method, self.url.decode(), b"".join(self.body), keep))

    async def _serve(self) -> None:
        while True:
            method, url, body, keep = await self.queue.get()
            try:
                status, payload, ctype = await self.handle(method, url, body)
            except (ValueError, KeyError, TypeError) as exc:
                status, payload, ctype = 400, _json({"error": f"bad request: {exc!r}"}), _JSON
            except Exception as exc:  # the admin channel must outlive any one bad request
                traceback.print_exc()
                status, payload, ctype = 500, _json({"error": f"internal error: {exc!r}"}), _JSON
            if self.transport is None:
                return
            head = (
                f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}\r\n"
                f"content-type: {ctype}\r\ncontent-length: {len(payload)}\r\n"
                + ("" if keep else "connection: close\r\n")
                + "\r\n"
            )
            self.transport.write(head.encode() + payload)
            if not keep:
                self.transport.close()
                return

    async def handle(self, method: str, url: str, body: bytes) -> tuple[int, bytes, str]:
        parts = urlsplit(url)
        handler = self.ENDPOINTS.get((method, parts.path))
        if handler is None:
            return 404, _json({"error": f"no {method} {parts.path}"}), _JSON
        return await handler(self, parts.query, body)

    async def _healthz(self, query: str, body: bytes) -> Answer:
        health: dict[str, Any] = {"ok": True, "pid": os.getpid(), "started": self.proxy.started}
        if self.pool is not None:
            health["workers"] = [os.getpid(), *self.pool.pids()]
        return 200, _json(health), _JSON

    async def _routes(self, query: str, body: bytes) -> Answer:
        routes = report.routes_status(self.proxy, parse_qs(query).get("app"))
        if self.pool is not None:
            for _, other in await self.pool.call("GET", "/routes?" + query):
                routes["generation"] = min(routes["generation"], other["generation"])
                routes["replicas"] = merge(routes["replicas"], other["replicas"])
        return 200, _json(routes), _JSON

    async def _apply(self, query: str, body: bytes, partial: bool = False) -> Answer:
        try:
            generation, errors = await self.proxy.apply(json.loads(body), partial)
        except ValueError as exc:
            return 409, _json({"error": str(exc)}), _JSON
        if self.pool is not None:
            method = "PATCH" if partial else "PUT"
            for status, other in await self.pool.call(method, "/routes", body):
                if status != 200:
                    return status, _json(other), _JSON
                generation = min(generation, other["generation"])
                errors = merge(errors, other["listen_errors"])
        return 200, _json({"generation": generation, "listen_errors": errors}), _JSON

    async def _change(self, query: str, body: bytes) -> Answer:
        """Some apps' routes; the others stay as they are."""
        return await self._apply(query, body, partial=True)

    async def _replicas(self, query: str, body: bytes) -> Answer:
        """Every worker's counts added up; a draining replica's conversations are the keys
        the workers saw joined (one conversation may have reached two workers), counted."""
        answers = [report.replicas_status(self.proxy)]
        if self.pool is not None:
            answers += [other for _, other in await self.pool.call("GET", "/replicas")]
        talks: dict[str, set[str]] = {}
        for answer in answers:
            for address, replica in answer.items():
                if "talks" in replica:
                    talks.setdefault(address, set()).update(replica.pop("talks"))
        replicas: dict[str, Any] = {}
        for answer in answers:
            replicas = merge(replicas, answer)
        for address, keys in talks.items():
            replicas[address]["conversations"] = len(keys)
        return 200, _json(replicas), _JSON

    async def _stats(self, query: str, body: bytes) -> Answer:
        asked = parse_qs(query)
        since = int(asked.get("since", ["0"])[0])
        stats = report.stats(self.proxy, since, asked.get("app"))
        if self.pool is not None:
            apps = json.loads(_json(stats["apps"]))
            for _, other in await self.pool.call("GET", "/stats?" + query):
                apps = merge(apps, other["apps"])
            stats["apps"] = apps
        return 200, _json(stats), _JSON

    async def _counters(self, query: str, body: bytes) -> Answer:
        return 200, _json(report.counters(self.proxy)), _JSON

    async def _metrics(self, query: str, body: bytes) -> Answer:
        counters = json.loads(_json(report.counters(self.proxy)))
        if self.pool is not None:
            for _, other in await self.pool.call("GET", "/counters"):
                counters = merge(counters, other)
        registry = CollectorRegistry()
        registry.register(ProxyCollector(self.proxy, counters))
        return 200, generate_latest(registry), "text/plain; version=0.0.4"

    ENDPOINTS: ClassVar[dict[tuple[str, str], Endpoint]] = {
        ("GET", "/healthz"): _healthz,
        ("GET", "/routes"): _routes,
        ("PUT", "/routes"): _apply,
        ("PATCH", "/routes"): _change,
        ("GET", "/replicas"): _replicas,
        ("GET", "/stats"): _stats,
        ("GET", "/counters"): _counters,
        ("GET", "/metrics"): _metrics,
    }


_JSON = "application/json"


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


class ProxyCollector(Collector):
    """Prometheus view of the proxy's counters (all workers' summed), built at scrape time."""

    def __init__(self, proxy: ProxyServer, counters: dict[str, Any]) -> None:
        self.proxy = proxy
        self.counters = counters

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        proxy = self.proxy
        counters = self.counters
        requests = CounterMetricFamily(
            "rollwise_proxy_requests",
            "Requests answered per app, revision and status code",
            labels=["app", "revision", "version", "code"],
        )
        failures = CounterMetricFamily(
            "rollwise_proxy_failures",
            "Requests counted as failed (5xx, connection errors, timeouts)",
            labels=["app", "revision", "version"],
        )
        weight = GaugeMetricFamily(
            "rollwise_proxy_weight", "Weight per revision", labels=["app", "revision", "version"]
        )
        in_flight = GaugeMetricFamily(
            "rollwise_proxy_in_flight", "Requests in flight per replica", labels=["address"]
        )
        a2a = CounterMetricFamily(
            "rollwise_proxy_a2a_responses",
            "A2A exchanges per method and outcome (ok, a task state, or a JSON-RPC error code)",
            labels=["app", "revision", "version", "method", "outcome"],
        )
        streams = HistogramMetricFamily(
            "rollwise_proxy_stream_duration_seconds",
            "Whole durations of streamed (SSE) answers; their latency is their first event's",
            labels=["app", "revision", "version"],
        )
        for name, app in proxy.table.apps.items():
            for rev in app.revisions:
                labels = [name, rev.name, rev.version]
                counted = counters["apps"].get(name, {}).get(rev.name, {})
                for code, count in counted.get("codes", {}).items():
                    requests.add_metric([*labels, code], count)
                failures.add_metric(labels, counted.get("failures", 0))
                weight.add_metric(labels, rev.weight)
                for said, count in counted.get("a2a", {}).items():
                    method, _, outcome = said.partition(" ")
                    a2a.add_metric([*labels, method, outcome], count)
                if "streams" in counted:
                    buckets, total = _buckets(counted["streams"])
                    streams.add_metric(labels, buckets, total)
        lost = CounterMetricFamily(
            "rollwise_proxy_conversations_lost",
            "A2A follow-ups whose conversation's replica had left (routed as usual)",
            labels=["app"],
        )
        for name, count in counters.get("lost", {}).items():
            lost.add_metric([name], count)
        for address, count in counters["in_flight"].items():
            in_flight.add_metric([address], count)
        rejected = CounterMetricFamily(
            "rollwise_proxy_rejected", "Requests refused by the proxy itself", labels=["code"]
        )
        for code, count in counters["rejected"].items():
            rejected.add_metric([code], count)
        generation = GaugeMetricFamily(
            "rollwise_proxy_generation", "Routing table generation applied"
        )
        generation.add_metric([], proxy.table.generation)
        retries = CounterMetricFamily("rollwise_proxy_retries", "Requests retried on a replica")
        retries.add_metric([], counters["retries"])
        ejections = CounterMetricFamily(
            "rollwise_proxy_ejections", "Replicas ejected by passive health checks"
        )
        ejections.add_metric([], counters["ejections"])
        yield from (requests, failures, weight, in_flight, rejected, generation, retries)
        yield from (ejections, a2a, streams, lost)


def _buckets(counts: list[float]) -> tuple[list[tuple[str, float]], float]:
    """A stream-duration histogram (``stats.STREAM_BOUNDS``) as Prometheus' cumulative
    buckets, and its sum."""
    cumulative, buckets = 0.0, []
    for bound, count in zip([*STREAM_BOUNDS, math.inf], counts[:-1], strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == math.inf else f"{bound:g}", cumulative))
    return buckets, counts[-1]


async def serve_admin(
    proxy: ProxyServer, path: str, pool: WorkerPool | None = None
) -> asyncio.AbstractServer:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    old = os.umask(0o177)
    try:
        server = await asyncio.get_running_loop().create_unix_server(
            lambda: AdminConnection(proxy, pool), path
        )
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return server
