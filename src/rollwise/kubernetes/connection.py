"""Reaching the Kubernetes API: a kubeconfig from a laptop, or the pod's service account.

The client is lightkube (on httpx, the HTTP stack the rest of rollwise uses; its typed models
and kubeconfig handling: exec plugins, client certificates, in-cluster tokens). Why lightkube
0.22 and not 1.x, kr8s or kubernetes-asyncio: docs/kubernetes.md. It is imported here only,
and only by what talks to a cluster, so that local apps never pay for its import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import stamina

from rollwise.errors import ClusterError

if TYPE_CHECKING:
    from lightkube import AsyncClient
    from lightkube.config.kubeconfig import SingleConfig

__all__ = [
    "FIELD_MANAGER",
    "ClusterAccess",
    "api_retry",
    "check",
    "connect",
    "http_client",
    "in_cluster",
    "load_config",
]

FIELD_MANAGER = "rollwise"


@dataclass(frozen=True, slots=True)
class ClusterAccess:
    """Where the API is: ``kubeconfig`` (``None``: in the cluster, else ``$KUBECONFIG`` or
    ``~/.kube/config``), its ``context`` (``None``: the current one), and the namespace."""

    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str | None = None


def load_config(access: ClusterAccess) -> SingleConfig:
    """The kubeconfig context (or the pod's service account) that ``access`` names."""
    from lightkube import ConfigError, KubeConfig

    try:
        if access.kubeconfig is not None:
            config = KubeConfig.from_file(access.kubeconfig)
        else:
            config = KubeConfig.from_env()
        single = config.get(context_name=access.context)
    except ConfigError as exc:
        place = access.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise ClusterError(
            f"cannot use the kubeconfig {place}: {exc}; give one with --kubeconfig (and "
            "--context), or run in a pod with a service account"
        ) from None
    assert single is not None  # get() raises rather than return None without a default
    return single


def in_cluster() -> bool:
    """Whether this process runs in a pod (Kubernetes sets the variable in every container):
    there, pods answer at their own addresses."""
    return "KUBERNETES_SERVICE_HOST" in os.environ


def check(access: ClusterAccess) -> None:
    """Refuse a kubeconfig that cannot be used (``ClusterError``) before anything starts."""
    load_config(access)


def connect(access: ClusterAccess) -> AsyncClient:
    """An API client for ``access``; requests are sent when it is used."""
    from lightkube import AsyncClient

    config = load_config(access)
    return AsyncClient(config, namespace=access.namespace, field_manager=FIELD_MANAGER)


def http_client(access: ClusterAccess) -> httpx.AsyncClient:
    """A plain httpx client on the same API, credentials and TLS, for what lightkube does
    not do: watches with bookmarks that list again after 410 (``kubernetes/watch.py``)."""
    from lightkube.config.client_adapter import AsyncClient, ConnectionParams

    return AsyncClient(load_config(access), ConnectionParams(timeout=httpx.Timeout(10.0)))


def _retryable(exc: Exception) -> bool | float:
    """stamina's backoff hook for API writes: a 429 waits what its ``Retry-After`` says, a 5xx,
    a 409 (a write that lost a race) or a lost connection backs off and tries again; any other
    answer is final (a 4xx says what to fix)."""
    if isinstance(exc, httpx.TransportError):
        return True
    if not isinstance(exc, httpx.HTTPStatusError):
        return False
    code = exc.response.status_code
    if code == 429:
        try:
            return float(exc.response.headers.get("Retry-After", ""))
        except ValueError:
            return True
    return code >= 500 or code == 409


# lightkube's ApiError is an httpx.HTTPStatusError: its answer decides
api_retry = stamina.retry(on=_retryable, attempts=5, timeout=30.0, wait_max=5.0)
