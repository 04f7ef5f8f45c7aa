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
from typing import TYPE_CHECKING, Any

from rollwise.analysis.agent_source import ReplicaScraper
from rollwise.analysis.proxy_source import ProxyMetrics
from rollwise.analysis.source import MetricSource, NoTraffic
from rollwise.backends.base import Backend, BackendEvents, HealthListener
from rollwise.backends.local import LocalBackend
from rollwise.errors import UsageError
from rollwise.routing.base import ReplicaWatcher, TrafficRouter
from rollwise.routing.builtin import ProxyRouter
from rollwise.routing.options import ProxyOptions
from rollwise.spec import RolloutSpec
from rollwise.store import Store

if TYPE_CHECKING:
    from rollwise.kubernetes.connection import ClusterAccess
    from rollwise.spec.models import Rollout

__all__ = [
    "KINDS",
    "Listeners",
    "Providers",
    "Setup",
    "kind_of",
    "kubernetes",
    "local",
]


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
    # where the platform records events too (app, event as stored): a cluster's Events
    told: Callable[[str, dict[str, Any]], None] | None = None


@dataclass(frozen=True, slots=True)
class Setup:
    """What providers are built from."""

    store: Store
    state_dir: Path
    proxy: ProxyOptions
    listeners: Listeners
    rollouts: Callable[[str], Rollout | None]  # an app's current spec
    cluster: ClusterAccess | None = None  # where the Kubernetes API is (kind kubernetes)


def local(setup: Setup) -> Providers:
    """Processes on this machine, rollwise's proxy in front, the proxy's statistics, the
    replicas' own counters scraped from their addresses."""
    listeners = setup.listeners
    router = ProxyRouter(
        setup.store,
        setup.state_dir,
        setup.proxy,
        on_ejection=listeners.replica_ejected,
        on_restart=listeners.data_plane_restarted,
    )
    backend = LocalBackend(
        setup.store,
        setup.state_dir,
        on_event=listeners.backend_event,
        on_change=listeners.health_changed,
    )
    scraper = ReplicaScraper(backend.addresses, backend.reach)
    return Providers(backend, router, ProxyMetrics(router.dataplane), scraper)


def kubernetes(setup: Setup) -> Providers:
    """Deployments on a cluster, Services and an HTTPRoute in front (docs/kubernetes.md)."""
    from rollwise.backends.kubernetes import KubernetesBackend
    from rollwise.backends.kubernetes_reach import InCluster, ThroughApi
    from rollwise.kubernetes.connection import ClusterAccess, connect, http_client, in_cluster
    from rollwise.routing.gateway import GatewayRouter

    access = setup.cluster or ClusterAccess()
    backend = KubernetesBackend(
        connect(access),
        http_client(access),
        on_event=setup.listeners.backend_event,
        on_change=setup.listeners.health_changed,
    )
    backend.reach = InCluster() if in_cluster() else ThroughApi(access, backend.pod_at)
    router = GatewayRouter(connect(access), setup.rollouts)
    scraper = ReplicaScraper(backend.addresses, backend.reach)
    return Providers(backend, router, NoTraffic(), scraper, told=backend.record)


KINDS: dict[str, Callable[[Setup], Providers]] = {"local": local, "kubernetes": kubernetes}


def kind_of(spec: RolloutSpec, runs: str = "local") -> str:
    """The spec's backend kind, if this controller (which runs ``runs`` apps) runs it; else
    ``UsageError``, and nothing is applied."""
    kind = spec.backend.kind
    if kind != runs:
        start = (
            "rollwise up --backend kubernetes [--kubeconfig K]"
            if kind == "kubernetes"
            else ("rollwise up")
        )
        raise UsageError(
            f"spec.backend.kind is {kind}, and this controller runs {runs} apps; a {kind} app "
            f"needs a controller of its own ({start}), or `rollwise render -f FILE --version "
            "V` writes its objects for kubectl"
        )
    return kind
