"""Two real ``rollwise up --leader-elect`` processes and one Lease on the fake API server: the
second waits while the first acts, takes over once the first is killed (-9: no clean hand
over) and its lease has run out, and gives the Lease up when it is stopped."""

from __future__ import annotations

import os
import re
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from rollwise.client import AdminClient

from .conftest import stop_everything
from .helpers import rollwise, wait_for
from .kube.apiserver import FakeApiServer

LEASE = "/apis/coordination.k8s.io/v1/namespaces/agents/leases/rollwise-controller"
TIMING = [
    "--leader-elect-lease-duration",
    "2",
    "--leader-elect-renew-deadline",
    "1.5",
    "--leader-elect-retry-period",
    "0.3",
]


def lease_spec(api: FakeApiServer) -> dict[str, Any]:
    answer = httpx.get(api.url + LEASE)
    assert answer.status_code == 200, answer.text
    spec = answer.json()["spec"]
    assert isinstance(spec, dict)
    return spec


def renewed(api: FakeApiServer) -> float:
    """The Lease's last renewal, in unix seconds (its holder's clock)."""
    stamp = lease_spec(api)["renewTime"].replace("Z", "+00:00")
    return datetime.fromisoformat(stamp).timestamp()


def answers(state_dir: Path) -> bool:
    with AdminClient(state_dir) as admin:
        return admin.running()


def up(state_dir: Path, kubeconfig: Path) -> int:
    """``rollwise up -d --leader-elect``; the candidate's pid."""
    options = ["--metrics-port", "0", "--leader-elect", "--kubeconfig", str(kubeconfig)]
    done = rollwise("up", "--detach", *options, *TIMING, state_dir=state_dir)
    found = re.search(r"pid (\d+)", done.stdout)
    assert found, done.stdout
    return int(found[1])


@pytest.mark.slow
def test_a_second_controller_waits_then_takes_over_from_a_killed_leader(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    with FakeApiServer().serve() as api:
        kubeconfig = api.kubeconfig(tmp_path / "kubeconfig", namespace="agents")
        try:
            leader = up(first, kubeconfig)
            assert answers(first)
            assert f"_{leader}_" in lease_spec(api)["holderIdentity"]

            candidate = up(second, kubeconfig)  # returns once it says that it waits
            log = (second / "logs" / "controller.log").read_text()
            assert "waiting for the lease" in log and f"_{leader}_" in log
            # the leader renews for longer than a whole lease (2 s) while the candidate waits:
            # without the renewals the candidate would have taken the Lease by then
            first_renewal = renewed(api)
            wait_for(lambda: renewed(api) - first_renewal > 2.5, timeout=20)
            assert not answers(second)
            assert f"_{leader}_" in lease_spec(api)["holderIdentity"]

            os.kill(leader, signal.SIGKILL)
            killed = time.monotonic()
            wait_for(lambda: answers(second), timeout=20)
            took = time.monotonic() - killed
            spec = lease_spec(api)
            assert f"_{candidate}_" in spec["holderIdentity"]
            assert spec["leaseTransitions"] == 1
            # the lease (2 s, counted from the last renewal the candidate saw) and a start
            assert 1.5 < took < 10, took
            print(f"taken over {took:.2f} s after the leader was killed")

            rollwise("down", state_dir=second)
            assert "holderIdentity" not in lease_spec(api)  # given up: no one waits 2 s
        finally:
            stop_everything(first)
            stop_everything(second)


def test_leader_election_options_that_cannot_work_are_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    elect = ["up", "--leader-elect", "--kubeconfig", str(tmp_path / "missing")]
    timing = rollwise(*elect, "--leader-elect-renew-deadline", "20", state_dir=state, check=False)
    assert timing.returncode == 2 and "Traceback" not in timing.stderr
    assert "retry period < renew deadline < lease duration" in timing.stderr
    config = rollwise(*elect, state_dir=state, check=False)
    assert config.returncode == 1 and "Traceback" not in config.stderr
    assert f"cannot use the kubeconfig {tmp_path / 'missing'}" in config.stderr
    assert "--kubeconfig" in config.stderr  # how to fix it
    backend = ["up", "--detach", "--backend", "kubernetes", "--kubeconfig", str(tmp_path / "x")]
    cluster = rollwise(*backend, state_dir=state, check=False)
    assert cluster.returncode == 1 and "Traceback" not in cluster.stderr
    assert f"cannot use the kubeconfig {tmp_path / 'x'}" in cluster.stderr
    assert not state.exists()  # nothing started, nothing written
