"""Listeners that outlive the proxy: kill -9 of the proxy under load refuses no connection
(new ones wait in the kernel's backlog for the next proxy), also after a controller restart
took the listeners back from the proxy that outlived it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from ..conftest import Cluster, running_cluster
from ..helpers import Background, start_controller, wait_for
from ..test_crash_phases import kill_controller


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
