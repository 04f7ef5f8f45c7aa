"""Listeners that outlive the proxy: kill -9 of the proxy under load refuses no connection
(new ones wait in the kernel's backlog for the next proxy), also after a controller restart
took the listeners back from the proxy that outlived it."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import psutil
import pytest

from rollwise.errors import DataPlaneError

from ..conftest import Cluster, running_cluster
from ..helpers import Background, start_controller, wait_for
from ..test_crash_phases import kill_controller
from ..test_proxy_load import wrk


def _stored_pid(cluster: Cluster) -> int:
    from rollwise.store import Store

    store = Store(cluster.state_dir / "state.db")
    try:
        return int(store.get_kv("proxy")["pid"])
    finally:
        store.close()


def kill_proxy_and_wait_for_answers(cluster: Cluster, load: Background) -> None:
    """kill -9 the proxy; return once the next one answered 40 more requests."""
    before = _stored_pid(cluster)
    os.kill(before, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(before) or None, timeout=10)
    wait_for(lambda: _stored_pid(cluster) != before or None, timeout=20)
    answered = load.live.ok
    wait_for(lambda: load.live.ok > answered + 40 or None, timeout=20)


@pytest.mark.solo
@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_of_the_proxy_under_load_refuses_no_connection(tmp_path: Path, workers: int) -> None:
    options = ("--proxy-workers", str(workers))
    with running_cluster(tmp_path / "state", tmp_path, 1, *options) as cluster:
        with Background(cluster.url, rate=80) as load:
            wait_for(lambda: load.live.ok > 40 or None, timeout=20)
            kill_proxy_and_wait_for_answers(cluster, load)
            # the controller dies and comes back: it takes the listeners back from the proxy
            kill_controller(cluster)
            start_controller(cluster.state_dir, "--record", str(cluster.record), *options)
            wait_for(lambda: cluster.get()["phase"] == "Healthy" or None, timeout=30)
            kill_proxy_and_wait_for_answers(cluster, load)
        report = load.result()
        assert report.errors["connect"] == 0, report.errors  # nothing refused
        # only requests in flight at each kill can fail (80 req/s, a few ms each)
        assert report.errors_total <= 10, report.errors
        assert report.ok > 200


@pytest.mark.solo
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk (.ci/run installs it)")
def test_kill_9_of_the_proxy_under_wrk_refuses_no_connection(tmp_path: Path) -> None:
    """wrk's closed loop of 32 keep-alive connections, as fast as it can: the kill cuts the
    connections it holds (their requests in flight fail as read errors), and the next
    connections wait in the backlog for the next proxy: not one connect error."""

    def served() -> int:
        """Requests the (current) proxy has answered since it started (0 while none runs)."""
        try:
            stats = cluster.client.request("GET", "/apps/sample-agent/stats")
        except DataPlaneError:
            return 0
        return sum(int(r["requests"]) for r in stats["revisions"].values())

    with (
        running_cluster(tmp_path / "state", tmp_path, 1) as cluster,
        wrk(cluster.port, "/healthz") as report,
    ):
        wait_for(lambda: served() > 1000 or None, timeout=20)
        before = _stored_pid(cluster)
        os.kill(before, signal.SIGKILL)
        wait_for(lambda: _stored_pid(cluster) != before or None, timeout=20)
        wait_for(lambda: served() > 1000 or None, timeout=20)  # counted by the next proxy
    errors = report["errors"]
    assert errors["connect"] == 0, report
    assert errors["read"] + errors["write"] + errors["timeout"] <= 2 * 32, report
    assert errors["status"] == 0 and report["requests"] > 500, report
