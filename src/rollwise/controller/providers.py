"""The one place that knows the implementations: a spec's ``backend.kind`` → its backend,
traffic router and metric source.

Everything else in the controller speaks to the three protocols (``backends/base.py``,
``routing/base.py``, ``analysis/source.py``). A new kind (Kubernetes with a Gateway API
router and a Prometheus source, say) is one more entry in ``KINDS`` and its modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rollwise.analysis.agent_source import ReplicaScraper
from rollwise.analysis.proxy_source import ProxyMetrics
from rollwise.analysis.source import MetricSource
from rollwise.backends.base import Backend, BackendEvents, HealthListener
from rollwise.backends.local import LocalBackend
from rollwise.errors import UsageError
from rollwise.routing.base import ReplicaWatcher, TrafficRouter
from rollwise.routing.builtin import ProxyRouter
from rollwise.routing.options import ProxyOptions
from rollwise.spec import RolloutSpec
from rollwise.store import Store

__all__ = ["KINDS", "Listeners", "Providers", "kind_of", "local"]


@dataclass(frozen=True, slots=True)
class Listeners:
    """How providers report to the controller."""

    health_changed: HealthListener  # (app, revision)
    backend_event: BackendEvents  # (app, revision, kind, message)
    replica_ejected: ReplicaWatcher  # (address, ejected)
    data_plane_restarted: Callable[[], None]


@dataclass(frozen=True, slots=True)
class Providers:
    backend: Backend
    router: TrafficRouter
    metrics: MetricSource
    agent: ReplicaScraper  # the replicas' own counters (``agentMetrics``)


def local(store: Store, state_dir: Path, proxy: ProxyOptions, listeners: Listeners) -> Providers:
    """Processes on this machine, rollwise's proxy in front, the proxy's statistics, the
    replicas' own counters scraped from their addresses."""
    router = ProxyRouter(
        store,
        state_dir,
        proxy,
        on_ejection=listeners.replica_ejected,
        on_restart=listeners.data_plane_restarted,
    )
    backend = LocalBackend(
        store,
        state_dir,
        on_event=listeners.backend_event,
        on_change=listeners.health_changed,
    )
    scraper = ReplicaScraper(backend.addresses)
    return Providers(backend, router, ProxyMetrics(router.dataplane), scraper)


KINDS: dict[str, Callable[[Store, Path, ProxyOptions, Listeners], Providers]] = {"local": local}


def kind_of(spec: RolloutSpec) -> str:
    """The spec's backend kind, if this controller runs it (else ``UsageError``: nothing is
    applied)."""
    kind = spec.backend.kind
    if kind not in KINDS:
        raise UsageError(
            f"spec.backend.kind is {kind}, and this controller runs {', '.join(sorted(KINDS))} "
            f"apps only; `rollwise render -f FILE --version V` writes a {kind} app's objects "
            "for kubectl"
        )
    return kind
