"""Pooled HTTP clients for agents that call other agents or services, and the trace context
carried across them.

``http_client(name)`` gives one ``httpx.AsyncClient`` per name for the life of the process:
its connections are kept alive and bounded (``httpx.Limits``), so a burst of calls reuses a
handful of connections instead of opening one each. Every request carries the W3C
``traceparent`` of the current OpenTelemetry context, and is counted by outcome
(``rollwise_toolkit_http_requests_total{pool, outcome}``: ``ok``, ``http_4xx``,
``http_5xx``, ``error``) with those in flight in ``rollwise_toolkit_http_in_flight{pool}``.

``TraceContextMiddleware`` (ASGI) makes the caller's ``traceparent`` — the one rollwise's
proxy forwards or starts — the current context of the request, so that the agent's
``monitor_operation`` spans and outbound calls continue the caller's trace, with or without
an OpenTelemetry SDK in the agent.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from rollwise.toolkit.metrics import HTTP_IN_FLIGHT, HTTP_REQUESTS

__all__ = ["TraceContextMiddleware", "close_clients", "http_client", "pool_stats"]

_propagator = TraceContextTextMapPropagator()
_clients: dict[str, httpx.AsyncClient] = {}
_stats: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()


class _Counted(httpx.AsyncBaseTransport):
    """The pool's transport, counting requests by outcome and in flight."""

    def __init__(self, pool: str, inner: httpx.AsyncBaseTransport) -> None:
        self.pool = pool
        self.inner = inner
        self.stats = _stats[pool]
        self.in_flight = HTTP_IN_FLIGHT.labels(pool)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _propagator.inject(request.headers)
        self.stats["in_flight"] += 1
        self.in_flight.inc()
        outcome = "error"
        try:
            response = await self.inner.handle_async_request(request)
            status = response.status_code
            outcome = "http_5xx" if status >= 500 else "http_4xx" if status >= 400 else "ok"
            return response
        finally:
            self.stats["in_flight"] -= 1
            self.in_flight.dec()
            self.stats[outcome] = self.stats.get(outcome, 0) + 1
            HTTP_REQUESTS.labels(self.pool, outcome).inc()

    async def aclose(self) -> None:
        await self.inner.aclose()


def http_client(
    name: str = "default",
    *,
    base_url: str = "",
    timeout: float = 10.0,
    max_connections: int = 100,
    max_keepalive: int = 20,
    headers: Mapping[str, str] | None = None,
) -> httpx.AsyncClient:
    """The pooled client named ``name``, made on first call with these settings (later calls
    return it as it is). Close them all with ``await close_clients()`` at shutdown."""
    with _lock:
        client = _clients.get(name)
        if client is not None and not client.is_closed:
            return client
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_keepalive
        )
        _stats[name] = {
            "limits": {"max_connections": max_connections, "max_keepalive": max_keepalive},
            "in_flight": 0,
        }
        transport = _Counted(name, httpx.AsyncHTTPTransport(limits=limits))
        client = httpx.AsyncClient(
            base_url=base_url, timeout=timeout, transport=transport, headers=headers
        )
        _clients[name] = client
        return client


def pool_stats() -> dict[str, dict[str, Any]]:
    """Each pool's limits, requests in flight and requests by outcome (for a health page)."""
    with _lock:
        return {name: {**stats, "limits": dict(stats["limits"])} for name, stats in _stats.items()}


async def close_clients() -> None:
    """Close every pooled client (their connections with them)."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        await client.aclose()


class TraceContextMiddleware:
    """ASGI middleware: the request's ``traceparent`` (and ``tracestate``) become the current
    OpenTelemetry context while the app handles it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope["headers"]
            if key in (b"traceparent", b"tracestate")
        }
        if not carrier:
            await self.app(scope, receive, send)
            return
        token = otel_context.attach(_propagator.extract(carrier))
        try:
            await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)
