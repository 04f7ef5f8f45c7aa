"""The cluster's router against the fake API server, over real HTTP: a routing table becomes
the stable and canary Services' selectors and the HTTPRoute's weights and header rules, read
back before a step counts as applied; a gateway that refuses the route, or a table that two
Services cannot carry, is an error that says why; blue-green without a gateway switches the
stable Service's selector; with ingress-nginx, the canary Ingress carries weight and header."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rollwise.errors import DataPlaneError, SpecError
from rollwise.kubernetes.connection import ClusterAccess, connect
from rollwise.routing.gateway import GatewayRouter
from rollwise.routing.table import AppTable, HeaderRouteEntry, revision_entry
from rollwise.spec import parse_spec
from rollwise.spec.models import Rollout

from .helpers import EXAMPLES
from .kube.apiserver import FakeApiServer

pytestmark = pytest.mark.anyio
SERVICES = "/api/v1/namespaces/agents/services"
ROUTE = "/apis/gateway.networking.k8s.io/v1/namespaces/agents/httproutes/sample-agent"
SPEC = (EXAMPLES / "kubernetes" / "rollwise.yaml").read_text()


def table(*revisions: tuple[int, str, int], headers: bool = False) -> AppTable:
    entries = tuple(
        revision_entry(n, f"1.{n}.0", [label] if label else [], w, []) for n, label, w in revisions
    )
    canary = next((str(n) for n, label, _ in revisions if label == "canary"), "")
    routes = (HeaderRouteEntry(canary, (("x-canary", "yes"),)),) if headers else ()
    return AppTable("", entries, header_routes=routes)


def get(api: FakeApiServer, path: str) -> dict[str, Any]:
    answer = httpx.get(api.url + path)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert isinstance(body, dict)
    return body


def selected(api: FakeApiServer, role: str) -> str:
    service = get(api, f"{SERVICES}/sample-agent-{role}")
    return str(service["spec"]["selector"]["rollwise.dev/revision"])


@contextlib.asynccontextmanager
async def router(
    api: FakeApiServer, tmp_path: Path, rollout: Rollout
) -> AsyncIterator[GatewayRouter]:
    access = ClusterAccess(api.kubeconfig(tmp_path / "kubeconfig", "agents"), namespace="agents")
    gateway = GatewayRouter(connect(access), lambda app: rollout if app == rollout.name else None)
    try:
        yield gateway
    finally:
        await gateway.aclose()


async def test_weights_and_header_routes_reach_the_httproute_and_services(
    api: FakeApiServer, tmp_path: Path
) -> None:
    async with router(api, tmp_path, parse_spec(SPEC)) as gateway:
        assert await gateway.set_routes("sample-agent", table((1, "stable", 100)))
        route = get(api, ROUTE)
        assert [r["weight"] for r in route["spec"]["rules"][-1]["backendRefs"]] == [100, 0]
        assert route["spec"]["parentRefs"][0]["name"] == "public"
        assert selected(api, "stable") == selected(api, "canary") == "1"

        canary = table((1, "stable", 80), (2, "canary", 20), headers=True)
        assert await gateway.set_routes("sample-agent", canary)
        assert not await gateway.set_routes("sample-agent", canary)  # unchanged: no write
        rules = get(api, ROUTE)["spec"]["rules"]
        assert rules[0]["matches"][0]["headers"] == [
            {"type": "Exact", "name": "x-canary", "value": "yes"}
        ]
        assert rules[0]["backendRefs"][0]["name"] == "sample-agent-canary"
        assert [r["weight"] for r in rules[-1]["backendRefs"]] == [80, 20]
        assert (selected(api, "stable"), selected(api, "canary")) == ("1", "2")

        assert await gateway.set_routes("sample-agent", table((2, "stable", 100), (1, "", 0)))
        assert (selected(api, "stable"), selected(api, "canary")) == ("2", "2")  # promoted
        assert len(get(api, ROUTE)["spec"]["rules"]) == 1  # no canary: no header rule
        assert gateway.generation == 3 and gateway.problem("sample-agent") == ""


async def test_a_gateway_that_refuses_the_route_stops_the_step_and_says_why(
    api: FakeApiServer, tmp_path: Path
) -> None:
    async with router(api, tmp_path, parse_spec(SPEC)) as gateway:
        await gateway.set_routes("sample-agent", table((1, "stable", 100)))
        route = get(api, ROUTE)
        parent = {
            "parentRef": {"name": "public", "namespace": "gateways"},
            "controllerName": "example.com/gateway",
            "conditions": [
                {
                    "type": "Accepted",
                    "status": "False",
                    "reason": "NotAllowedByListeners",
                    "message": "no listener allows routes from namespace agents",
                    "lastTransitionTime": "2026-11-30T12:00:00Z",
                    "observedGeneration": 1,
                }
            ],
        }
        route["status"] = {"parents": [parent]}  # what a gateway controller writes
        assert httpx.put(api.url + ROUTE + "/status", json=route).status_code == 200
        with pytest.raises(DataPlaneError, match="Gateway public does not accept HTTPRoute"):
            await gateway.set_routes("sample-agent", table((1, "stable", 90), (2, "canary", 10)))


async def test_a_table_two_services_cannot_carry_is_refused_with_the_reason(
    api: FakeApiServer, tmp_path: Path
) -> None:
    async with router(api, tmp_path, parse_spec(SPEC)) as gateway:
        three = table((1, "stable", 50), (2, "canary", 30), (3, "", 20))
        with pytest.raises(DataPlaneError, match=r"revisions \[1, 2, 3\] take traffic"):
            await gateway.set_routes("sample-agent", three)
        assert "stable and the canary only" in gateway.problem("sample-agent")


async def test_blue_green_without_a_gateway_switches_the_stable_service(
    api: FakeApiServer, tmp_path: Path
) -> None:
    canary = SPEC[SPEC.index("    canary:") : SPEC.index("  smokeTests:")]
    text = SPEC.replace("router: gatewayAPI", "router: service").replace(
        canary, "    blueGreen: {}\n"
    )
    rollout = parse_spec(text)
    assert rollout.spec.backend.router == "service"
    async with router(api, tmp_path, rollout) as gateway:
        await gateway.set_routes("sample-agent", table((1, "stable", 100), (2, "canary", 0)))
        assert (selected(api, "stable"), selected(api, "canary")) == ("1", "2")  # preview
        await gateway.set_routes("sample-agent", table((2, "stable", 100), (1, "", 0)))
        assert selected(api, "stable") == "2"  # the switch: one selector
        assert httpx.get(api.url + ROUTE).status_code == 404  # no HTTPRoute at all
        with pytest.raises(DataPlaneError, match="needs router gatewayAPI"):
            await gateway.set_routes("sample-agent", table((2, "stable", 70), (3, "canary", 30)))


INGRESSES = "/apis/networking.k8s.io/v1/namespaces/agents/ingresses"
NGINX = "nginx.ingress.kubernetes.io/"


async def test_ingress_nginx_carries_the_weight_and_header_in_its_canary_ingress(
    api: FakeApiServer, tmp_path: Path
) -> None:
    rollout = parse_spec(SPEC.replace("router: gatewayAPI", "router: ingressNginx"))
    async with router(api, tmp_path, rollout) as gateway:
        assert await gateway.set_routes("sample-agent", table((1, "stable", 100)))
        stable, canary = (
            get(api, f"{INGRESSES}/{name}") for name in ("sample-agent", "sample-agent-canary")
        )
        assert stable["spec"]["ingressClassName"] == "nginx"
        (rule,) = stable["spec"]["rules"]
        assert rule["host"] == "sample-agent.example.com"
        assert rule["http"]["paths"][0]["backend"]["service"]["name"] == "sample-agent-stable"
        assert "annotations" not in stable["metadata"]
        assert canary["metadata"]["annotations"] == {
            f"{NGINX}canary": "true",
            f"{NGINX}canary-weight": "0",
        }
        assert canary["spec"]["rules"][0]["host"] == "sample-agent.example.com"

        await gateway.set_routes(
            "sample-agent", table((1, "stable", 80), (2, "canary", 20), headers=True)
        )
        notes = get(api, f"{INGRESSES}/sample-agent-canary")["metadata"]["annotations"]
        assert notes[f"{NGINX}canary-weight"] == "20"
        assert (notes[f"{NGINX}canary-by-header"], notes[f"{NGINX}canary-by-header-value"]) == (
            "x-canary",
            "yes",
        )
        assert (selected(api, "stable"), selected(api, "canary")) == ("1", "2")
        assert httpx.get(api.url + ROUTE).status_code == 404  # no HTTPRoute

        await gateway.set_routes("sample-agent", table((2, "stable", 100), (1, "", 0)))
        notes = get(api, f"{INGRESSES}/sample-agent-canary")["metadata"]["annotations"]
        assert notes[f"{NGINX}canary-weight"] == "0" and f"{NGINX}canary-by-header" not in notes
        assert selected(api, "stable") == "2"


def test_ingress_nginx_refuses_routes_it_cannot_carry() -> None:
    text = SPEC.replace("router: gatewayAPI", "router: ingressNginx").replace(
        "        - setWeight: 10\n",
        "        - setHeaderRoute: {name: a, match: [{headerName: x-a, headerValue: '1'}]}\n"
        "        - setHeaderRoute: {name: b, match: [{headerName: x-b, headerValue: '1'}]}\n"
        "        - setWeight: 10\n",
    )
    with pytest.raises(SpecError, match="ingressNginx sends a canary one header"):
        parse_spec(text)
