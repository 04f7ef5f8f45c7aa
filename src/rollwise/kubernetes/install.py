"""The controller's own objects for running ``rollwise up`` in the cluster.

One controller pod (a Deployment of one replica, ``Recreate``: two pods never share the state
volume), its state on a PersistentVolumeClaim, a ServiceAccount with a Role that grants what
the Kubernetes backend and router use in the app's namespace and nothing else, and the Lease
that says which controller acts (a second controller, from a laptop say, waits for it).
"""

from __future__ import annotations

from typing import Any

from rollwise._version import __version__
from rollwise.kubernetes.names import CONTROLLER, LEASE, MANAGED_BY

__all__ = ["controller_objects"]

STATE_DIR = "/var/lib/rollwise"
_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
# what the backend and router touch; pods are only read (readiness, a crash's log), events
# only written
RULES = [
    {"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"], "verbs": _VERBS},
    {"apiGroups": [""], "resources": ["services"], "verbs": _VERBS},
    # each revision's secret environment (kubernetes/objects.py::revision_secret)
    {"apiGroups": [""], "resources": ["secrets"], "verbs": _VERBS},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    # a crashed container's last lines, for the event that ends its release
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    # the pods' CPU in use (metrics-server), for spec.autoscaling
    {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["get", "list"]},
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    {
        "apiGroups": ["gateway.networking.k8s.io"],
        "resources": ["httproutes"],
        "verbs": _VERBS,
    },
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": _VERBS},
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "list", "watch", "create", "update", "patch"],
    },
]


def _meta(name: str, namespace: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": CONTROLLER, **MANAGED_BY}
    return {"name": name, "namespace": namespace, "labels": labels}


def _deployment(namespace: str, image: str) -> dict[str, Any]:
    """The controller's pod: ``rollwise up`` on the state volume, as its ServiceAccount."""
    pod_labels = {"app.kubernetes.io/name": CONTROLLER, **MANAGED_BY}
    container = {
        "name": "controller",
        "image": image,
        "command": [
            "rollwise",
            "up",
            "--state-dir",
            STATE_DIR,
            "--log-format",
            "json",
            "--metrics-port",
            "9470",
            "--metrics-host",
            "0.0.0.0",  # in its pod, for the cluster's Prometheus to scrape
            "--backend",
            "kubernetes",
            "--leader-elect",  # the Lease below: a laptop's controller waits for this one
        ],
        "env": [
            {"name": "ROLLWISE_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "ROLLWISE_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
        ],
        "ports": [{"name": "metrics", "containerPort": 9470, "protocol": "TCP"}],
        "volumeMounts": [{"name": "state", "mountPath": STATE_DIR}],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(CONTROLLER, namespace),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": pod_labels},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "serviceAccountName": CONTROLLER,
                    "securityContext": {"runAsNonRoot": True, "fsGroup": 10001},
                    "containers": [container],
                    "volumes": [
                        {
                            "name": "state",
                            "persistentVolumeClaim": {"claimName": f"{CONTROLLER}-state"},
                        }
                    ],
                },
            },
        },
    }


def controller_objects(
    namespace: str, image: str | None = None, storage: str = "1Gi"
) -> list[dict[str, Any]]:
    """ServiceAccount, Role, RoleBinding, Lease, PersistentVolumeClaim and Deployment of the
    controller in ``namespace`` (``image`` defaults to this rollwise's version)."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(CONTROLLER, namespace)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(CONTROLLER, namespace),
            "rules": RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(CONTROLLER, namespace),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": CONTROLLER,
            },
            "subjects": [{"kind": "ServiceAccount", "name": CONTROLLER, "namespace": namespace}],
        },
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": _meta(LEASE, namespace),
            "spec": {"leaseDurationSeconds": 15},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": _meta(f"{CONTROLLER}-state", namespace),
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": storage}},
            },
        },
        _deployment(namespace, image or f"rollwise:{__version__}"),
    ]
