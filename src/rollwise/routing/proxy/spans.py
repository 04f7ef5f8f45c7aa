"""Sampled server spans of the proxy, exported over OTLP/HTTP off the request path.

With ``--trace-sample R`` (0 < R ≤ 1) and ``--otlp-endpoint URL``, a request that carries a
``traceparent`` is sampled when its trace id falls in the ratio (W3C trace ids are random,
so every hop that samples by the same rule keeps the same traces, as OpenTelemetry's
``TraceIdRatioBased`` does); a request without one gets a fresh trace id, and one in every
1/R of those is sampled. A sampled request's ``traceparent``
goes upstream with the proxy's own span id, so the replica's spans are children of the
proxy's, and the proxy's span is a child of the client's.

On the request path a sampled request costs one tuple appended to a list; a thread of the
proxy turns the list into an OTLP ``ExportTraceServiceRequest`` (opentelemetry-proto's
messages, built directly: 8 µs a span, a quarter of what the SDK's span objects and encoder
take) and POSTs it every second. Nothing is sampled (and nothing is imported) with ``R`` = 0.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, NamedTuple

from rollwise.tracing import traces_url

if TYPE_CHECKING:
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

__all__ = ["SampledRequest", "SpanSink"]

EXPORT_EVERY_S = 1.0
MAX_PENDING = 20_000  # beyond this (an exporter that cannot keep up), new spans are dropped


class SampledRequest(NamedTuple):
    """One sampled request, as the event loop hands it over."""

    trace_id: bytes
    parent: bytes  # the client's span id; empty when the proxy started the trace
    span_id: bytes
    start_ns: int
    end_ns: int
    app: str
    revision: str
    version: str
    method: str
    target: str
    status: int
    failed: bool


class SpanSink:
    """Finished sampled requests, exported in batches by a thread."""

    __slots__ = (
        "_bound",
        "_countdown",
        "_every",
        "dropped",
        "endpoint",
        "exported",
        "failed",
        "pending",
        "ratio",
        "stop",
        "thread",
    )

    def __init__(self, ratio: float, endpoint: str) -> None:
        self.ratio = ratio
        self._bound = int(ratio * (1 << 64))
        self._every = max(1, round(1 / ratio))
        self._countdown = self._every
        self.endpoint = traces_url(endpoint)
        self.pending: list[SampledRequest] = []
        self.dropped = 0
        self.exported = 0
        self.failed = 0
        self.stop = threading.Event()
        _Encoder.load()  # before the proxy serves: its modules join the objects frozen then
        self.thread = threading.Thread(target=self._run, name="spans", daemon=True)
        self.thread.start()

    def sample_own(self) -> bool:
        """Whether to sample a trace the proxy starts itself: one in every 1/ratio, counted
        (its trace id is random, so a countdown picks as fairly, for less)."""
        self._countdown -= 1
        if self._countdown > 0:
            return False
        self._countdown = self._every
        return True

    def sampled(self, traceparent: bytes) -> bool:
        """Whether a ``traceparent``'s trace id is in the ratio (its last 16 hex digits)."""
        try:
            return int(traceparent[19:35], 16) < self._bound
        except ValueError:
            return False

    @staticmethod
    def span_id() -> bytes:
        return os.urandom(8).hex().encode()

    def add(self, span: SampledRequest) -> None:
        """One finished sampled request, from the event loop."""
        if len(self.pending) < MAX_PENDING:
            self.pending.append(span)
        else:
            self.dropped += 1

    def _run(self) -> None:
        import httpx

        encoder = _Encoder()
        with httpx.Client(timeout=5.0) as client:
            while not self.stop.wait(EXPORT_EVERY_S):
                self._export(client, encoder)
            self._export(client, encoder)

    def _export(self, client: Any, encoder: _Encoder) -> None:
        batch, self.pending = self.pending, []  # a swap: the event loop appends to the new one
        if not batch:
            return
        body = encoder.request(batch)
        try:
            resp = client.post(
                self.endpoint, content=body, headers={"content-type": "application/x-protobuf"}
            )
            resp.raise_for_status()
        except Exception:
            self.failed += len(batch)
            return
        self.exported += len(batch)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


class _Encoder:
    """OTLP protobuf messages of sampled requests; attribute pairs that repeat (app,
    revision, version, method, status) are built once."""

    def __init__(self) -> None:
        from opentelemetry.proto.common.v1.common_pb2 import (
            AnyValue,
            InstrumentationScope,
            KeyValue,
        )
        from opentelemetry.proto.resource.v1.resource_pb2 import Resource

        from rollwise._version import __version__

        self.any_value = AnyValue
        self.key_value = KeyValue
        self.resource = Resource(
            attributes=[
                self.kv("service.name", "rollwise-proxy"),
                self.kv("service.version", __version__),
            ]
        )
        self.scope = InstrumentationScope(name="rollwise.proxy", version=__version__)
        self.cached: dict[tuple[str, Any], KeyValue] = {}

    @staticmethod
    def load() -> None:
        import opentelemetry.proto.collector.trace.v1.trace_service_pb2  # noqa: F401

    def kv(self, key: str, value: str | int) -> KeyValue:
        if isinstance(value, int):
            return self.key_value(key=key, value=self.any_value(int_value=value))
        return self.key_value(key=key, value=self.any_value(string_value=value))

    def _same(self, key: str, value: str | int) -> KeyValue:
        kv = self.cached.get((key, value))
        if kv is None:
            if len(self.cached) > 10_000:
                self.cached.clear()
            kv = self.cached[(key, value)] = self.kv(key, value)
        return kv

    def span(self, s: SampledRequest) -> Span:
        from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

        span = Span(
            trace_id=bytes.fromhex(s.trace_id.decode()),
            span_id=bytes.fromhex(s.span_id.decode()),
            parent_span_id=bytes.fromhex(s.parent.decode()) if s.parent else b"",
            name=f"{s.method} {s.app}",
            kind=Span.SPAN_KIND_SERVER,
            start_time_unix_nano=s.start_ns,
            end_time_unix_nano=s.end_ns,
            flags=0x301 if s.parent else 0x1,  # sampled; a parent is the client (remote)
        )
        span.attributes.extend(
            [
                self._same("http.request.method", s.method),
                self._same("http.response.status_code", s.status),
                self._same("rollwise.app", s.app),
                self._same("rollwise.revision", s.revision),
                self._same("rollwise.version", s.version),
                self.kv("url.path", s.target),
            ]
        )
        if s.failed:
            span.status.code = Status.STATUS_CODE_ERROR
        return span

    def request(self, batch: list[SampledRequest]) -> bytes:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
        from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

        scope = ScopeSpans(scope=self.scope)
        scope.spans.extend([self.span(s) for s in batch])
        message = ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(resource=self.resource, scope_spans=[scope])]
        )
        return bytes(message.SerializeToString())
