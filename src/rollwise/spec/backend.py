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
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from rollwise.spec.base import Model, name_label

__all__ = ["BackendSpec", "GatewayRef", "Resources", "cluster_problems", "quantity"]

# Kubernetes' resource.Quantity: a number with an optional binary or decimal suffix
_QUANTITY_RE = re.compile(r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")


def quantity(value: str) -> str:
    if not _QUANTITY_RE.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity; write e.g. 250m, 1, 512Mi")
    return value


Quantity = Annotated[str, AfterValidator(quantity)]

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


def cluster_problems(
    backend: BackendSpec,
    image: str | None,
    canary: bool,
    header_matches: list[int],
    autoscaling: bool = False,
) -> list[str]:
    """What a spec lacks to run on Kubernetes (each with its field and how to fix it);
    ``header_matches``: the header matches of each ``setHeaderRoute`` step."""
    problems = []
    if autoscaling:
        problems.append(
            "spec.autoscaling is not run on a cluster: rollwise's autoscaler measures the "
            "requests its own proxy carries and its local processes' CPU, neither of which a "
            "cluster app has; leave it out and set spec.replicas (a HorizontalPodAutoscaler "
            "would fight rollwise over each Deployment's replicas)"
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
