"""Canary analysis end to end: real sample-agent revisions, real A2A load through the proxy,
the controller's judges deciding on the proxy's per-second statistics."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.conftest import Cluster
from tests.helpers import Background, wait_for
from tests.test_strategies import wait_phase

APP = "/apps/sample-agent"
pytestmark = pytest.mark.replicas(1)


def analyses(cluster: Cluster) -> list[dict[str, Any]]:
    return list(cluster.client.request("GET", f"{APP}/analysis"))


@pytest.mark.solo
def test_doubled_failures_are_aborted_with_the_evidence(cluster: Cluster) -> None:
    """Stable fails 10 % of its A2A answers, the canary 20 %: the failure-rate judge aborts.

    Alone: among the parallel tests its 120 req/s got to ~23 req/s on two cores, and the
    verdict (which needs a number of requests, not of seconds) came after 65 s."""
    # releases that fail on purpose: the smoke tests' ping would stop them first
    cluster.use_steps({"steps": []}, smoke=False)
    cluster.deploy("1.0.1", "template.env.AGENT_FAIL_RATE=0.1")
    cluster.wait_stable(2)
    steps = [{"setWeight": 50}, {"analysis": {"until": "pass", "maxDuration": "90s"}}]
    cluster.use_steps({"steps": steps}, smoke=False)
    with Background(cluster.url, rate=120):
        started = time.monotonic()
        cluster.deploy("1.1.0", "template.env.AGENT_FAIL_RATE=0.2")
        view = wait_phase(cluster, "Degraded", timeout=90)
        took = time.monotonic() - started
    message = view["message"]
    assert message.startswith("RolloutAborted: failure rate"), message
    # α = 0.01 for the analysis, 0.005 for each of its two judges: e ≥ 1/0.005
    assert " vs " in message and "e=" in message and "≥ 200" in message
    assert took < 60, f"the abort took {took:.0f} s"
    (run,) = [r for r in analyses(cluster) if r["revision"] == 3]
    assert (run["kind"], run["baseline"], run["outcome"]) == ("step 1", 2, "fail")
    judge = next(j for j in run["verdict"]["judges"] if j["name"] == "errorRate")
    evidence = judge["evidence"]
    assert evidence["canary"]["requests"] < 2000, evidence  # 744 in the slow run above
    assert judge["outcome"] == "fail" and evidence["e_value"] >= 200
    assert evidence["canary"]["rate"] > evidence["baseline"]["rate"]
    low, high = evidence["ratio_bounds"]
    assert low <= evidence["ratio"] <= high
    shown = cluster.cli("get", "sample-agent", check=False).stdout
    assert "step 1" in shown and "errorRate: fail" in shown
    # the same requests, replayed offline with the same settings, fail the same way
    wait_for(lambda: cluster.record.stat().st_size > 0 or None, timeout=10)
    replay = subprocess.run(
        [
            sys.executable,
            "-m",
            "rollwise",
            "analysis",
            "replay",
            str(cluster.record),
            "-f",
            str(cluster.spec_file),
            "--canary",
            "3",
            "--baseline",
            "2",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    replayed = json.loads(replay.stdout) if replay.stdout.startswith("{") else {}
    # when they differ, say how: the replay's first decision and end beside the live evidence
    told = {k: replayed.get(k) for k in ("requests", "seconds", "verdict", "end")}
    assert replay.returncode == 1, (replay.stderr, json.dumps(told)[:4000], evidence)
    assert replayed["verdict"]["outcome"] == "fail"


@pytest.mark.solo
def test_a_healthy_revision_is_promoted_by_adaptive_steps(cluster: Cluster) -> None:
    """``until: pass`` ends each analysis as soon as the judges show the canary is no worse;
    background analysis from step 1 watches the rest of the rollout."""
    steps = [
        {"setWeight": 50},
        {"analysis": {"until": "pass", "maxDuration": "100s", "minRequests": 200}},
        {"setWeight": 80},
    ]
    # a median judge: the default p95 needs more requests to prove itself (docs/analysis.md)
    judges = {
        "startingStep": 1,
        "errorRate": {"margin": "2%"},
        "latency": {"quantile": "p50", "tolerance": "20%"},
    }
    cluster.use_steps({"steps": steps, "analysis": judges})
    with Background(cluster.url, rate=100) as load:
        started = time.monotonic()
        cluster.deploy("1.1.0")
        cluster.wait_stable(2, timeout=100)
        took = time.monotonic() - started
    assert load.result().errors_total == 0
    assert took < 100
    runs = {r["kind"]: r for r in analyses(cluster)}
    assert runs["step 1"]["outcome"] == "pass"
    assert runs["step 1"]["verdict"]["elapsed_s"] < 100  # before maxDuration
    assert {j["name"]: j["outcome"] for j in runs["step 1"]["verdict"]["judges"]} == {
        "errorRate": "pass",
        "latency p50": "pass",
        "guardrails": "pass",
    }
    assert runs["background"]["outcome"] != "fail"
    kinds = [e["kind"] for e in cluster.client.request("GET", f"{APP}/events")]
    assert "AnalysisStarted" in kinds and "AnalysisPassed" in kinds


def test_no_traffic_never_aborts_for_lack_of_data(cluster: Cluster) -> None:
    steps = [{"setWeight": 50}, {"analysis": {"until": "pass", "maxDuration": "3s"}}]
    cluster.use_steps({"steps": steps, "analysis": {"startingStep": 0}})
    cluster.deploy("1.1.0")
    view = wait_phase(cluster, "Paused", timeout=30)
    assert view["message"].startswith("AnalysisInconclusive:"), view["message"]
    assert "minRequests" in view["message"]
    runs = {r["kind"]: r["outcome"] for r in analyses(cluster)}
    assert runs["step 1"] == "inconclusive" and runs["background"] != "fail"
    until = time.monotonic() + 2.0  # more reconcile passes with no data at all: still paused
    while time.monotonic() < until:
        assert cluster.get()["phase"] == "Paused"
        time.sleep(0.1)  # a poll interval: this watches that nothing happens
    cluster.cli("promote", "sample-agent")  # a person decides
    cluster.wait_stable(2)
