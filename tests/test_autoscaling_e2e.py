"""Autoscaling under real load: A2A requests through the proxy step from 5 to 50 a second and
back; the app scales up within its window and back down, draining what it removes, and no
request fails.

What the autoscaler reads is requests in flight (rate × latency), so the load is made of slow
answers (150 ms) rather than many: 50 a second keep about 7.5 in flight. On two cores the
load generator, the proxy and the replicas share the CPU, and under coverage the first two
(and the controller) are traced: 150 fast answers a second (the first form of this test)
queued for seconds there, and on a slower machine for over ten (docs/performance.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import FAST_CANARY, running_cluster
from .helpers import Background, wait_for

SCALING: dict[str, Any] = {
    "minReplicas": 1,
    "maxReplicas": 4,
    "target": {"inFlight": 2},
    "interval": "1s",
    "behavior": {
        "scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 1}]},
        "scaleDown": {
            "stabilizationWindowSeconds": 3,
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
        },
    },
}


@pytest.mark.solo
def test_a_load_step_scales_up_in_its_window_and_back_down_with_no_failed_request(
    tmp_path: Path,
) -> None:
    with running_cluster(tmp_path / "state", tmp_path, 1) as cluster:
        # each answer takes 150 ms: 5 requests a second keep under 1 in flight, 50 about 7.5
        cluster.use_steps(
            FAST_CANARY, smoke=False, extra={"autoscaling": SCALING}, AGENT_LATENCY_MS="150"
        )
        cluster.deploy("1.0.1")
        cluster.wait_stable(2)

        def ready() -> int:
            view = cluster.get()
            stable = next(r for r in view["revisions"] if r["number"] == view["stable"])
            return int(stable["health"]["ready"])

        with Background(cluster.url, rate=5) as calm:
            # three intervals of calm: nothing to scale for
            wait_for(lambda: calm.live.ok >= 15 or None, timeout=20)
        assert calm.result().errors_total == 0
        assert cluster.get()["replicas"] == 1

        with Background(cluster.url, rate=50) as busy:
            started = time.monotonic()
            wait_for(lambda: ready() >= 3, timeout=20)
            took = time.monotonic() - started
            answered = busy.live.ok  # and the scaled-up app keeps answering
            wait_for(lambda: busy.live.ok >= answered + 150 or None, timeout=20)
        report = busy.result()
        assert report.errors_total == 0, report.errors
        assert report.ok >= 0.9 * report.sent, (report.ok, report.sent)
        assert took < 8, f"scaled up after {took:.1f} s (interval 1 s, Pods 4 per second)"
        events = cluster.client.request("GET", "/apps/sample-agent/events", params={"limit": 500})
        (up, *_) = [e for e in events if e["kind"] == "ScaledUp"]
        assert "in-flight" in up["message"] and "> target 2" in up["message"], up

        with Background(cluster.url, rate=5) as calm:
            wait_for(lambda: cluster.get()["replicas"] == 1 or None, timeout=20)
            wait_for(lambda: ready() == 1 or None, timeout=20)
            answered = calm.live.ok  # the one replica left answers
            wait_for(lambda: calm.live.ok >= answered + 10 or None, timeout=20)
        assert calm.result().errors_total == 0, calm.result().errors
        down = [
            e
            for e in cluster.client.request(
                "GET", "/apps/sample-agent/events", params={"limit": 500}
            )
            if e["kind"] == "ScaledDown"
        ]
        assert down and down[-1]["data"]["to"] == 1
