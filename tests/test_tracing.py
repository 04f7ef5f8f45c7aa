"""Traces: a real controller and proxy export OTLP/HTTP to a receiver on loopback that decodes
``ExportTraceServiceRequest`` with opentelemetry-proto, as a collector would."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from rollwise.tracing import parse_traceparent, traces_url

from .conftest import FAST_CANARY, Cluster, running_cluster, write_spec
from .helpers import wait_for


class OtlpReceiver(ThreadingHTTPServer):
    """``POST /v1/traces``: every span, flattened with its service's name."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def named(self, service: str) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.spans if s["service"] == service]


class _Handler(BaseHTTPRequestHandler):
    server: OtlpReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            attrs = {a.key: a.value for a in resource_spans.resource.attributes}
            service = attrs["service.name"].string_value
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    spans.append(
                        {
                            "service": service,
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                            "kind": span.kind,
                            "start": span.start_time_unix_nano,
                            "end": span.end_time_unix_nano,
                            "status": span.status.code,
                            "attributes": {a.key: _value(a.value) for a in span.attributes},
                            "links": [link.trace_id.hex() for link in span.links],
                            "events": [e.name for e in span.events],
                        }
                    )
        with self.server.lock:
            self.server.spans += spans
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def traced(tmp_path: Path, otlp: OtlpReceiver) -> Iterator[Cluster]:
    options = ("--otlp-endpoint", otlp.url, "--trace-sample", "1")
    with running_cluster(tmp_path / "state", tmp_path, 1, *options) as c:
        yield c


def test_traceparent_helpers() -> None:
    assert traces_url("http://c:4318") == "http://c:4318/v1/traces"
    assert traces_url("http://c:4318/v1/traces/") == "http://c:4318/v1/traces"
    parsed = parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert parsed == (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, True)
    assert parse_traceparent("00-00000000000000000000000000000000-b7ad6b7169203331-01") is None
    assert parse_traceparent("garbage") is None


def test_a_rollout_is_one_trace_and_sampled_requests_continue_the_clients(
    traced: Cluster, otlp: OtlpReceiver
) -> None:
    write_spec(traced.spec_file, traced.port, traced.replicas, FAST_CANARY, smoke_tests=[])
    traced.apply()
    deployed = traced.cli("deploy", "sample-agent", "--version", "1.1.0")
    assert "rolling out" in deployed.stdout
    traced.wait_stable(2)

    # a client's trace goes on through the proxy: its span is the proxy's parent
    client_trace, client_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    answer = httpx.get(
        f"{traced.url}/.well-known/agent-card.json",
        headers={"traceparent": f"00-{client_trace}-{client_span}-01"},
    )
    assert answer.status_code == 200

    def proxy_span() -> dict[str, Any] | None:
        spans = [s for s in otlp.named("rollwise-proxy") if s["trace_id"] == client_trace]
        return spans[0] if spans else None

    span = wait_for(proxy_span, timeout=15)
    assert span["parent"] == client_span and span["kind"] == 2  # SERVER
    assert span["attributes"]["http.response.status_code"] == 200
    assert span["attributes"]["rollwise.revision"] == "2"
    assert span["attributes"]["url.path"] == "/.well-known/agent-card.json"

    # the --record line names the same trace, and the span the replica was given
    def recorded() -> list[dict[str, Any]]:  # the proxy writes its record once a second
        lines = [json.loads(line) for line in traced.record.read_text().splitlines()]
        return [r for r in lines if r["trace_id"] == client_trace]

    assert wait_for(recorded, timeout=10)[0]["span_id"] == span["span_id"]

    # the rollout: a root span, a child per step and one for the promotion, linked to the CLI
    def rollout() -> list[dict[str, Any]] | None:
        spans = otlp.named("rollwise-controller")
        roots = [s for s in spans if s["name"] == "rollout sample-agent" and not s["parent"]]
        roots = [r for r in roots if r["attributes"].get("rollwise.revision") == 2]
        if not roots:
            return None
        return [roots[0], *(s for s in spans if s["parent"] == roots[0]["span_id"])]

    root, *children = wait_for(rollout, timeout=15)
    assert root["attributes"]["rollwise.outcome"] == "promoted"
    assert root["attributes"]["rollwise.version"] == "1.1.0"
    assert len(root["links"]) == 1  # the trace of `rollwise deploy`
    names = [c["name"] for c in sorted(children, key=lambda c: c["start"])]
    assert names == ["agent card check", "step 1 setWeight", "step 2 pause", "promotion"], names
    assert all(c["trace_id"] == root["trace_id"] for c in children)
    assert all(root["start"] <= c["start"] <= c["end"] <= root["end"] for c in children)
    log = (traced.state_dir / "logs" / "controller.log").read_text()
    assert f"trace_id={root['trace_id']}" in log


def test_the_proxy_samples_its_share_by_trace_id_and_counts_its_own(otlp: OtlpReceiver) -> None:
    import os

    from rollwise.routing.proxy.spans import SpanSink

    sink = SpanSink(0.1, otlp.url)
    try:
        ids = [b"00-%s-%s-01" % (os.urandom(16).hex().encode(), b"1" * 16) for _ in range(20_000)]
        share = sum(sink.sampled(i) for i in ids) / len(ids)
        assert 0.09 < share < 0.11
        assert all(sink.sampled(i) == sink.sampled(i) for i in ids[:100])  # the same, each hop
        assert [sink.sample_own() for _ in range(30)].count(True) == 3
        assert not sink.sampled(b"00-not hex at all, not at all, not at all, not at all--")
    finally:
        sink.close()
