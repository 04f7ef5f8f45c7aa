"""A real controller (``rollwise up --backend kubernetes``) drives an app on the fake API
server: a first release, a canary whose header route and weights reach the HTTPRoute, a
promotion that moves the stable Service, an abort that sends traffic back and deletes the
canary's Deployment, an undo, and a controller restart that adopts the running revision
without rolling it."""

from __future__ import annotations

import copy
import json
import shutil
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from rollwise.backends.ports import free_port
from rollwise.client import AdminClient

from .conftest import NOT_MEASURED, stop_everything
from .helpers import (
    EXAMPLES,
    ROOT,
    Background,
    Dependency,
    process,
    prometheus_scraping,
    promql,
    rollwise,
    start_controller,
    wait_for,
    wait_for_view,
)
from .kube.apiserver import FakeApiServer
from .test_agent_metrics import DOWNSTREAM

NS = "/apis/apps/v1/namespaces/agents/deployments"
SERVICES = "/api/v1/namespaces/agents/services"
PODS = "/api/v1/namespaces/agents/pods"
ROUTE = "/apis/gateway.networking.k8s.io/v1/namespaces/agents/httproutes/web"
SPEC = {
    "apiVersion": "rollwise/v1",
    "kind": "Rollout",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 2,
        "backend": {
            "kind": "kubernetes",
            "namespace": "agents",
            "router": "gatewayAPI",
            "gateway": {"name": "public", "namespace": "gateways"},
        },
        "template": {
            "image": "registry.example/web:{version}",
            "command": ["web", "--port", "{port}"],
            "readiness": {"path": "/healthz", "interval": "2s"},
        },
        "strategy": {
            "canary": {
                "steps": [
                    {
                        "setHeaderRoute": {
                            "name": "testers",
                            "match": [{"headerName": "x-tester", "headerValue": "yes"}],
                        }
                    },
                    {"setWeight": 20},
                    {"pause": {}},
                    {"setWeight": 60},
                    {"pause": {}},
                ]
            }
        },
    },
}


def paused_at_20() -> dict[str, Any]:
    """``SPEC`` whose canary takes 20 % and pauses until promoted."""
    body: dict[str, Any] = copy.deepcopy(SPEC)
    body["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 20}, {"pause": {}}]
    return body


class Cluster:
    def __init__(self, api: FakeApiServer, state_dir: Path, kubeconfig: Path) -> None:
        self.api = api
        self.state_dir = state_dir
        self.kubeconfig = kubeconfig

    def start(self) -> None:
        start_controller(
            self.state_dir, "--backend", "kubernetes", "--kubeconfig", str(self.kubeconfig)
        )

    def cli(self, *args: str) -> str:
        return rollwise(*args, state_dir=self.state_dir).stdout

    def first_release(self, spec: Path, body: dict[str, Any] | None = None) -> None:
        """``web`` 1.0.0 applied (``SPEC``, or ``body``), and healthy as revision 1."""
        wanted: dict[str, Any] = body or SPEC
        spec.write_text(json.dumps(wanted))
        self.cli("apply", "-f", str(spec), "--version", "1.0.0")
        router = wanted["spec"]["backend"].get("router", "gatewayAPI")
        # the status is saved before the pass writes the routes: wait for both
        self.wait(lambda v: v["stable"] == 1 and v["phase"] == "Healthy" and self.routed(router))

    def routed(self, router: str) -> bool:
        """The app's Services (and its HTTPRoute, with a gateway) are written."""
        services = self.get(f"{SERVICES}?labelSelector=rollwise.dev/app=web")
        if not services or not services["items"]:
            return False
        return router != "gatewayAPI" or self.get(ROUTE) is not None

    def events(self) -> list[dict[str, Any]]:
        with AdminClient(self.state_dir) as admin:
            return list(admin.request("GET", "/apps/web/events", params={"limit": 500}))

    def apps(self) -> list[dict[str, Any]]:
        with AdminClient(self.state_dir) as admin:
            return list(admin.request("GET", "/apps"))

    def view(self) -> dict[str, Any]:
        with AdminClient(self.state_dir) as admin:
            return dict(admin.request("GET", "/apps/web"))

    def wait(self, check: Any, timeout: float = 30) -> dict[str, Any]:
        return wait_for_view(self.view, check, timeout)

    def get(self, path: str) -> dict[str, Any] | None:
        answer = httpx.get(self.api.url + path)
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        body = answer.json()
        assert isinstance(body, dict)
        return body

    def weights(self) -> list[int]:
        route = self.get(ROUTE)
        assert route is not None
        return [ref["weight"] for ref in route["spec"]["rules"][-1]["backendRefs"]]

    def selects(self, role: str) -> str:
        service = self.get(f"{SERVICES}/web-{role}")
        assert service is not None
        return str(service["spec"]["selector"]["rollwise.dev/revision"])


@contextmanager
def controlling(api: FakeApiServer, tmp_path: Path) -> Iterator[Cluster]:
    """A controller of cluster apps on the fake API server; stopped afterwards."""
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig", "agents")
    c = Cluster(api, tmp_path / "state", kubeconfig)
    try:
        c.start()
        yield c
    finally:
        stop_everything(c.state_dir)


@pytest.fixture
def cluster(api: FakeApiServer, tmp_path: Path) -> Iterator[Cluster]:
    with controlling(api, tmp_path) as c:
        yield c


@pytest.mark.slow
def test_a_canary_on_the_cluster_moves_the_httproute_promotes_aborts_and_undoes(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.first_release(tmp_path / "web.yaml")
    first = cluster.get(f"{NS}/web-r1")
    assert first is not None and first["spec"]["replicas"] == 2
    assert cluster.weights() == [100, 0] and cluster.selects("stable") == "1"

    cluster.cli("deploy", "web", "--version", "1.1.0")
    # the status is saved before the pass writes the routes: wait for both
    cluster.wait(lambda v: v["phase"] == "Paused" and cluster.weights() == [80, 20])
    assert cluster.view()["canary"] == 2
    assert (cluster.selects("stable"), cluster.selects("canary")) == ("1", "2")
    route = cluster.get(ROUTE)
    assert route is not None
    assert route["spec"]["rules"][0]["matches"][0]["headers"][0]["name"] == "x-tester"
    canary = cluster.get(f"{NS}/web-r2")
    assert canary is not None
    assert canary["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.1.0")
    shown = cluster.cli("get", "web")  # each replica by its pod, not "not running"
    assert "pod web-r2-" in shown and "not running" not in shown

    cluster.cli("promote", "web")
    cluster.wait(lambda v: v["phase"] == "Paused" and cluster.weights() == [40, 60])
    cluster.cli("promote", "web", "--full")
    cluster.wait(
        lambda v: v["stable"] == 2 and v["phase"] == "Healthy" and cluster.selects("stable") == "2"
    )
    assert cluster.weights() == [100, 0]

    cluster.cli("deploy", "web", "--version", "1.2.0")
    cluster.wait(lambda v: v["phase"] == "Paused" and v["canary"] == 3 and cluster.weights()[1])
    assert cluster.weights() == [80, 20]
    cluster.cli("abort", "web")
    view = cluster.wait(lambda v: v["phase"] == "Degraded" and cluster.weights() == [100, 0])
    assert "aborted" in view["message"] and view["stable"] == 2
    assert cluster.selects("stable") == "2"
    wait_for(lambda: cluster.get(f"{NS}/web-r3") is None, timeout=60)  # drained, deleted

    cluster.cli("undo", "web", "--to-revision", "1")  # started again, then all traffic
    cluster.wait(lambda v: v["stable"] == 1 and cluster.selects("stable") == "1", timeout=60)
    assert cluster.weights() == [100, 0]


@pytest.mark.slow
def test_a_restarted_controller_adopts_the_cluster_revision_without_rolling_it(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.first_release(tmp_path / "web.yaml")
    before = cluster.get(f"{NS}/web-r1")
    assert before is not None
    cluster.cli("restart")
    view = cluster.wait(lambda v: v["stable"] == 1 and v["phase"] == "Healthy")
    after = cluster.get(f"{NS}/web-r1")
    assert after is not None
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["metadata"]["uid"] == before["metadata"]["uid"]  # the same Deployment
    revision = next(r for r in view["revisions"] if r["number"] == 1)
    assert revision["health"]["ready"] == 2

    local = rollwise(
        "apply", "-f", str(EXAMPLES / "rollwise.yaml"), state_dir=cluster.state_dir, check=False
    )
    assert local.returncode == 2  # a local app is not this controller's: refused, nothing kept
    assert "spec.backend.kind is local, and this controller runs kubernetes apps" in local.stderr
    assert [a["name"] for a in cluster.apps()] == ["web"]


@pytest.mark.slow
def test_blue_green_on_the_cluster_switches_the_stable_service_and_undoes_to_the_warm_one(
    cluster: Cluster, tmp_path: Path
) -> None:
    spec = json.loads(json.dumps(SPEC))
    spec["spec"]["backend"] = {"kind": "kubernetes", "namespace": "agents", "router": "service"}
    spec["spec"]["strategy"] = {
        "blueGreen": {"autoPromotionEnabled": False, "scaleDownDelaySeconds": "60s"}
    }
    cluster.first_release(tmp_path / "web.yaml", spec)
    assert cluster.get(ROUTE) is None  # no gateway: Services only
    cluster.cli("deploy", "web", "--version", "1.1.0")
    cluster.wait(lambda v: v["phase"] == "Paused" and cluster.selects("canary") == "2")
    assert cluster.selects("stable") == "1"  # the preview is the canary Service's
    old = cluster.get(f"{NS}/web-r1")
    assert old is not None

    cluster.cli("promote", "web")
    cluster.wait(lambda v: v["stable"] == 2 and cluster.selects("stable") == "2")  # the switch
    cluster.cli("undo", "web")  # revision 1 is warm (scaleDownDelaySeconds): a route change
    cluster.wait(lambda v: v["stable"] == 1 and cluster.selects("stable") == "1")
    kept = cluster.get(f"{NS}/web-r1")
    assert kept is not None and kept["metadata"]["uid"] == old["metadata"]["uid"]
    assert kept["metadata"]["generation"] == old["metadata"]["generation"]  # not rolled


@pytest.mark.slow
def test_without_a_router_the_canary_weight_is_the_pods_ratio(
    cluster: Cluster, tmp_path: Path
) -> None:
    spec = json.loads(json.dumps(SPEC))
    spec["spec"]["replicas"] = 4
    spec["spec"]["backend"] = {"kind": "kubernetes", "namespace": "agents", "router": "replicas"}
    spec["spec"]["strategy"] = {"canary": {"steps": [{"setWeight": 25}, {"pause": {}}]}}
    cluster.first_release(tmp_path / "web.yaml", spec)
    # the status is saved before the pass writes the Services: wait for them
    every = wait_for(lambda: cluster.get(f"{SERVICES}/web"), timeout=30)
    assert every["spec"]["selector"] == {"rollwise.dev/app": "web"}
    cluster.cli("deploy", "web", "--version", "1.1.0")
    cluster.wait(lambda v: v["phase"] == "Paused" and v["canary"] == 2)

    def replicas(name: str) -> int | None:
        deployment = cluster.get(f"{NS}/{name}")
        return None if deployment is None else int(deployment["spec"]["replicas"])

    wait_for(lambda: (replicas("web-r1"), replicas("web-r2")) == (3, 1), timeout=30)  # 25 %
    cluster.cli("promote", "web", "--full")
    cluster.wait(lambda v: v["stable"] == 2 and v["phase"] == "Healthy")
    wait_for(lambda: replicas("web-r2") == 4)


@pytest.fixture
def mesh_prometheus(tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping what a mesh would report for ``web``'s two Services: the
    stable one answering every request, the canary one failing half of them."""
    exporter = free_port()
    services = ["web-stable:40:0", "web-canary:40:0.5"]
    argv = [sys.executable, str(ROOT / "tests" / "mesh_metrics.py"), str(exporter), "agents"]
    with process([*argv, *services]):
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{exporter}/metrics").status_code == 200)
        yield from prometheus_scraping(tmp_path, "mesh", f"127.0.0.1:{exporter}")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus")
def test_a_cluster_canary_is_judged_from_the_meshs_series_in_prometheus(
    cluster: Cluster, mesh_prometheus: str, tmp_path: Path
) -> None:
    cluster.first_release(tmp_path / "web.yaml")
    spec = json.loads(json.dumps(SPEC))
    source = {"address": mesh_prometheus, "preset": "istio", "interval": "3s", "delay": "2s"}
    spec["spec"]["strategy"] = {
        "canary": {
            "steps": [{"setWeight": 50}, {"analysis": {"until": "pass", "maxDuration": "60s"}}],
            "analysis": {"errorRate": {"maxFailureRate": "1%"}, "prometheus": source},
        }
    }
    (tmp_path / "web.yaml").write_text(json.dumps(spec))
    wait_for(lambda: promql(mesh_prometheus, 'istio_requests_total{response_code="500"} > 0'))
    cluster.cli("apply", "-f", str(tmp_path / "web.yaml"), "--version", "1.1.0")
    view = cluster.wait(lambda v: v["phase"] == "Degraded" and cluster.weights() == [100, 0])
    assert view["message"].startswith("RolloutAborted: failure rate"), view["message"]


@contextmanager
def agents(api: FakeApiServer, **versions: dict[str, str]) -> Iterator[None]:
    """A real sample agent per version (with its environment), standing in for the containers
    of the image ``registry.example/agent:<version>``."""
    with ExitStack() as stack:
        for version, env in versions.items():
            port = free_port()
            argv = [sys.executable, "-m", "sample_agent", "--port", str(port)]
            agent_env = {"AGENT_VERSION": version, **NOT_MEASURED, **env}
            stack.enter_context(process(argv, cwd=EXAMPLES, env=agent_env))
            api.containers[f"registry.example/agent:{version.replace('_', '.')}"] = (
                f"127.0.0.1:{port}"
            )
        for address in api.containers.values():
            wait_for(partial(_answers, f"http://{address}/healthz"), timeout=20)
        yield


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_from_outside_the_cluster_smoke_tests_and_card_checks_reach_the_pods_through_the_api(
    cluster: Cluster, tmp_path: Path
) -> None:
    body: dict[str, Any] = copy.deepcopy(SPEC)
    spec = body["spec"]
    spec["template"]["image"] = "registry.example/agent:{version}"
    spec["a2a"] = {"card": "/.well-known/agent-card.json"}
    spec["smokeTests"] = [
        {"name": "card", "a2aCard": {}, "severity": "critical"},
        {"name": "ping", "a2aMessage": {"text": "ping", "expectText": "pong"}},
    ]
    spec["strategy"]["canary"]["steps"] = [{"setWeight": 20}, {"pause": {}}]
    breaking = {"AGENT_EXTENSIONS": "timestamp!"}  # drops traceability, requires timestamp
    with agents(cluster.api, **{"1.0.0": {}, "1.1.0": {}, "2.0.0": breaking}):
        cluster.first_release(tmp_path / "web.yaml", body)
        cluster.cli("deploy", "web", "--version", "1.1.0")
        cluster.wait(lambda v: v["phase"] == "Paused" and cluster.weights() == [80, 20])
        events = [e for e in cluster.events() if e["revision"] == 2]
        (smoke,) = [e for e in events if e["kind"] == "SmokeTestsPassed"]
        assert smoke["data"]["gate"] == "preTraffic" and smoke["data"]["success"]
        # the laptop has no route to the pod's IP: the requests went through the API server
        proxied = [p for m, p, _ in cluster.api.state.requests if "/proxy" in p]
        assert any(p.startswith(f"{PODS}/web-r2-") and p.endswith(":8080/proxy/") for p in proxied)
        assert any(p.endswith(":8080/proxy/.well-known/agent-card.json") for p in proxied)
        cluster.cli("promote", "web", "--full")
        cluster.wait(lambda v: v["stable"] == 2 and v["phase"] == "Healthy")
        # after promotion, the smoke tests run where live traffic enters: the stable Service
        passed = [e for e in cluster.events() if e["kind"] == "SmokeTestsPassed"]
        assert [(e["revision"], e["data"]["gate"]) for e in passed][-1] == (2, "postPromotion")
        entry = f"{SERVICES}/web-stable:80/proxy/"
        assert any(p == entry for _, p, _ in cluster.api.state.requests)

        cluster.cli("deploy", "web", "--version", "2.0.0")  # its card breaks 1.1.0's clients
        view = cluster.wait(lambda v: v["phase"] == "Degraded")
        assert "the agent card of revision 3 breaks clients of revision 2" in view["message"]
        assert cluster.weights() == [100, 0]

        cluster.cli("deploy", "web", "--version", "3.0.0")  # no container answers for it
        view = cluster.wait(lambda v: v["phase"] == "Degraded" and "revision 4" in v["message"])
        assert "error trying to reach service" in view["message"]
        assert view["stable"] == 2 and cluster.weights() == [100, 0]


@pytest.mark.slow
def test_from_outside_the_cluster_agent_metrics_are_read_from_the_pods_through_the_api(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The canary's downstream fails; its agent falls back to a plain answer, so no user sees
    a failure. The agents' own counters, read from each pod through the API server, abort
    the rollout. (The test sends the users' requests to the agents itself: no gateway runs
    here to split them.)"""
    body: dict[str, Any] = copy.deepcopy(SPEC)
    body["spec"]["template"]["image"] = "registry.example/agent:{version}"
    steps = [{"setWeight": 50}, {"analysis": {"until": "pass", "maxDuration": "60s"}}]
    judges = {"latency": None, "agentMetrics": [DOWNSTREAM]}
    body["spec"]["strategy"]["canary"] = {"steps": steps, "analysis": judges}
    with Dependency(failing=False) as good, Dependency() as bad:
        versions = {
            "1.0.0": {"AGENT_DOWNSTREAM_URL": good.url},
            "1.1.0": {"AGENT_DOWNSTREAM_URL": bad.url},
        }
        with agents(cluster.api, **versions):
            cluster.first_release(tmp_path / "web.yaml", body)
            stable, canary = (
                f"http://{cluster.api.containers[f'registry.example/agent:{v}']}" for v in versions
            )
            with (
                Background(stable, rate=15, text="weather in Lyon") as to_stable,
                Background(canary, rate=15, text="weather in Lyon") as to_canary,
            ):
                cluster.cli("deploy", "web", "--version", "1.1.0")
                view = cluster.wait(lambda v: v["phase"] == "Degraded", timeout=60)
        assert bad.hits > 0 and good.hits > 0
    assert to_stable.result().errors_total == to_canary.result().errors_total == 0
    assert view["message"].startswith("RolloutAborted: agent downstream rate"), view["message"]
    scraped = [p for _, p, _ in cluster.api.state.requests if p.endswith(":8080/proxy/metrics")]
    assert any(f"{PODS}/web-r2-" in p for p in scraped) and any("web-r1-" in p for p in scraped)


@pytest.mark.slow
def test_a_crash_looping_canary_is_aborted_with_its_last_log_line(
    cluster: Cluster, tmp_path: Path
) -> None:
    body = paused_at_20()
    body["spec"]["template"]["env"] = {"API_TOKEN": "tok-3141592653"}
    cluster.first_release(tmp_path / "web.yaml", body)
    cluster.api.state.ready_pods = False  # the canary's pods never pass their probe...
    cluster.cli("deploy", "web", "--version", "1.1.0")

    def canary_pod() -> str | None:
        pods = cluster.get(f"{PODS}?labelSelector=rollwise.dev/revision=2")
        return pods["items"][0]["metadata"]["name"] if pods and pods["items"] else None

    pod = wait_for(canary_pod, timeout=30)
    # ... for their container exits: the kubelet backs off restarting it
    cluster.api.state.crash_pod("agents", pod, 1, ["listening on :8080", "KeyError: 'API_URL'"])
    view = cluster.wait(lambda v: v["phase"] == "Degraded", timeout=30)
    assert (
        "revision 2 (1.1.0) is crash-looping; last log line: KeyError: 'API_URL'"
        in (view["message"])
    )
    assert view["stable"] == 1 and cluster.weights() == [100, 0]
    # rollwise logs reads the pods' logs through the API server, as kubectl logs does
    stable = cluster.get(f"{PODS}?labelSelector=rollwise.dev/revision=1")
    stable_pod = (stable or {})["items"][0]["metadata"]["name"]
    cluster.api.state.write_log("agents", stable_pod, "GET /healthz 200", "token tok-3141592653")
    printed = cluster.cli("logs", "web", "--revision", "1", "--tail", "1")
    assert printed == f"[{stable_pod}] token ***\n"  # a secret value is masked, as elsewhere


@pytest.mark.slow
def test_a_canary_through_ingress_nginx_moves_its_canary_ingress(
    cluster: Cluster, tmp_path: Path
) -> None:
    body: dict[str, Any] = copy.deepcopy(SPEC)
    body["spec"]["backend"] = {
        "kind": "kubernetes",
        "namespace": "agents",
        "router": "ingressNginx",
    }
    cluster.first_release(tmp_path / "web.yaml", body)
    ingresses = "/apis/networking.k8s.io/v1/namespaces/agents/ingresses"

    def weight() -> str | None:
        canary = cluster.get(f"{ingresses}/web-canary")
        notes = canary["metadata"]["annotations"] if canary else {}
        return notes.get("nginx.ingress.kubernetes.io/canary-weight")

    wait_for(lambda: weight() == "0", timeout=30)
    cluster.cli("deploy", "web", "--version", "1.1.0")
    cluster.wait(lambda v: v["phase"] == "Paused" and weight() == "20")
    assert (cluster.selects("stable"), cluster.selects("canary")) == ("1", "2")
    cluster.cli("abort", "web")
    cluster.wait(lambda v: v["phase"] == "Degraded" and weight() == "0")
    assert cluster.get(ROUTE) is None  # no Gateway API objects
