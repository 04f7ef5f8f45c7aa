"""Traffic on a cluster: two Services and a Gateway API HTTPRoute per app, the second router.

An app's routing table becomes objects (``kubernetes/objects.py``):

- ``<app>-stable`` selects the stable revision's pods, ``<app>-canary`` the canary's (the
  stable's when there is none): a blue-green switch is a change of the stable Service's
  selector (Argo Rollouts' way; it needs no gateway, ``router: service``);
- the HTTPRoute ``<app>`` splits by weight between the two Services and sends the canary's
  header routes (``setHeaderRoute``) to the canary first (``router: gatewayAPI``);
- or ingress-nginx does, from two Ingresses: ``<app>`` to the stable Service and
  ``<app>-canary`` to the canary one with ingress-nginx's ``canary``, ``canary-weight`` and
  ``canary-by-header`` annotations (``router: ingressNginx``, Flagger's and Argo's nginx
  provider);
- ``router: replicas`` keeps an ``<app>`` Service over every revision: traffic follows the
  ready pods' ratio, which is coarse (a 10 % step with 3 pods is 25 % or 33 %).

Services are applied before the route, so weight never points at a Service whose selector
has not moved yet. After an apply the route is read back (Argo Rollouts' *VerifyWeight*):
the weights must be those asked for, and a gateway that reports the route not ``Accepted``
(``status.parents[].conditions``) makes it a ``DataPlaneError`` that names its reason. A
cluster without a gateway controller writes no status: the route then counts as applied.
The canary Ingress is read back the same way (its weight annotation; ingress-nginx reports
no acceptance).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from rollwise.errors import DataPlaneError
from rollwise.kubernetes.connection import api_retry
from rollwise.kubernetes.objects import NGINX, http_route, ingresses, services
from rollwise.routing.base import ReplicaTraffic
from rollwise.routing.table import AppTable, Table
from rollwise.spec.models import HeaderMatch, Rollout, SetHeaderRoute
from rollwise.words import PREVIEW_SUFFIX

if TYPE_CHECKING:
    from lightkube import AsyncClient

__all__ = ["GatewayRouter", "split"]

Obj = dict[str, Any]


def _http_route() -> Any:
    """lightkube's class for the HTTPRoute CRD (made once, then looked up by lightkube)."""
    from lightkube.generic_resource import create_namespaced_resource, get_generic_resource

    known = get_generic_resource("gateway.networking.k8s.io/v1", "HTTPRoute")  # type: ignore[no-untyped-call]
    if known is not None:
        return known
    return create_namespaced_resource("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes")


def _weights(spec: Obj) -> list[list[int | None]]:
    """An HTTPRoute spec's weights, rule by rule."""
    return [[ref.get("weight") for ref in rule["backendRefs"]] for rule in spec.get("rules", [])]


def split(routes: AppTable) -> tuple[int | None, int | None, int]:
    """(stable revision, canary revision, canary weight) of a table; ``ValueError`` when two
    Services cannot carry it (more than two revisions take traffic)."""
    stable = canary = None
    weight = 0
    for entry in routes.revisions:
        if "stable" in entry.labels:
            stable = int(entry.name)
        if "canary" in entry.labels:
            canary, weight = int(entry.name), entry.weight
    weighted = {int(e.name) for e in routes.revisions if e.weight > 0}
    if weighted - {stable, canary}:
        raise ValueError(
            f"revisions {sorted(weighted)} take traffic; a cluster's router carries the "
            "stable and the canary only: promote or abort the running rollout first"
        )
    return stable, canary, weight


class GatewayRouter:
    """``TrafficRouter`` on a cluster (see the module's docstring)."""

    def __init__(self, client: AsyncClient, specs: Callable[[str], Rollout | None]) -> None:
        self.client = client
        self.specs = specs
        self.tables: dict[str, AppTable] = {}
        self.written: dict[str, object] = {}
        self.problems: dict[str, str] = {}
        self._generation = 0

    @property
    def generation(self) -> int:
        return self._generation

    async def start(self) -> bool:
        return False  # the gateway is the cluster's; routes already applied stay applied

    async def set_routes(self, app: str, routes: AppTable | None) -> bool:
        if app.endswith(PREVIEW_SUFFIX) or routes is None:
            return False  # a preview is the canary Service; an app's objects outlive it
        rollout = self.specs(app)
        if rollout is None:
            return False
        try:
            stable, canary, weight = split(routes)
        except ValueError as exc:
            self.problems[app] = str(exc)
            raise DataPlaneError(f"{app}: {exc}") from None
        if stable is None:
            return False  # nothing serves yet
        # what the objects say (pods come and go without a write: the Services select them)
        key = (stable, canary, weight, routes.header_routes, rollout.spec.backend)
        if self.written.get(app) == key:
            return False
        try:
            await self._apply_all(rollout, routes, stable, canary, weight)
        except httpx.HTTPError as exc:
            self.problems[app] = f"the cluster refused the routes: {exc}"
            raise DataPlaneError(f"{app}: {self.problems[app]}") from None
        except DataPlaneError as exc:
            self.problems[app] = str(exc)
            raise
        self.problems.pop(app, None)
        self.tables[app] = routes
        self.written[app] = key
        self._generation += 1
        return True

    @api_retry
    async def _apply_all(
        self, rollout: Rollout, routes: AppTable, stable: int, canary: int | None, weight: int
    ) -> None:
        from lightkube import codecs

        backend = rollout.spec.backend
        if backend.router == "service" and 0 < weight < 100:
            raise DataPlaneError(
                f"{rollout.name}: router service switches all traffic at once (blue-green); "
                f"a canary weight of {weight} needs router gatewayAPI"
            )
        if backend.router == "service" and weight == 100 and canary is not None:
            stable = canary  # all traffic to the canary: the one Service selects it
        for service in services(rollout, stable, canary):
            await self.client.apply(codecs.from_dict(service), force=True)
        header_routes = [
            SetHeaderRoute(
                name=f"header-{i}",
                match=[HeaderMatch(header_name=n, header_value=v) for n, v in entry.match],
            )
            for i, entry in enumerate(routes.header_routes)
        ]
        if backend.router == "ingressNginx":
            try:
                made = ingresses(rollout, weight, header_routes)
            except ValueError as exc:
                raise DataPlaneError(f"{rollout.name}: {exc}") from None
            for ingress in made:
                await self.client.apply(codecs.from_dict(ingress), force=True)
            await self._verify_ingress(made[-1])
            return
        if backend.router != "gatewayAPI":
            return
        route = http_route(rollout, weight, header_routes)
        _http_route()  # codecs.from_dict needs the CRD's class
        await self.client.apply(codecs.from_dict(route), force=True)
        await self._verify(route)

    async def _verify(self, route: Obj) -> None:
        """Read the route back: the weights asked for, and no parent that refuses it."""
        meta = route["metadata"]
        found = await self.client.get(_http_route(), meta["name"], namespace=meta["namespace"])
        asked, got = _weights(route["spec"]), _weights(found.spec or {})
        if asked != got:
            where = f"-n {meta['namespace']} httproute {meta['name']}"
            raise DataPlaneError(
                f"HTTPRoute {meta['namespace']}/{meta['name']} has weights {got}, not {asked}: "
                f"something else writes it (`kubectl get {where} -o yaml` names its managers)"
            )
        for parent in (found.status or {}).get("parents") or []:
            for condition in parent.get("conditions") or []:
                if condition.get("type") == "Accepted" and condition.get("status") == "False":
                    gateway = parent.get("parentRef", {}).get("name", "?")
                    raise DataPlaneError(
                        f"Gateway {gateway} does not accept HTTPRoute "
                        f"{meta['namespace']}/{meta['name']}: "
                        f"{condition.get('reason', '')} {condition.get('message', '')}".strip()
                    )

    async def _verify_ingress(self, ingress: Obj) -> None:
        """Read the canary Ingress back: the weight asked for."""
        from lightkube.resources.networking_v1 import Ingress

        meta = ingress["metadata"]
        found = await self.client.get(Ingress, meta["name"], namespace=meta["namespace"])
        key = f"{NGINX}canary-weight"
        asked = meta["annotations"][key]
        got = ((found.metadata.annotations if found.metadata else None) or {}).get(key)
        if got != asked:
            where = f"-n {meta['namespace']} ingress {meta['name']}"
            raise DataPlaneError(
                f"Ingress {meta['namespace']}/{meta['name']} has canary weight {got}, not "
                f"{asked}: something else writes it (`kubectl get {where} -o yaml` names its "
                "managers)"
            )

    def problem(self, app: str) -> str:
        return self.problems.get(app, "")

    async def applied(self) -> Table:
        return Table(self._generation, dict(self.tables))

    async def replicas(self) -> dict[str, ReplicaTraffic]:
        return {}  # the gateway's per-pod counts are in Prometheus, not here

    async def run(self) -> None:
        """Nothing to supervise: the cluster runs the gateway (waits until cancelled)."""
        await asyncio.Event().wait()

    async def stop(self) -> None:
        """``rollwise down`` leaves the routes serving: the cluster keeps running the app."""

    async def aclose(self) -> None:
        await self.client.close()
