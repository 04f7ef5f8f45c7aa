"""Events: every decision the controller takes, stored, logged and counted.

An event is written to the store first (it is the history people read), then logged with
structlog, counted in Prometheus, and offered to the app's webhooks (queued, never waited for).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter

from rollwise.controller.webhooks import Webhooks
from rollwise.redact import SECRETS
from rollwise.spec import RolloutSpec
from rollwise.store import Store
from rollwise.words import EventKind

__all__ = ["Events"]


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
        self.spec_of = spec_of  # an app's spec as applied (``None``: the controller's own)
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
        # a replica's last log line or a check's output may carry a secret value
        message, data = SECRETS.text(message), SECRETS.redact(data)
        event_id = self.store.add_event(app, kind, message, revision, data)
        self.log.info(message, kind=kind, app=app, revision=revision, **(data or {}))
        self.counter.labels(app, kind).inc()
        spec = self.spec_of(app) if self.webhooks is not None else None
        if self.webhooks is not None and spec is not None:
            hooks = list(spec.webhooks)
            if hooks:
                event = {
                    "id": event_id,
                    "ts": time.time(),
                    "app": app,
                    "kind": kind,
                    "revision": revision,
                    "message": message,
                    "data": data or {},
                }
                self.webhooks.offer(hooks, event)
