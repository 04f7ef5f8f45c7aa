"""How the controller reaches a cluster app over HTTP: its pods (smoke tests and the agent-card
check before a revision's first request, ``agentMetrics``) and its live entry, the stable
Service (smoke tests after promotion, scheduled smoke tests).

Inside the cluster (``connection.in_cluster``) pods answer at their address and the Service
at its DNS name (``InCluster``). A pod's IP is routed only inside its cluster's network, so
a controller that drives a cluster from a laptop goes through the API server's proxy
subresources instead, as ``kubectl proxy`` does (``ThroughApi``):
``/api/v1/namespaces/NS/pods/NAME:PORT/proxy/PATH`` and ``…/services/NAME:PORT/proxy/PATH``,
with the kubeconfig's own credentials and TLS. Whoever the kubeconfig names needs ``get``
and ``create`` on ``pods/proxy`` and ``services/proxy`` (GET and POST through them).
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from rollwise.backends.base import LIMITS, Direct
from rollwise.kubernetes.connection import ClusterAccess, load_config
from rollwise.spec.models import RolloutSpec

__all__ = ["InCluster", "PodAt", "ThroughApi"]

# the pod (namespace, name, container port) whose replica answers at an address
PodAt = Callable[[str], tuple[str, str, int] | None]


def _stable(app: str, spec: RolloutSpec) -> tuple[str, str, int]:
    """The app's stable Service: namespace, name, port."""
    return spec.backend.namespace, f"{app}-stable", spec.backend.service_port


class InCluster(Direct):
    """Pods at their address, the stable Service at its cluster DNS name."""

    def entry(self, app: str, spec: RolloutSpec) -> tuple[str, str]:
        namespace, name, port = _stable(app, spec)
        return f"http://{name}.{namespace}.svc:{port}", f"the Service {namespace}/{name}"


class ThroughApi:
    """Pods and the stable Service through the API server's proxy subresources."""

    def __init__(self, access: ClusterAccess, pod_at: PodAt) -> None:
        self.config = load_config(access)
        self.server = self.config.cluster.server.rstrip("/")
        self.pod_at = pod_at

    def url(self, address: str) -> str:
        pod = self.pod_at(address)
        if pod is None:
            # not a pod of ours (gone since it was listed): a path the API server answers 404,
            # never the address itself, which would carry the cluster's credentials elsewhere
            return f"{self.server}/api/v1/namespaces/default/pods/unknown-{address}/proxy"
        namespace, name, port = pod
        return f"{self.server}/api/v1/namespaces/{namespace}/pods/{name}:{port}/proxy"

    def entry(self, app: str, spec: RolloutSpec) -> tuple[str, str]:
        namespace, name, port = _stable(app, spec)
        url = f"{self.server}/api/v1/namespaces/{namespace}/services/{name}:{port}/proxy"
        return url, f"the Service {namespace}/{name}"

    def client(
        self, timeout: float | None, limits: httpx.Limits | None = None
    ) -> httpx.AsyncClient:
        from lightkube.config.client_adapter import ConnectionParams

        params = ConnectionParams(timeout=httpx.Timeout(timeout), trust_env=False)
        return httpx.AsyncClient(**params.httpx_params(self.config), limits=limits or LIMITS)
