"""Events: every decision the controller takes, stored, logged, counted and traced.

An event is written to the store first (it is the history people read), then logged with
structlog, counted in Prometheus, offered to the app's webhooks and to the platform's own
event stream (a cluster's Events; both queued, never waited for).
A reconcile pass or a command records its events in the same transaction as the status they
explain (``record``), and publishes them once that is committed (``publish``): an event is
never told for a status that was not saved.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter

from rollwise.controller.webhooks import Webhooks
from rollwise.redact import SECRETS
from rollwise.spec import RolloutSpec
from rollwise.store import Store
from rollwise.tracing import RolloutTraces
from rollwise.words import EventKind

LOG_FIELDS = frozenset({"kind", "app", "revision", "event", "trace_id", "span_id"})

__all__ = ["Event", "Events"]


@dataclass(frozen=True, slots=True)
class Event:
    """An event not stored yet."""

    kind: EventKind
    message: str
    revision: int | None = None
    data: dict[str, Any] | None = None


class Events:
    def __init__(
        self,
        store: Store,
        registry: CollectorRegistry,
        webhooks: Webhooks | None = None,
        spec_of: Callable[[str], RolloutSpec | None] = lambda app: None,
    ) -> None:
        self.store = store
        self.webhooks = webhooks
        self.traces: RolloutTraces | None = None  # ``rollwise up --otlp-endpoint``
        self.spec_of = spec_of  # an app's spec as applied (``None``: the controller's own)
        # where else a published event goes (app, event as stored): a cluster's Events
        self.sinks: list[Callable[[str, dict[str, Any]], None]] = []
        self.log = structlog.get_logger("rollwise.events")
        self.counter = Counter(
            "rollwise_events",
            "Events emitted by the controller",
            ["app", "kind"],
            registry=registry,
        )

    def emit(
        self,
        app: str,
        kind: EventKind,
        message: str,
        revision: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Store one event and publish it."""
        self.publish(app, self.record(app, [Event(kind, message, revision, data)]))

    def record(self, app: str, events: Iterable[Event]) -> list[dict[str, Any]]:
        """Store ``events`` (in the caller's transaction, if it has one); as stored."""
        stored = []
        for event in events:
            # a replica's last log line or a check's output may carry a secret value
            message, data = SECRETS.text(event.message), SECRETS.redact(event.data)
            event_id = self.store.add_event(app, event.kind, message, event.revision, data)
            stored.append(
                {
                    "id": event_id,
                    "ts": time.time(),
                    "app": app,
                    "kind": event.kind,
                    "revision": event.revision,
                    "message": message,
                    "data": data or {},
                }
            )
        return stored

    def publish(self, app: str, stored: list[dict[str, Any]]) -> None:
        """Log, count and offer to the app's webhooks what ``record`` stored."""
        spec = self.spec_of(app) if self.webhooks is not None and stored else None
        hooks = list(spec.webhooks) if spec is not None else []
        runbooks = spec.runbooks if spec is not None else {}
        traces = self.traces
        for event in stored:
            kind = event["kind"]
            ids: dict[str, str] = {}
            if traces is not None:
                traces.observe(event)
                ids = traces.ids(app, event["revision"])
            self.log.info(
                event["message"],
                kind=kind,
                app=app,
                revision=event["revision"],
                **ids,
                # an event's own data never replaces the line's fields
                **{k: v for k, v in event["data"].items() if k not in LOG_FIELDS},
            )
            self.counter.labels(app, kind).inc()
            for sink in self.sinks:
                sink(app, event)
            if hooks and self.webhooks is not None:
                book = runbooks.get(kind)
                self.webhooks.offer(hooks, {**event, "runbook": book.as_json()} if book else event)
