"""``rollwise doctor --namespace NS``: can this kubeconfig run rollwise's apps in ``NS``?

The questions ``kubectl auth can-i`` asks, one ``SelfSubjectAccessReview`` per verb and
resource, for what the controller's Role grants (``install.RULES``, so the check and the Role
never disagree), and, from outside the cluster, for the ``pods/proxy`` and ``services/proxy``
that reach pods from a laptop (``backends/kubernetes_reach.py``); and whether the metrics API
that autoscaling reads is served. Reads only: a review changes nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from rollwise.kubernetes.connection import ClusterAccess, http_client, in_cluster
from rollwise.kubernetes.install import RULES

__all__ = ["Access", "Denied", "check_access"]

REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
METRICS_API = "/apis/metrics.k8s.io/v1beta1"  # metrics-server's: autoscaling on cpu reads it
# from outside the cluster, pods are reached through the API server (GET and POST)
PROXIES = [("", "pods/proxy", v) for v in ("get", "create")] + [
    ("", "services/proxy", v) for v in ("get", "create")
]


@dataclass(frozen=True, slots=True)
class Denied:
    group: str
    resource: str  # with its subresource: pods/log
    verb: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{self.verb} {where}"


@dataclass(frozen=True, slots=True)
class Access:
    """What the API server said: its address and version, and what it refused."""

    server: str
    version: str
    denied: list[Denied]  # of what the Role grants
    denied_proxies: list[Denied]  # of pods/proxy and services/proxy, from outside only
    metrics: int  # the status the metrics API's discovery answered (200: metrics-server)


def _asked() -> list[tuple[str, str, str]]:
    return [
        (group, resource, verb)
        for rule in RULES
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    ]


async def _review(
    client: httpx.AsyncClient, namespace: str, group: str, resource: str, verb: str
) -> Denied | None:
    name, _, sub = resource.partition("/")
    attributes = {"namespace": namespace, "verb": verb, "group": group, "resource": name}
    if sub:
        attributes["subresource"] = sub
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
    answer = await client.post(REVIEWS, json=body)
    answer.raise_for_status()
    status = answer.json().get("status") or {}
    if status.get("allowed"):
        return None
    return Denied(group, resource, verb, str(status.get("reason") or ""))


async def _check(access: ClusterAccess, namespace: str) -> Access:
    async with http_client(access) as client:
        version = (await client.get("/version")).raise_for_status().json()
        asked = _asked()
        proxies = [] if in_cluster() else PROXIES
        answers = await asyncio.gather(
            *(_review(client, namespace, *question) for question in asked + proxies)
        )
        denied = [a for a in answers[: len(asked)] if a is not None]
        denied_proxies = [a for a in answers[len(asked) :] if a is not None]
        metrics = (await client.get(METRICS_API)).status_code
        return Access(
            str(client.base_url),
            str(version.get("gitVersion", "?")),
            denied,
            denied_proxies,
            metrics,
        )


def check_access(access: ClusterAccess, namespace: str) -> Access:
    """Ask the API server what this identity may do in ``namespace`` (``httpx.HTTPError``
    when it cannot be asked, ``ClusterError`` when the kubeconfig cannot be used)."""
    return asyncio.run(_check(access, namespace))
