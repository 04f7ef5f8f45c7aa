"""A cluster app's decisions are the cluster's own Events too, regarding the revision's
Deployment: ``kubectl describe deployment`` (real kubectl, on the fake API server) shows
them, and a release that stopped is a Warning."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import wait_for
from .kube.apiserver import FakeApiServer
from .test_kubernetes_e2e import Cluster, controlling, paused_at_20

EVENTS = "/api/v1/namespaces/agents/events"


@pytest.fixture
def cluster(api: FakeApiServer, tmp_path: Path) -> Iterator[Cluster]:
    with controlling(api, tmp_path) as c:
        yield c


def events_of(c: Cluster, deployment: str) -> list[dict[str, Any]]:
    found = c.get(f"{EVENTS}?fieldSelector=involvedObject.name={deployment}")
    return list((found or {}).get("items", []))


@pytest.mark.slow
def test_rollout_decisions_are_events_of_the_revisions_deployment(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.first_release(tmp_path / "web.yaml", paused_at_20())
    completed = wait_for(
        lambda: [e for e in events_of(cluster, "web-r1") if e["reason"] == "RolloutCompleted"]
    )
    # the revision's first event came before its Deployment: it waited for it
    assert "RolloutStarted" in [e["reason"] for e in events_of(cluster, "web-r1")]
    deployment = cluster.get("/apis/apps/v1/namespaces/agents/deployments/web-r1") or {}
    assert completed[0]["involvedObject"]["uid"] == deployment["metadata"]["uid"]
    assert completed[0]["type"] == "Normal" and completed[0]["source"]["component"] == "rollwise"

    cluster.cli("deploy", "web", "--version", "1.1.0")
    cluster.wait(lambda v: v["phase"] == "Paused")
    cluster.cli("abort", "web")
    aborted = wait_for(
        lambda: [e for e in events_of(cluster, "web-r2") if e["reason"] == "RolloutAborted"]
    )
    assert aborted[0]["type"] == "Warning"

    kubectl = ["kubectl", "--kubeconfig", str(cluster.kubeconfig), "-n", "agents"]
    described = subprocess.run(
        [*kubectl, "describe", "deployment", "web-r1"], capture_output=True, text=True, timeout=30
    )
    assert described.returncode == 0, described.stderr
    events = described.stdout[described.stdout.index("Events:") :]
    assert "RolloutStarted" in events and "RolloutCompleted" in events, events
