"""Supervision: a proxy killed with -9 serves again within a second, with its routes."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from rollwise.store import Store

from ..conftest import Cluster
from ..helpers import wait_for

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
        answer = httpx.get(cluster.url + "/healthz", timeout=0.5).json()
        return bool(answer["version"] == "1.0.0")

    wait_for(serving, timeout=10, every=0.02)
    took = time.monotonic() - killed
    print(f"proxy back after {took:.3f}s")
    assert took < 1.0, f"the listener was back after {took:.2f}s"
    events = cluster.client.request("GET", "/apps/-/events")
    assert any(e["kind"] == "ProxyRestarted" for e in events)
