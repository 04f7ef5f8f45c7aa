"""A planned proxy replacement loses no request: a controller started with other proxy
options (or finding a proxy of another build) starts a new proxy beside the running one on
the same listening sockets, and the old one drains (``connection: close`` on what it still
answers) and exits."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psutil
import pytest

from rollwise.store import Store

from ..conftest import Cluster, running_cluster
from ..helpers import Background, start_controller, wait_for
from ..test_crash_phases import kill_controller
from .test_listeners import _stored_pid


def restart_with(cluster: Cluster, *options: str) -> None:
    kill_controller(cluster)
    start_controller(cluster.state_dir, "--record", str(cluster.record), *options)
    wait_for(lambda: cluster.get()["phase"] == "Healthy" or None, timeout=30)


def replaced(cluster: Cluster, load: Background, before: int) -> int:
    """Wait until another proxy is recorded, the old one has exited and the load got 80
    more answers; the new proxy's pid."""
    now = wait_for(lambda: (p := _stored_pid(cluster)) != before and p, timeout=30)
    wait_for(lambda: not psutil.pid_exists(before) or None, timeout=30)
    answered = load.live.ok
    wait_for(lambda: load.live.ok > answered + 80 or None, timeout=30)
    return now


@pytest.mark.solo
def test_a_proxy_with_other_options_or_another_build_is_replaced_losing_no_request(
    tmp_path: Path,
) -> None:
    with running_cluster(tmp_path / "state", tmp_path, 1, "--proxy-workers", "1") as cluster:
        with Background(cluster.url, rate=80) as load:
            wait_for(lambda: load.live.ok > 80 or None, timeout=20)
            first = _stored_pid(cluster)
            # rollwise up with another --proxy-workers: the proxy is replaced
            restart_with(cluster, "--proxy-workers", "2")
            second = replaced(cluster, load, first)
            assert len(psutil.Process(second).children()) == 1  # its second worker
            # the same options again: the proxy is kept
            restart_with(cluster, "--proxy-workers", "2")
            assert _stored_pid(cluster) == second
            # a proxy that another build of rollwise started is replaced as well; and one a
            # controller killed mid-replacement had started (here: a stand-in process) is
            # stopped
            kill_controller(cluster)
            unfinished = subprocess.Popen(["sleep", "60"], start_new_session=True)
            try:
                store = Store(cluster.state_dir / "state.db")
                store.put_kv("proxy", {**store.get_kv("proxy"), "build": "an-older-build"})
                started = psutil.Process(unfinished.pid).create_time()
                store.put_kv("proxy_next", {"pid": unfinished.pid, "start_time": started})
                store.close()
                options = ("--record", str(cluster.record), "--proxy-workers", "2")
                start_controller(cluster.state_dir, *options)
                replaced(cluster, load, second)
                assert unfinished.wait(10) == -15  # SIGTERM
            finally:
                unfinished.kill()
                unfinished.wait()
        report = load.result()
    assert report.errors_total == 0, report.errors
    assert report.ok > 400
    log = (cluster.state_dir / "logs" / "controller.log").read_text()
    assert log.count("proxy replaced; the old one drains") == 2
