"""OpenTelemetry traces of rollouts, exported over OTLP/HTTP when an endpoint is set.

``rollwise up --otlp-endpoint URL`` (or ``OTEL_EXPORTER_OTLP_ENDPOINT``): the controller
emits one trace per rollout, built from the events it records, so that a trace tells the
same story as ``rollwise events``:

- the root span ``rollout <app>`` from ``RolloutStarted`` to its end (completed, aborted,
  superseded), with the app, revision, version and outcome as attributes; linked to the
  trace of the command that started it when the command carried a ``traceparent`` (the CLI
  sends one, and prints nothing about it);
- a child span per completed step (``step 2 analysis``), per analysis verdict, per smoke or
  card gate, per promotion or abort, each from the previous mark of the rollout to the
  event, with the event's numbers as attributes;
- every other event of the revision as a span event on the root.

Spans are exported by the SDK's batch processor, off the reconcile loop. A rollout whose
controller was killed has no root span in the next one (its children start a new trace).
The log lines of a traced rollout's events carry ``trace_id`` and ``span_id``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rollwise.words import EventKind

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

__all__ = ["RolloutTraces", "otlp_endpoint", "parse_traceparent", "traces_url"]

_STEP_KINDS = {
    EventKind.STEP_COMPLETED: "step",
    EventKind.ANALYSIS_PASSED: "analysis",
    EventKind.ANALYSIS_FAILED: "analysis",
    EventKind.ANALYSIS_INCONCLUSIVE: "analysis",
    EventKind.SMOKE_TESTS_PASSED: "smoke tests",
    EventKind.SMOKE_TESTS_FAILED: "smoke tests",
    EventKind.AGENT_CARD_CHANGED: "agent card check",
    EventKind.BREAKING_CHANGE_BLOCKED: "agent card check",
    EventKind.PREVIEW_READY: "preview",
    EventKind.ACTIVE_SWITCHED: "switch",
}
_ENDS = {
    EventKind.ROLLOUT_COMPLETED: ("promotion", "promoted"),
    EventKind.ROLLOUT_ABORTED: ("abort", "aborted"),
    EventKind.ROLLOUT_SUPERSEDED: ("superseded", "superseded"),
}
_FAILED = {
    EventKind.ANALYSIS_FAILED,
    EventKind.SMOKE_TESTS_FAILED,
    EventKind.BREAKING_CHANGE_BLOCKED,
    EventKind.ROLLOUT_ABORTED,
}


def otlp_endpoint(flag: str | None) -> str | None:
    """The OTLP/HTTP base URL: the flag, else ``OTEL_EXPORTER_OTLP_ENDPOINT``, else none."""
    return flag or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None


def traces_url(endpoint: str) -> str:
    """OTLP/HTTP's traces path under a base URL (as the SDK does with the environment)."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def parse_traceparent(value: str) -> tuple[int, int, bool] | None:
    """(trace id, parent span id, sampled) of a W3C ``traceparent``; ``None`` if malformed."""
    parts = value.strip().split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16 or len(parts[3]) != 2:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, bool(flags & 1)


def provider(endpoint: str, service: str) -> TracerProvider:
    """A tracer provider exporting in batches to ``endpoint`` over OTLP/HTTP."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from rollwise._version import __version__

    resource = Resource.create({"service.name": service, "service.version": __version__})
    tracer_provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=traces_url(endpoint), timeout=5)
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
    return tracer_provider


@dataclass
class _Rollout:
    root: Span
    mark_ns: int


class RolloutTraces:
    """Events in, spans out: see the module's docstring."""

    def __init__(self, endpoint: str, service: str = "rollwise-controller") -> None:
        self.provider = provider(endpoint, service)
        self.tracer: Tracer = self.provider.get_tracer("rollwise.controller")
        self.open: dict[tuple[str, int], _Rollout] = {}

    def observe(self, event: dict[str, Any]) -> None:
        """One stored event of an app: start, extend or end its rollout's trace."""
        revision = event.get("revision")
        if revision is None:
            return
        key = (str(event["app"]), int(revision))
        kind = EventKind(event["kind"])
        now_ns = int(float(event["ts"]) * 1e9)
        attributes = _attributes(event)
        if kind == EventKind.ROLLOUT_STARTED:
            self._end(key, now_ns, "superseded", ok=True)  # a retry, or a deploy again
            root = self.tracer.start_span(
                f"rollout {key[0]}", start_time=now_ns, attributes=attributes
            )
            self.open[key] = _Rollout(root, now_ns)
            return
        rollout = self.open.get(key)
        if rollout is None:
            return
        from opentelemetry import trace

        if kind in _STEP_KINDS or kind in _ENDS:
            name = _STEP_KINDS.get(kind) or _ENDS[kind][0]
            if kind == EventKind.STEP_COMPLETED:
                name = f"step {event['data'].get('step', '?')} {event['data'].get('step_kind', '')}"
            child = self.tracer.start_span(
                name.strip(),
                context=trace.set_span_in_context(rollout.root),
                start_time=rollout.mark_ns,
                attributes=attributes,
            )
            if kind in _FAILED:
                child.set_status(trace.Status(trace.StatusCode.ERROR, event["message"]))
            child.end(end_time=now_ns)
            rollout.mark_ns = now_ns
        else:
            rollout.root.add_event(str(kind), attributes, timestamp=now_ns)
        if kind in _ENDS:
            self._end(key, now_ns, _ENDS[kind][1], ok=kind not in _FAILED, why=event["message"])

    def link(self, app: str, revision: int, traceparent: str | None) -> None:
        """Link a rollout's root span to the command that started it."""
        parsed = parse_traceparent(traceparent or "")
        rollout = self.open.get((app, revision))
        if parsed is None or rollout is None:
            return
        from opentelemetry import trace

        trace_id, span_id, sampled = parsed
        flags = trace.TraceFlags(trace.TraceFlags.SAMPLED if sampled else 0)
        context = trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags)
        rollout.root.add_link(context, {"rollwise.link": "command"})

    def ids(self, app: str, revision: int | None) -> dict[str, str]:
        """``trace_id`` and ``span_id`` of a rollout's root span, for its log lines."""
        rollout = self.open.get((app, revision)) if revision is not None else None
        if rollout is None:
            return {}
        context = rollout.root.get_span_context()
        return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}

    def _end(self, key: tuple[str, int], at_ns: int, outcome: str, ok: bool, why: str = "") -> None:
        rollout = self.open.pop(key, None)
        if rollout is None:
            return
        from opentelemetry import trace

        rollout.root.set_attribute("rollwise.outcome", outcome)
        if not ok:
            rollout.root.set_status(trace.Status(trace.StatusCode.ERROR, why))
        rollout.root.end(end_time=at_ns)

    def shutdown(self) -> None:
        """End what is open (the controller stops) and export everything."""
        for key in list(self.open):
            self._end(key, self.open[key].mark_ns, "controller stopped", ok=True)
        self.provider.shutdown()


def _attributes(event: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rollwise.app": event["app"],
        "rollwise.revision": int(event["revision"]),
        "rollwise.event": str(event["kind"]),
        "rollwise.message": event["message"],
    }
    for name, value in (event.get("data") or {}).items():
        if isinstance(value, str | int | float | bool):
            out[f"rollwise.{name}"] = value
    return out
