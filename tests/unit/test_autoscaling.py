"""Autoscaling on a hand-set clock: HPA's decision (tolerance, stabilization windows, rate
policies, bounds), the mission's Autoscaler, and a worker that scales stable and canary
together and drains the replicas a scale-down removes before they stop."""

from __future__ import annotations

from typing import Any

import pytest

from rollwise import Autoscaler
from rollwise.autoscaling import ScalePolicy, hpa_manifest
from rollwise.controller.autoscaler import Autoscalers
from rollwise.spec.autoscaling import Autoscaling

from ..helpers import assert_spec_refused
from .harness import APP, Harness, canary

pytestmark = pytest.mark.anyio

FAST: dict[str, Any] = {
    "minReplicas": 1,
    "maxReplicas": 6,
    "target": {"inFlight": 10},
    "interval": "1s",
    "behavior": {
        "scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 1}]},
        "scaleDown": {
            "stabilizationWindowSeconds": 5,
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
        },
    },
}


def policy(**more: Any) -> ScalePolicy:
    return ScalePolicy(Autoscaling.model_validate({**FAST, **more}))


def test_bad_autoscaling_is_refused_with_where_and_what() -> None:
    cases = {
        "    maxReplicas: 4\n    target: {}\n": "name at least one target",
        "    minReplicas: 5\n    maxReplicas: 4\n    target: {inFlight: 3}\n": (
            "minReplicas 5 is above maxReplicas 4"
        ),
        "    maxReplicas: 4\n    target: {cpu: 170%}\n": "spec.autoscaling.target.cpu",
        "    maxReplicas: 4\n    target: {inFlight: 3}\n"
        "    behavior: {scaleUp: {selectPolicy: Most}}\n": (
            "spec.autoscaling.behavior.scaleUp.selectPolicy"
        ),
    }
    assert_spec_refused("  autoscaling:\n", cases)


def test_hpas_decision_with_tolerance_windows_policies_and_bounds() -> None:
    scaler = policy()
    slow = policy(target={"p95Latency": "200ms"}).decide(2, {"p95_latency": 0.5}, 0.0)
    assert slow.replicas == 5 and slow.why == "p95 500 ms > target 200 ms"
    within = scaler.decide(2, {"in_flight": 10.5}, 0.0)
    assert within.replicas == 2 and "within tolerance" in within.why
    up = scaler.decide(2, {"in_flight": 38.0}, 1.0)  # ceil(2 × 3.8) = 8 > 2 + 4 Pods
    assert up.replicas == 6 and up.why == "in-flight 38.0/replica > target 10"
    assert scaler.decide(6, {"in_flight": 100.0}, 2.0).replicas == 6  # maxReplicas
    # a scale-down waits for its window: the highest proposal of the last 5 s wins
    assert scaler.decide(6, {"in_flight": 1.0}, 3.0).replicas == 6
    assert scaler.decide(6, {"in_flight": 1.0}, 6.5).replicas == 6
    assert scaler.decide(6, {"in_flight": 1.0}, 8.5).replicas == 1
    # a spike inside the window holds the count up
    spiky = policy()
    spiky.decide(4, {"in_flight": 10.0}, 0.0)
    assert spiky.decide(4, {"in_flight": 2.0}, 2.0).replicas == 4
    disabled = policy(
        behavior={"scaleDown": {"selectPolicy": "Disabled"}, "scaleUp": FAST["behavior"]["scaleUp"]}
    )
    assert disabled.decide(4, {"in_flight": 0.0}, 0.0).replicas == 4
    percent = policy(
        behavior={"scaleUp": {"policies": [{"type": "Percent", "value": 50, "periodSeconds": 10}]}}
    )
    assert percent.decide(2, {"in_flight": 40.0}, 0.0).replicas == 3
    assert percent.decide(3, {"in_flight": 40.0}, 5.0).replicas == 3  # same period: at its limit
    assert percent.decide(3, {"in_flight": 40.0}, 11.0).replicas == 5


def test_the_missions_autoscaler_and_the_hpa_it_renders() -> None:
    now = [0.0]
    scaler = Autoscaler(min_replicas=1, max_replicas=5, target_cpu=0.5, clock=lambda: now[0])
    assert scaler.recommend(0.9) == 2  # ceil(1 × 0.9 / 0.5)
    now[0] = 20.0
    assert scaler.recommend(1.0) == 4
    assert scaler.current_replicas == 4
    manifest = hpa_manifest(
        "sample-agent",
        Autoscaling.model_validate(FAST | {"target": {"cpu": "70%", "inFlight": 10}}),
    )
    spec = manifest["spec"]
    assert isinstance(spec, dict)
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 6)
    assert spec["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 5


async def test_a_slow_app_scales_on_its_p95_latency(harness: Harness) -> None:
    latency = {**FAST, "target": {"p95Latency": "100ms"}}
    harness.apply(replicas=1, autoscaling=latency)
    await harness.release("1.0.0")
    scalers = Autoscalers(
        lambda: {APP: harness.worker}, harness.router, harness.clock, metrics=harness.metrics
    )
    now = int(harness.clock.now)
    for second in range(now - 5, now + 1):
        harness.metrics.serve(1, second, requests=50, latency_s=0.3)
    await scalers.tick()
    harness.clock.advance(1.0)
    await scalers.tick()
    await harness.settle()
    assert harness.backend.health(APP, 1).desired == 3  # ceil(1 × 300 ms / 100 ms)
    (event,) = [e for e in harness.store.events(APP) if e.kind == "ScaledUp"]
    assert event.message == "1→3: p95 298 ms > target 100 ms"  # 300 ms, in a 2 % bucket


async def test_stable_and_canary_scale_together_and_a_scale_down_drains_first(
    harness: Harness,
) -> None:
    harness.apply(replicas=2, autoscaling=FAST)
    await harness.release("1.0.0")
    scalers = Autoscalers(lambda: {APP: harness.worker}, harness.router, harness.clock)
    busy = {f"10.0.1.{i}:80": 30 for i in range(2)}
    harness.router.in_flight.update(busy)
    await scalers.tick()
    harness.clock.advance(1.0)
    await scalers.tick()
    await harness.settle()
    assert harness.backend.health(APP, 1).desired == 6
    (event,) = [e for e in harness.store.events(APP) if e.kind == "ScaledUp"]
    assert event.message == "2→6: in-flight 30.0/replica > target 10"

    harness.apply(canary({"setWeight": 50}, {"pause": {}}), replicas=2, autoscaling=FAST)
    await harness.commands.deploy("1.1.0", [], "deploy")
    await harness.settle()
    assert harness.backend.health(APP, 2).desired == 3  # half of 6: the weight means 50 %

    await harness.commands.abort()
    await harness.settle()
    harness.router.in_flight.clear()
    harness.router.in_flight["10.0.1.5:80"] = 2  # a request still running on replica 5
    for _ in range(7):
        harness.clock.advance(1.0)
        await scalers.tick()
    await harness.settle()
    assert harness.worker.state.current.scaled == 1
    replicas = next(r for r in harness.router.tables[APP].revisions if r.name == "1").replicas
    assert [r.draining for r in replicas] == [False, True, True, True, True, True]
    assert harness.backend.health(APP, 1).desired == 6  # not stopped while one is busy
    harness.router.in_flight.clear()
    await harness.later()
    assert harness.backend.health(APP, 1).desired == 1
    assert [e.kind for e in harness.store.events(APP)].count("ScaledDown") == 1


async def test_a_data_plane_that_counts_nothing_per_replica_scales_nothing(
    harness: Harness,
) -> None:
    """A router that reports no per-replica counts (a cluster's gateway) and replicas with no
    local process: nothing is measured, so nothing is decided (never "0 in flight")."""
    harness.apply(replicas=3, autoscaling=FAST)  # would go to 1 after 5 s on "0 in flight"
    await harness.release("1.0.0")
    harness.backend.pids = False
    scalers = Autoscalers(lambda: {APP: harness.worker}, harness.router, harness.clock)
    for _ in range(8):
        await scalers.tick()
        harness.clock.advance(1.0)
    await harness.settle()
    assert harness.backend.health(APP, 1).desired == 3
    kinds = {e.kind for e in harness.store.events(APP)}
    assert not kinds & {"ScaledUp", "ScaledDown"}


async def test_replicas_measured_by_their_platform_scale_on_that_cpu(harness: Harness) -> None:
    """A cluster's pods: no local process, their CPU share as the metrics API reported it."""
    harness.apply(replicas=2, autoscaling={**FAST, "target": {"cpu": "50%"}})
    await harness.release("1.0.0")
    harness.backend.pids, harness.backend.cpu = False, 1.5
    scalers = Autoscalers(lambda: {APP: harness.worker}, harness.router, harness.clock)
    for _ in range(3):
        await scalers.tick()
        harness.clock.advance(1.0)
    await harness.settle()
    assert harness.backend.health(APP, 1).desired == 6  # ceil(2 × 150/50), at most +4
    (scaled,) = [e.message for e in harness.store.events(APP) if e.kind == "ScaledUp"]
    assert "2→6: cpu 150%/replica > target 50%" in scaled
