"""Where an app's revisions run: ``spec.backend`` and the Kubernetes parts of a template.

``local`` (the default) runs each replica as a process on this machine behind rollwise's own
proxy. ``kubernetes`` describes the same app as cluster objects: a Deployment per revision,
Services for the stable and canary revisions and, with the ``gatewayAPI`` router, one
HTTPRoute whose weights split the traffic (``rollwise render`` writes them). The router names
follow Argo Rollouts' providers: a Gateway API route, ingress-nginx's canary Ingress
(``ingressNginx``: a second Ingress with its canary annotations), a Service selector switch
(blue-green only), or the replica ratio when the cluster has neither (coarse: a weight moves
in steps of one replica).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from rollwise.spec.autoscaling import Targets
from rollwise.spec.base import Model, name_label

__all__ = [
    "BackendSpec",
    "GatewayRef",
    "PodSettings",
    "Resources",
    "Toleration",
    "cluster_problems",
    "cpu_cores",
    "quantity",
]

# Kubernetes' resource.Quantity: a number with an optional binary or decimal suffix
_QUANTITY_RE = re.compile(r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")


def quantity(value: str) -> str:
    if not _QUANTITY_RE.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity; write e.g. 250m, 1, 512Mi")
    return value


Quantity = Annotated[str, AfterValidator(quantity)]

_CPU_SUFFIX = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0}


def cpu_cores(value: str) -> float:
    """A CPU quantity in cores: a request (``250m``, ``0.5``) or metrics-server's usage
    (``31415926n``)."""
    number, suffix = (value[:-1], value[-1]) if value and value[-1] in "num" else (value, "")
    try:
        return float(number) * _CPU_SUFFIX[suffix]
    except ValueError:
        raise ValueError(f"{value!r} is not a CPU quantity; e.g. 250m, 0.5, 31415926n") from None


# Gateway API's Hostname: a DNS name, optionally with a leading wildcard label
_HOSTNAME_RE = re.compile(
    r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)


def _hostname(value: str) -> str:
    if len(value) > 253 or not _HOSTNAME_RE.match(value):
        raise ValueError(f"{value!r} is not a host name; write e.g. agent.example.com")
    return value


ResourceName = Literal["cpu", "memory", "ephemeral-storage"]


class Resources(Model):
    """A container's ``resources`` in Kubernetes' words (the local backend ignores them)."""

    requests: dict[ResourceName, Quantity] = Field(default_factory=dict)
    limits: dict[ResourceName, Quantity] = Field(default_factory=dict)


class GatewayRef(Model):
    """The Gateway (and listener) the app's HTTPRoute attaches to."""

    name: Annotated[str, AfterValidator(name_label("gateway name", "public"))]
    namespace: Annotated[str, AfterValidator(name_label("namespace", "gateways"))] | None = None
    section_name: str | None = None


_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")
# the labels by which rollwise finds its own objects (kubernetes/names.py): never the spec's
_OURS = ("rollwise.dev/", "app.kubernetes.io/managed-by", "app.kubernetes.io/name")


def _subdomain(what: str) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) > 253 or not _SUBDOMAIN_RE.match(value):
            raise ValueError(
                f"{value!r} is not a valid {what}; use lowercase letters, digits, '-' and '.', "
                "e.g. registry-credentials"
            )
        return value

    return AfterValidator(check)


def _key(value: str) -> str:
    """A label or annotation key: ``[prefix/]name`` as Kubernetes takes it."""
    prefix, _, name = value.rpartition("/")
    if (prefix and not _SUBDOMAIN_RE.match(prefix)) or not _LABEL_NAME_RE.match(name):
        raise ValueError(f"{value!r} is not a label key; write e.g. example.com/team or team")
    return value


LabelKey = Annotated[str, AfterValidator(_key)]


class Toleration(Model):
    """A Kubernetes toleration: the pods may run on nodes with a matching taint."""

    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class PodSettings(Model):
    """What a revision's pods take from the cluster beyond their container: the team's
    service account (its cloud identity, its RBAC), pull secrets for a private registry,
    where they may run, and labels and annotations (a mesh's sidecar injection, a cost
    centre). Applied to every revision's pod template as given."""

    service_account_name: Annotated[str, _subdomain("service account name")] | None = None
    image_pull_secrets: list[Annotated[str, _subdomain("Secret name")]] = Field(
        default_factory=list
    )
    node_selector: dict[LabelKey, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    priority_class_name: Annotated[str, _subdomain("priority class name")] | None = None
    labels: dict[LabelKey, Annotated[str, Field(max_length=63)]] = Field(default_factory=dict)
    annotations: dict[LabelKey, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _not_ours(self) -> Self:
        taken = sorted(k for k in self.labels if k.startswith(_OURS))
        if taken:
            raise ValueError(
                f"labels {', '.join(taken)} are rollwise's own (how it finds its objects); "
                "give the pods other labels"
            )
        return self


class BackendSpec(Model):
    """``kind`` picks the backend; the other fields describe the cluster (the local backend
    ignores them, and ``rollwise render --backend kubernetes`` of a local app uses them)."""

    kind: Literal["local", "kubernetes"] = "local"
    namespace: Annotated[str, AfterValidator(name_label("namespace", "agents"))] = "default"
    context: str | None = None  # the kubeconfig context, from a laptop; none in a pod
    router: Literal["gatewayAPI", "ingressNginx", "service", "replicas"] = "gatewayAPI"
    gateway: GatewayRef | None = None
    # the ingressNginx router's IngressClass
    ingress_class_name: Annotated[str, AfterValidator(name_label("ingress class", "nginx"))] = (
        "nginx"
    )
    hostnames: list[Annotated[str, AfterValidator(_hostname)]] = Field(default_factory=list)
    container_port: Annotated[int, Field(ge=1, le=65535)] = 8080
    service_port: Annotated[int, Field(ge=1, le=65535)] = 80
    pod: PodSettings = Field(default_factory=PodSettings)


def cluster_problems(
    backend: BackendSpec,
    image: str | None,
    canary: bool,
    header_matches: list[int],
    autoscaling: Targets | None = None,
    cpu_request: str | None = None,
) -> list[str]:
    """What a spec lacks to run on Kubernetes (each with its field and how to fix it);
    ``header_matches``: the header matches of each ``setHeaderRoute`` step; ``autoscaling``:
    its targets, ``cpu_request``: the template's CPU request."""
    problems = []
    if autoscaling is not None and (autoscaling.in_flight or autoscaling.p95_latency):
        problems.append(
            "spec.autoscaling.target scales a cluster app on cpu only (the pods' usage from the "
            "metrics API, as an HPA does); inFlight and p95Latency are counted by rollwise's "
            "own proxy, which a cluster app does not go through: keep cpu"
        )
    if autoscaling is not None and autoscaling.cpu is not None and cpu_request is None:
        problems.append(
            "spec.autoscaling.target.cpu is a share of the pods' CPU request on a cluster "
            "(an HPA's utilization): set spec.template.resources.requests.cpu, e.g. 250m"
        )
    if backend.router == "ingressNginx" and sum(header_matches) > 1:
        problems.append(
            "spec.backend.router ingressNginx sends a canary one header (its canary-by-header "
            "annotations): keep one setHeaderRoute with one match, or choose router gatewayAPI"
        )
    if image is None:
        problems.append(
            "spec.template.image is not set; a pod runs an image: give one, e.g. "
            "ghcr.io/acme/weather-agent:{version}"
        )
    if backend.router == "gatewayAPI" and backend.gateway is None:
        problems.append(
            "spec.backend.gateway is not set; the gatewayAPI router attaches an HTTPRoute to "
            "a Gateway: give its name (and namespace), or choose router: replicas"
        )
    if backend.router == "service" and canary:
        problems.append(
            "spec.backend.router service switches a Service's selector, which only blue-green "
            "can use; choose router gatewayAPI (or replicas) for a canary"
        )
    return problems
