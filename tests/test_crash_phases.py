"""The controller killed with -9 in each phase of a rollout, then started again.

After the restart the rollout continues where it was, or ends safely with stable at 100 %;
at no moment does the proxy route to a revision whose processes are gone. Each case drives
a rollout into its phase, kills the controller, checks the routes while it is dead and after
it is back, and then finishes the rollout with commands.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from typing import Any

import httpx
import psutil
import pytest

from rollwise.client import unix_transport

from .conftest import Cluster
from .helpers import Background, start_controller, wait_for

# one replica per revision: every replica is an interpreter start (1.8 s of CPU)
pytestmark = pytest.mark.replicas(1)


def kill_controller(cluster: Cluster) -> None:
    pid = int((cluster.state_dir / "controller.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
        timeout=10,
    )


def restart_controller(cluster: Cluster) -> None:
    start_controller(cluster.state_dir, "--record", str(cluster.record))


def proxy_table(cluster: Cluster) -> dict[str, Any]:
    """The table the proxy runs, read from its own admin socket (the controller may be dead)."""
    sock = cluster.state_dir / "proxy.sock"
    with httpx.Client(transport=unix_transport(str(sock)), base_url="http://p") as c:
        return dict(c.get("/routes").json()["table"])


def assert_routes_live(cluster: Cluster) -> None:
    """Every replica the proxy may send a new request to accepts connections."""
    for app in proxy_table(cluster)["apps"].values():
        for revision in app["revisions"]:
            for replica in revision["replicas"]:
                if replica.get("draining"):
                    continue
                host, _, port = replica["address"].rpartition(":")
                with socket.create_connection((host, int(port)), timeout=2):
                    pass


def phase_is(cluster: Cluster, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    return wait_for(lambda: view if check(view := cluster.get()) else None, timeout=60)


def stepping(cluster: Cluster) -> None:
    """Before the first step: the canary's replicas are starting (slowly)."""
    cluster.use_steps({"steps": [{"setWeight": 50}, {"pause": {}}]}, AGENT_START_DELAY_S="2")
    cluster.deploy("1.1.0")
    phase_is(cluster, lambda v: v["canary"] == 2 and v["phase"] == "Progressing")


def paused(cluster: Cluster) -> None:
    cluster.use_steps({"steps": [{"setWeight": 50}, {"pause": {}}]})
    cluster.deploy("1.1.0")
    phase_is(cluster, lambda v: v["phase"] == "Paused")


def analysing(cluster: Cluster) -> None:
    analysis = {"until": "duration", "duration": "4s", "minRequests": 1, "maxErrorRate": 0.5}
    cluster.use_steps({"steps": [{"setWeight": 50}, {"analysis": analysis}, {"pause": {}}]})
    cluster.deploy("1.1.0")
    phase_is(cluster, lambda v: v["message"].startswith("analysing"))


def promoting(cluster: Cluster) -> None:
    """Steps done; the canary scales to full capacity before it takes all traffic."""
    canary = {"steps": [{"setCanaryScale": {"replicas": 1}}, {"setWeight": 50}]}
    cluster.use_steps(canary, AGENT_START_DELAY_S="2")
    cluster.deploy("1.1.0")
    phase_is(cluster, lambda v: "before it takes all traffic" in v["message"])


def aborting(cluster: Cluster) -> None:
    paused(cluster)
    cluster.client.request("POST", "/apps/sample-agent/abort")


def scale_down_delay(cluster: Cluster) -> None:
    cluster.use_steps({"steps": [{"setWeight": 50}], "scaleDownDelaySeconds": "5s"})
    cluster.deploy("1.1.0")
    phase_is(cluster, lambda v: v["stable"] == 2 and v["phase"] == "Healthy")


PHASES: dict[str, Callable[[Cluster], None]] = {
    "stepping": stepping,
    "paused": paused,
    "analysing": analysing,
    "promoting": promoting,
    "aborting": aborting,
    "scale-down-delay": scale_down_delay,
}


@pytest.mark.parametrize(
    "phase",
    # promoting: the canary scales up to spec.replicas, which needs more than one
    [pytest.param(p, marks=pytest.mark.replicas(2)) if p == "promoting" else p for p in PHASES],
)
def test_kill_9_in_each_phase(cluster: Cluster, phase: str) -> None:
    with Background(cluster.url, rate=40) as load:
        PHASES[phase](cluster)
        kill_controller(cluster)
        assert_routes_live(cluster)
        restart_controller(cluster)
        assert_routes_live(cluster)
        if phase in ("paused", "stepping", "analysing"):
            view = phase_is(cluster, lambda v: v["phase"] in ("Paused", "Healthy"))
            if view["phase"] == "Paused":
                assert view["canary"] == 2
                cluster.cli("promote", "sample-agent", "--full")
            cluster.wait_stable(2)
        elif phase == "aborting":
            view = phase_is(cluster, lambda v: v["phase"] == "Degraded")
            assert view["stable"] == 1
            wait_for(lambda: not cluster.pids(2) or None, timeout=30)
        else:
            cluster.wait_stable(2)
        if phase == "scale-down-delay":
            wait_for(lambda: not cluster.pids(1) or None, timeout=30)
        assert_routes_live(cluster)
    assert load.result().errors_total == 0, load.result().as_json()
