"""Release gates end to end: Flagger's hook kinds against a real HTTP receiver, manual
approvals through the CLI, a real controller moving real replicas and routes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Cluster, Receiver, write_spec
from tests.helpers import assert_spec_refused, wait_for
from tests.test_crash_phases import kill_controller, restart_controller
from tests.test_strategies import actual_weights, wait_phase

pytestmark = pytest.mark.replicas(1)

STEPS = {"steps": [{"setWeight": 25}, {"setWeight": 50}], "scaleDownDelaySeconds": "1s"}


def test_bad_gates_are_refused_with_where_and_what() -> None:
    cases = {
        "  - {name: pre, type: pre-rollout}\n": "spec.gates[0]: gate pre (pre-rollout) calls",
        "  - {name: go, type: confirm-deploy}\n": "spec.gates[0].type",
        "  - {name: Go, type: confirm-rollout}\n": "'Go' is not a valid gate name",
        "  - {name: go, type: confirm-rollout, url: ftp://x}\n": "is not an http(s) URL",
        "  - {name: a, type: confirm-rollout}\n  - {name: a, type: confirm-promotion}\n": (
            "gates names must be unique; repeated: a"
        ),
    }
    assert_spec_refused("  gates:\n", cases)


def gate(name: str, kind: str, url: str | None = None, **more: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, **({"url": url} if url else {}), **more}


def events(cluster: Cluster, kind: str) -> list[dict[str, Any]]:
    rows = cluster.client.request("GET", "/apps/sample-agent/events", params={"limit": 200})
    return [e for e in rows if e["kind"] == kind]


def message_has(cluster: Cluster, text: str) -> dict[str, Any] | None:
    view = cluster.get()
    return view if text in view["message"] else None


def canary_view(cluster: Cluster, revision: int) -> dict[str, Any]:
    return next(r for r in cluster.get()["revisions"] if r["number"] == revision)


@pytest.mark.slow
def test_gates_hold_a_canary_until_their_hooks_and_approvers_say_go(
    cluster: Cluster, receiver: Receiver
) -> None:
    hooks = receiver.url
    receiver.answers.update({"/traffic": 403, "/rollback": 404})
    gates = [
        gate("go", "confirm-rollout"),
        gate("pre", "pre-rollout", f"{hooks}/pre", metadata={"suite": "smoke"}),
        gate("traffic", "confirm-traffic-increase", f"{hooks}/traffic", interval="200ms"),
        gate("owner", "confirm-promotion"),
        gate("post", "post-rollout", f"{hooks}/post"),
        gate("rollback", "rollback", f"{hooks}/rollback", interval="200ms"),
    ]
    cluster.use_steps(STEPS, smoke=False, extra={"gates": gates})
    number = cluster.deploy("1.1.0")

    # confirm-rollout: held before the new revision gets a replica
    view = wait_phase(cluster, "Paused")
    assert "waiting for gate go (confirm-rollout)" in view["message"], view["message"]
    assert canary_view(cluster, number)["health"]["desired"] == 0
    assert receiver.bodies("/pre") == []
    shown = cluster.cli("get", "sample-agent").stdout
    assert "go" in shown and "waiting" in shown and "approval" in shown
    cluster.cli("approve", "sample-agent", "-m", "change CHG-42")

    # pre-rollout once the replica is ready; then confirm-traffic-increase's hook says no
    view = wait_for(lambda: message_has(cluster, "gate traffic"), timeout=30)
    assert view["phase"] == "Paused" and "before step 1" in view["message"]
    (pre,) = receiver.bodies("/pre")
    assert (pre["name"], pre["type"], pre["revision"], pre["version"]) == (
        "sample-agent",
        "pre-rollout",
        number,
        "1.1.0",
    )
    assert pre["metadata"] == {"suite": "smoke"}
    assert actual_weights(cluster) == {"1": 100}
    asked = len(receiver.bodies("/traffic"))
    wait_for(lambda: len(receiver.bodies("/traffic")) > asked + 1, timeout=10)  # asked again
    assert cluster.get()["phase"] == "Paused"

    # the hook says yes: both weight steps go through, then confirm-promotion holds
    receiver.answers["/traffic"] = 200
    view = wait_for(lambda: message_has(cluster, "gate owner"), timeout=30)
    assert view["phase"] == "Paused" and view["set_weight"] == 50
    refused = cluster.cli("promote", "sample-agent", check=False)
    assert refused.returncode == 1 and "approve" in refused.stderr, refused.stderr
    assert receiver.bodies("/rollback"), "the rollback hook is asked while the rollout runs"

    cluster.cli("approve", "sample-agent", "--gate", "owner", "--by", "alice", "-m", "QA ok")
    cluster.wait_stable(number)
    approved = events(cluster, "GateApproved")
    assert {e["data"]["by"] for e in approved} >= {"alice"}
    assert any(e["data"]["note"] == "change CHG-42" for e in approved)
    opened = {e["data"]["gate"] for e in events(cluster, "GateOpened")}
    assert {"go", "pre", "traffic", "owner"} <= opened
    post = wait_for(lambda: receiver.bodies("/post"), timeout=10)
    assert post[0]["phase"] == "promoted" and post[0]["revision"] == number


@pytest.mark.slow
def test_a_refusing_pre_rollout_hook_and_a_rollback_hook_abort(
    cluster: Cluster, receiver: Receiver
) -> None:
    hooks = receiver.url
    receiver.answers.update({"/pre": 500, "/rollback": 404})
    refusing = [gate("pre", "pre-rollout", f"{hooks}/pre")]
    cluster.use_steps(STEPS, smoke=False, extra={"gates": refusing})
    number = cluster.deploy("1.1.0")
    view = wait_phase(cluster, "Degraded", timeout=30)
    assert view["message"].startswith("RolloutAborted: gate pre (pre-rollout) refused"), view
    assert "HTTP 500" in view["message"]
    assert events(cluster, "GateFailed")[0]["revision"] == number

    steps = {"steps": [{"setWeight": 25}, {"pause": {}}], "scaleDownDelaySeconds": "1s"}
    watching = [gate("rollback", "rollback", f"{hooks}/rollback", interval="200ms")]
    cluster.use_steps(steps, smoke=False, extra={"gates": watching})
    number = cluster.deploy("1.2.0")
    wait_for(lambda: actual_weights(cluster).get(str(number)) == 25, timeout=30)
    receiver.answers["/rollback"] = 200
    view = wait_phase(cluster, "Degraded", timeout=30)
    assert "gate rollback (rollback) asked to roll revision" in view["message"], view
    assert actual_weights(cluster) == {"1": 100}
    assert events(cluster, "RollbackRequested")


def test_approve_names_what_it_can_open(cluster: Cluster) -> None:
    nothing = cluster.cli("approve", "sample-agent", check=False)
    assert nothing.returncode == 1 and "no rollout in progress" in nothing.stderr
    cluster.use_steps(
        {"steps": [{"pause": {}}]},
        smoke=False,
        extra={"gates": [gate("owner", "confirm-promotion")]},
    )
    cluster.deploy("1.1.0")
    wait_phase(cluster, "Paused")
    unknown = cluster.cli("approve", "sample-agent", "--gate", "qa", check=False)
    assert unknown.returncode == 2 and "its gates: owner" in unknown.stderr, unknown.stderr
    # approved before it is reached: the gate is open when the rollout gets there
    cluster.cli("approve", "sample-agent", "--by", "bob")
    cluster.cli("promote", "sample-agent")
    cluster.wait_stable(2)


def test_a_blue_green_swap_waits_for_its_gate_across_a_controller_restart(
    cluster: Cluster,
) -> None:
    owner = [gate("owner", "confirm-promotion")]
    write_spec(
        cluster.spec_file,
        cluster.port,
        1,
        blue_green={"autoPromotionEnabled": True, "scaleDownDelaySeconds": "1s"},
        smoke_tests=[],
        extra={"gates": owner},
    )
    cluster.apply()
    number = cluster.deploy("1.1.0")
    view = wait_phase(cluster, "Paused")
    assert "gate owner (confirm-promotion)" in view["message"], view
    assert canary_view(cluster, number)["health"]["ready"] == 1  # the preview runs
    assert actual_weights(cluster) == {"1": 100}

    kill_controller(cluster)
    restart_controller(cluster)
    assert wait_phase(cluster, "Paused")["gates"][0]["state"] == "waiting"
    cluster.cli("approve", "sample-agent", "--by", "carol")
    cluster.wait_stable(number)
    assert actual_weights(cluster) == {str(number): 100}
    (approval,) = events(cluster, "GateApproved")
    assert approval["data"]["by"] == "carol"
