"""Events: every decision the controller takes, stored, logged and counted.

An event is written to the store first (it is the history people read), then logged with
structlog and counted in Prometheus. Webhooks join this path with the strategies issue.
"""

from __future__ import annotations

from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter

from rollwise.store import Store

__all__ = ["Events"]


class Events:
    def __init__(self, store: Store, registry: CollectorRegistry) -> None:
        self.store = store
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
        kind: str,
        message: str,
        revision: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.store.add_event(app, kind, message, revision, data)
        self.log.info(message, kind=kind, app=app, revision=revision, **(data or {}))
        self.counter.labels(app, kind).inc()
