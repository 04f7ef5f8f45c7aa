"""An app's Kubernetes objects, built from its spec: what the Kubernetes backend and router
apply, and what ``rollwise render`` writes.

Each revision is a Deployment of its own (``<app>-r<N>``), never edited after it is made: the
cluster's Deployment controller keeps its pods running and replaces the ones that die, while
rollwise only scales it (``/scale``), which keeps ``kubectl rollout status deployment/…`` and
``kubectl scale`` meaningful. (Argo Rollouts manages ReplicaSets itself because one Rollout
object owns every revision; here the controller is the owner, so the Deployment's own
supervision is free to use.) Two Services select a revision each by label: ``<app>-stable``
(the active one in blue-green) and ``<app>-canary`` (the preview); with no canary both select
the stable revision, as Argo's do. The ``gatewayAPI`` router splits traffic between them in
one HTTPRoute named after the app; the ``ingressNginx`` router in two Ingresses, ``<app>``
and its canary twin ``<app>-canary`` (ingress-nginx's canary annotations); the ``replicas``
router adds a Service ``<app>`` over every revision (traffic by replica ratio). Each revision's
secret environment is a Secret of its own (``<app>-r<N>-env``).

Objects carry ``app.kubernetes.io/managed-by: rollwise`` and ``rollwise.dev/app``: rollwise
finds its own objects by those labels and never touches one without them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from rollwise.kubernetes.names import (
    APP_LABEL,
    MANAGED_BY,
    REVISION_LABEL,
    VERSION_ANNOTATION,
)
from rollwise.spec.models import Rollout, SetHeaderRoute

__all__ = [
    "app_objects",
    "http_route",
    "ingresses",
    "owned_labels",
    "revision_deployment",
    "revision_name",
    "revision_secret",
    "secret_name",
    "services",
]

_LABEL_VALUE_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def revision_name(app: str, revision: int) -> str:
    return f"{app}-r{revision}"


def secret_name(app: str, revision: int) -> str:
    """The Secret that holds revision ``revision``'s secret environment: written by the
    controller from the spec's values when it runs the revision (``revision_secret``), made
    with the ``kubectl create secret`` that ``rollwise render`` prints when rendered files are
    applied by hand (values are never written into a file)."""
    return f"{app}-r{revision}-env"


def revision_secret(rollout: Rollout, revision: int, version: str) -> dict[str, Any] | None:
    """The revision's secret environment as an Opaque Secret (``None``: it has none). One per
    revision, as a Deployment is: a revision keeps the values it was released with, and goes
    with its Deployment."""
    template = rollout.spec.template
    keys = template.secret_names()
    if not keys:
        return None
    app = rollout.name
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(app, revision),
            "namespace": rollout.spec.backend.namespace,
            "labels": owned_labels(app, revision, version),
        },
        "type": "Opaque",
        "stringData": {name: template.env[name] for name in keys},
    }


def owned_labels(
    app: str, revision: int | None = None, version: str | None = None
) -> dict[str, str]:
    labels = {"app.kubernetes.io/name": app, APP_LABEL: app, **MANAGED_BY}
    if revision is not None:
        labels[REVISION_LABEL] = str(revision)
    if version is not None and _LABEL_VALUE_RE.match(version):
        labels["app.kubernetes.io/version"] = version
    return labels


def _selector(app: str, revision: int) -> dict[str, str]:
    return {APP_LABEL: app, REVISION_LABEL: str(revision)}


def _seconds(value: float) -> int:
    """Kubernetes counts probe periods in whole seconds (at least one)."""
    return max(1, math.ceil(value))


def _container_env(rollout: Rollout, revision: int, fields: dict[str, str]) -> list[dict[str, Any]]:
    """The container's variables: rollwise's own, the template's (secret ones from the
    revision's Secret), and ``secretRefs`` from the team's Secrets."""
    template = rollout.spec.template
    app = rollout.name
    env: list[dict[str, Any]] = [
        {"name": "ROLLWISE_REPLICA", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "ROLLWISE_APP", "value": app},
        {"name": "ROLLWISE_REVISION", "value": str(revision)},
        {"name": "ROLLWISE_VERSION", "value": fields["version"]},
        {"name": "PORT", "value": fields["port"]},
    ]
    for name, value in template.env.items():
        if template.is_secret(name):
            ours = {"name": secret_name(app, revision), "key": name}
            env.append({"name": name, "valueFrom": {"secretKeyRef": ours}})
        else:
            env.append({"name": name, "value": value.format_map(fields)})
    for name, ref in template.secret_refs.items():  # the team's own Secrets, never ours
        theirs = {"name": ref.secret, "key": ref.key}
        env.append({"name": name, "valueFrom": {"secretKeyRef": theirs}})
    return env


def _pod_spec(rollout: Rollout, container: dict[str, Any]) -> dict[str, Any]:
    """The revision's pod spec: its container, and what ``spec.backend.pod`` asks of the
    cluster."""
    pod = rollout.spec.backend.pod
    pod_spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": math.ceil(rollout.spec.template.stop_grace_period),
        "containers": [container],
    }
    if pod.service_account_name is not None:
        pod_spec["serviceAccountName"] = pod.service_account_name
    if pod.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in pod.image_pull_secrets]
    if pod.node_selector:
        pod_spec["nodeSelector"] = dict(pod.node_selector)
    if pod.tolerations:
        pod_spec["tolerations"] = [
            t.model_dump(by_alias=True, exclude_none=True) for t in pod.tolerations
        ]
    if pod.priority_class_name is not None:
        pod_spec["priorityClassName"] = pod.priority_class_name
    return pod_spec


def revision_deployment(
    rollout: Rollout, revision: int, version: str, replicas: int
) -> dict[str, Any]:
    """Revision ``revision`` (``version``) of the app as a Deployment of ``replicas`` pods.

    The template's placeholders take the pod's values: ``{port}`` the container port,
    ``{replica}`` the pod's name (``$(ROLLWISE_REPLICA)``, which Kubernetes expands), and
    ``{python}`` the image's ``python``. Secret variables come from the revision's Secret
    (``secret_name``), and ``template.secretRefs`` from the Secrets they name.
    """
    spec = rollout.spec
    template = spec.template
    backend = spec.backend
    app = rollout.name
    fields = {
        "port": str(backend.container_port),
        "version": version,
        "replica": "$(ROLLWISE_REPLICA)",
        "python": "python",
        "app": app,
        "revision": str(revision),
    }
    if template.image is None:
        raise ValueError("spec.template.image is not set")
    env = _container_env(rollout, revision, fields)
    readiness = template.readiness
    container: dict[str, Any] = {
        "name": app,
        "image": template.image.format_map(fields),
        "command": [a.format_map(fields) for a in template.command],
        "ports": [{"name": "http", "containerPort": backend.container_port, "protocol": "TCP"}],
        "env": env,
        "readinessProbe": {
            "httpGet": {"path": readiness.path, "port": "http"},
            "initialDelaySeconds": math.ceil(readiness.initial_delay),
            "periodSeconds": _seconds(readiness.interval),
            "timeoutSeconds": _seconds(readiness.timeout),
            "successThreshold": readiness.success_threshold,
            "failureThreshold": readiness.failure_threshold,
        },
    }
    resources = template.resources.model_dump(exclude_defaults=True)
    if resources:
        container["resources"] = resources
    labels = owned_labels(app, revision, version)
    pod = backend.pod
    pod_spec = _pod_spec(rollout, container)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": revision_name(app, revision),
            "namespace": backend.namespace,
            "labels": labels,
            "annotations": {VERSION_ANNOTATION: version},
        },
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 1,
            "progressDeadlineSeconds": math.ceil(spec.progress_deadline_seconds),
            "selector": {"matchLabels": _selector(app, revision)},
            "template": {
                "metadata": {
                    "labels": {**pod.labels, **labels},
                    "annotations": {**pod.annotations, VERSION_ANNOTATION: version},
                },
                "spec": pod_spec,
            },
        },
    }


def _service(rollout: Rollout, name: str, selector: dict[str, str]) -> dict[str, Any]:
    backend = rollout.spec.backend
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": backend.namespace,
            "labels": owned_labels(rollout.name),
        },
        "spec": {
            "selector": selector,
            "ports": [
                {
                    "name": "http",
                    "port": backend.service_port,
                    "targetPort": "http",
                    "protocol": "TCP",
                }
            ],
        },
    }


def services(rollout: Rollout, stable: int, canary: int | None) -> list[dict[str, Any]]:
    """``<app>-stable`` and ``<app>-canary`` (the canary's selector is the stable revision's
    when there is no canary); with the ``replicas`` router, ``<app>`` over every revision."""
    app = rollout.name
    made = [
        _service(rollout, f"{app}-stable", _selector(app, stable)),
        _service(
            rollout, f"{app}-canary", _selector(app, canary if canary is not None else stable)
        ),
    ]
    if rollout.spec.backend.router == "replicas":
        made.append(_service(rollout, app, {APP_LABEL: app}))
    return made


def http_route(
    rollout: Rollout, canary_weight: int, header_routes: Sequence[SetHeaderRoute] = ()
) -> dict[str, Any]:
    """The app's HTTPRoute: header routes first (all to the canary), then the weighted split
    (``canary_weight`` of 100 to ``<app>-canary``)."""
    app = rollout.name
    backend = rollout.spec.backend
    port = backend.service_port

    def ref(role: str, weight: int) -> dict[str, Any]:
        return {
            "group": "",
            "kind": "Service",
            "name": f"{app}-{role}",
            "port": port,
            "weight": weight,
        }

    rules: list[dict[str, Any]] = []
    for route in header_routes:
        matches = [
            {"headers": [{"type": "Exact", "name": m.header_name, "value": m.header_value}]}
            for m in route.match
        ]
        rules.append({"name": route.name, "matches": matches, "backendRefs": [ref("canary", 1)]})
    rules.append(
        {
            "name": "split",
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [ref("stable", 100 - canary_weight), ref("canary", canary_weight)],
        }
    )
    body: dict[str, Any] = {"rules": rules}
    if backend.gateway is not None:
        parent: dict[str, Any] = {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": backend.gateway.name,
        }
        if backend.gateway.namespace:
            parent["namespace"] = backend.gateway.namespace
        if backend.gateway.section_name:
            parent["sectionName"] = backend.gateway.section_name
        body["parentRefs"] = [parent]
    if backend.hostnames:
        body["hostnames"] = list(backend.hostnames)
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": app, "namespace": backend.namespace, "labels": owned_labels(app)},
        "spec": body,
    }


NGINX = "nginx.ingress.kubernetes.io/"  # ingress-nginx's annotations


def ingresses(
    rollout: Rollout, canary_weight: int, header_routes: Sequence[SetHeaderRoute] = ()
) -> list[dict[str, Any]]:
    """ingress-nginx's canary: the Ingress ``<app>`` to the stable Service, and
    ``<app>-canary`` for the same hosts and path to the canary Service, marked ``canary`` with
    its weight and (``setHeaderRoute``: one header at most) ``canary-by-header``. Both always
    exist, the canary one at weight 0 between rollouts (Flagger's way), so that a rollout
    changes annotations only."""
    app = rollout.name
    backend = rollout.spec.backend

    def ingress(name: str, role: str, annotations: dict[str, str]) -> dict[str, Any]:
        path = {
            "path": "/",
            "pathType": "Prefix",
            "backend": {
                "service": {"name": f"{app}-{role}", "port": {"number": backend.service_port}}
            },
        }
        rules = [{"host": host, "http": {"paths": [path]}} for host in backend.hostnames]
        meta: dict[str, Any] = {
            "name": name,
            "namespace": backend.namespace,
            "labels": owned_labels(app),
        }
        if annotations:
            meta["annotations"] = annotations
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": meta,
            "spec": {
                "ingressClassName": backend.ingress_class_name,
                "rules": rules or [{"http": {"paths": [path]}}],
            },
        }

    canary = {f"{NGINX}canary": "true", f"{NGINX}canary-weight": str(canary_weight)}
    matches = [m for route in header_routes for m in route.match]
    if len(matches) > 1:
        raise ValueError(
            f"ingress-nginx routes a canary by one header, and these header routes match "
            f"{len(matches)}: keep one setHeaderRoute with one match, or choose router gatewayAPI"
        )
    for match in matches:
        canary[f"{NGINX}canary-by-header"] = match.header_name
        canary[f"{NGINX}canary-by-header-value"] = match.header_value
    return [ingress(app, "stable", {}), ingress(f"{app}-canary", "canary", canary)]


def app_objects(rollout: Rollout, revision: int, version: str) -> list[dict[str, Any]]:
    """What a first release of ``version`` as ``revision`` applies: its Deployment, the
    Services (both on it), and the HTTPRoute (all traffic to stable) with ``gatewayAPI`` or
    the two Ingresses with ``ingressNginx``."""
    made = [revision_deployment(rollout, revision, version, rollout.spec.replicas)]
    made += services(rollout, revision, None)
    if rollout.spec.backend.router == "gatewayAPI":
        made.append(http_route(rollout, 0))
    elif rollout.spec.backend.router == "ingressNginx":
        made += ingresses(rollout, 0)
    return made
