"""The toolkit's Prometheus series, one naming scheme: ``rollwise_toolkit_*``, labelled by
``operation`` (the name given to a decorator), in the process' default registry, so that an
agent's ``/metrics`` (prometheus-client's) shows them and rollwise can scrape them."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "A2A_EXCHANGES",
    "BREAKER_OPENED",
    "BREAKER_STATE",
    "CACHE",
    "ERRORS",
    "HTTP_IN_FLIGHT",
    "HTTP_REQUESTS",
    "MEMORY_CLEANUPS",
    "MEMORY_RSS",
    "OPERATIONS",
    "PROFILE_MEMORY",
    "PROFILE_SECONDS",
    "RETRIES",
    "SECONDS",
]

SECONDS = Histogram(
    "rollwise_toolkit_operation_seconds", "Duration of a monitored operation", ["operation"]
)
OPERATIONS = Counter(
    "rollwise_toolkit_operations", "Monitored operations by outcome (ok, error)",
    ["operation", "outcome"],
)  # fmt: skip
ERRORS = Counter(
    "rollwise_toolkit_errors", "Errors by category (timeout, connection, http_5xx, ...)",
    ["operation", "category"],
)  # fmt: skip
RETRIES = Counter("rollwise_toolkit_retries", "Retried attempts", ["operation"])
BREAKER_STATE = Gauge(
    "rollwise_toolkit_circuit_state", "A circuit breaker's state: 0 closed, 1 half-open, 2 open",
    ["circuit"],
)  # fmt: skip
BREAKER_OPENED = Counter("rollwise_toolkit_circuit_opened", "Times a circuit opened", ["circuit"])
CACHE = Counter(
    "rollwise_toolkit_cache", "Cache lookups by result (hit, miss)", ["operation", "result"]
)
PROFILE_SECONDS = Histogram(
    "rollwise_toolkit_profile_seconds", "Profiled wall and CPU time", ["operation", "clock"]
)
PROFILE_MEMORY = Gauge(
    "rollwise_toolkit_profile_memory_bytes", "Memory delta of the last profiled run", ["operation"]
)
MEMORY_RSS = Gauge("rollwise_toolkit_memory_rss_bytes", "The process' RSS at the last check")
MEMORY_CLEANUPS = Counter(
    "rollwise_toolkit_memory_cleanups", "Cleanups run over the memory threshold", ["cleanup"]
)
HTTP_REQUESTS = Counter(
    "rollwise_toolkit_http_requests", "Outbound requests of a pooled client by outcome",
    ["pool", "outcome"],
)  # fmt: skip
HTTP_IN_FLIGHT = Gauge(
    "rollwise_toolkit_http_in_flight", "Outbound requests of a pooled client in flight", ["pool"]
)
A2A_EXCHANGES = Counter(
    "rollwise_toolkit_a2a_exchanges",
    "A2A exchanges by method, outcome (ok, a task state, a JSON-RPC code) and HTTP status class",
    ["method", "outcome", "code"],
)  # fmt: skip
