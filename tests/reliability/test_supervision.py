"""Supervision: a proxy killed with -9 serves again within a second, with its routes; a
starting controller kills the replicas of its directory that nobody recorded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rollwise.store import Store

from ..conftest import Cluster, stop_everything
from ..helpers import start_controller, wait_for

pytestmark = pytest.mark.replicas(1)


def test_a_killed_proxy_serves_again_within_a_second(cluster: Cluster) -> None:
    store = Store(cluster.state_dir / "state.db")
    try:
        pid = int(store.get_kv("proxy")["pid"])
    finally:
        store.close()
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    def serving() -> bool:
        # the listener outlives the proxy: this connection waits in the backlog, and the
        # next proxy answers it
        answer = httpx.get(cluster.url + "/healthz", timeout=5.0).json()
        return bool(answer["version"] == "1.0.0")

    wait_for(serving, timeout=10, every=0.02)
    took = time.monotonic() - killed
    print(f"proxy back after {took:.3f}s")
    assert took < 1.0, f"the listener was back after {took:.2f}s"
    events = cluster.client.request("GET", "/apps/-/events")
    assert any(e["kind"] == "ProxyRestarted" for e in events)


def test_a_starting_controller_kills_replicas_the_store_never_recorded(tmp_path: Path) -> None:
    """What a controller killed between starting a replica and recording it leaves behind."""
    state = (tmp_path / "state").resolve()
    env = {**os.environ, "ROLLWISE_REPLICA_OF": str(state)}
    stray = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], env=env, start_new_session=True
    )
    other = subprocess.Popen(  # another directory's: not ours to kill
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**env, "ROLLWISE_REPLICA_OF": str(tmp_path / "elsewhere")},
        start_new_session=True,
    )
    try:
        start_controller(state)
        assert stray.wait(10) == -signal.SIGKILL
        assert other.poll() is None
    finally:
        stop_everything(state)
        for proc in (stray, other):
            proc.kill()
            proc.wait()
