"""``spec.autoscaling`` of a cluster app: rollwise's autoscaler (HPA's algorithm) decides on
the pods' CPU as metrics-server reports it (a share of their request), and the revision's
Deployment follows; ``kubectl top pod`` reads the same metrics API of the fake."""

from __future__ import annotations

import copy
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollwise.spec.backend import cpu_cores

from .helpers import wait_for
from .kube.apiserver import FakeApiServer
from .test_kubernetes_e2e import NS, PODS, SPEC, Cluster, controlling

AUTOSCALING = {
    "minReplicas": 1,
    "maxReplicas": 3,
    "target": {"cpu": "50%"},
    "interval": "1s",
    "behavior": {
        "scaleDown": {
            "stabilizationWindowSeconds": 0,
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
        }
    },
}


def test_cpu_quantities_read_as_cores() -> None:
    assert cpu_cores("250m") == 0.25 and cpu_cores("0.5") == 0.5 and cpu_cores("2") == 2.0
    assert cpu_cores("31415926n") == pytest.approx(0.031415926)
    assert cpu_cores("1500u") == pytest.approx(0.0015)
    for bad in ("", "lots", "1Gi"):
        with pytest.raises(ValueError, match="is not a CPU quantity"):
            cpu_cores(bad)


@pytest.fixture
def cluster(api: FakeApiServer, tmp_path: Path) -> Iterator[Cluster]:
    with controlling(api, tmp_path) as c:
        yield c


def pods(c: Cluster) -> list[str]:
    found = c.get(f"{PODS}?labelSelector=rollwise.dev/revision=1") or {"items": []}
    return [p["metadata"]["name"] for p in found["items"]]


def replicas(c: Cluster) -> int:
    deployment = c.get(f"{NS}/web-r1")
    assert deployment is not None
    return int(deployment["spec"]["replicas"])


@pytest.mark.slow
def test_a_cluster_app_scales_on_its_pods_cpu_from_the_metrics_api(
    cluster: Cluster, tmp_path: Path
) -> None:
    body: dict[str, Any] = copy.deepcopy(SPEC)
    body["spec"]["replicas"] = 1
    body["spec"]["template"]["resources"] = {"requests": {"cpu": "250m"}}
    body["spec"]["autoscaling"] = AUTOSCALING
    cluster.first_release(tmp_path / "web.yaml", body)
    (pod,) = pods(cluster)
    cluster.api.state.usage[("agents", pod)] = "500m"  # twice its request: 200 %
    wait_for(lambda: replicas(cluster) == 3, timeout=30)  # ceil(1 × 200/50) = 4, max 3
    view = cluster.view()
    assert view["revisions"][0]["health"]["replicas"][0]["cpu"] == pytest.approx(2.0)
    shown = cluster.cli("get", "web")
    assert f"pod {pod}, cpu 200%" in shown
    assert re.search(r"Namespace: +agents", shown), shown
    assert "registry.example/web:1.0.0 (r1: stable)" in shown
    assert "Listen:" not in shown  # a cluster app's traffic enters through its router
    assert "namespace agents" in cluster.cli("list")
    scaled = [e["message"] for e in cluster.events() if e["kind"] == "ScaledUp"]
    assert scaled[-1].startswith("1→3: cpu 200%/replica > target 50%"), scaled

    for name in wait_for(lambda: [p for p in pods(cluster)] if len(pods(cluster)) == 3 else None):
        cluster.api.state.usage[("agents", name)] = "25000000n"  # 10 % of 250m
    wait_for(lambda: replicas(cluster) == 1, timeout=30)


def test_kubectl_top_reads_the_fakes_metrics_api(cluster: Cluster, tmp_path: Path) -> None:
    cluster.first_release(tmp_path / "web.yaml")
    first, _ = pods(cluster)
    cluster.api.state.usage[("agents", first)] = "123456789n"
    kubectl = ["kubectl", "--kubeconfig", str(cluster.kubeconfig), "-n", "agents"]
    done = subprocess.run(
        [*kubectl, "top", "pod", "--no-headers"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()  # a pod with no metrics yet is not listed
    assert line.split()[:3] == [first, "124m", "64Mi"]
