"""Smoke tests as release gates on a real controller: before a canary's first request, on a
blue-green preview before the swap, after promotion on the live listener; and on demand with
``rollwise smoke``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import yaml

from rollwise.errors import NotFoundError

from .conftest import FAST_CANARY, Cluster, write_spec
from .helpers import EXAMPLES, controller_metrics, wait_for
from .test_strategies import records, served_versions, wait_phase

pytestmark = pytest.mark.replicas(1)
APP = "/apps/sample-agent"


def events(cluster: Cluster, kind: str) -> list[dict[str, Any]]:
    return [e for e in cluster.client.request("GET", f"{APP}/events") if e["kind"] == kind]


def last_history(cluster: Cluster) -> tuple[str, str]:
    row = cluster.client.request("GET", f"{APP}/history")[-1]
    return row["outcome"], row["reason"]


def test_a_canary_that_fails_a_critical_smoke_test_never_gets_a_request(
    cluster: Cluster,
) -> None:
    cluster.use_steps(FAST_CANARY)
    cluster.deploy("1.1.0", "template.env.AGENT_BREAK=rpc-error")
    view = wait_phase(cluster, "Degraded")
    message = view["message"]
    assert message.startswith("RolloutAborted: smoke tests (preTraffic) of revision 2 (1.1.0)")
    assert "ping on revision 2 at 127.0.0.1:" in message
    assert "expected a result, got JSON-RPC error -32603: injected failure in 1.1.0" in message
    assert "(after 3 attempts)" in message  # the spec's retries: 2
    assert last_history(cluster) == ("aborted", "smoke test failure")
    (failed,) = events(cluster, "SmokeTestsFailed")
    assert failed["data"]["gate"] == "preTraffic" and not failed["data"]["success"]
    assert served_versions(cluster, 10) == {"1.0.0": 10}
    wait_for(lambda: len(records(cluster)) >= 10)  # the record is flushed once a second
    assert all(r["revision"] != "2" for r in records(cluster)), "the canary served a request"
    wait_for(lambda: not cluster.pids(2) or None, timeout=30)  # and it was stopped

    cluster.deploy("1.2.0")  # a healthy release passes the same gate, then promotes
    cluster.wait_stable(3)
    kinds = [e["kind"] for e in cluster.client.request("GET", f"{APP}/events")]
    gates = [e["data"]["gate"] for e in events(cluster, "SmokeTestsPassed") if e["revision"] == 3]
    assert gates == ["preTraffic", "postPromotion"], kinds


def blue_green_release_fails(cluster: Cluster, knob: str, gate: str) -> str:
    """Release 1.1.0 blue-green with a sample-agent knob; it must end Degraded with revision 1
    active, aborted by the smoke tests of ``gate``; returns the message."""
    cluster.use_blue_green({"autoPromotionEnabled": True, "scaleDownDelaySeconds": "30s"})
    cluster.deploy("1.1.0", f"template.env.{knob}")
    view = wait_phase(cluster, "Degraded")
    assert f"smoke tests ({gate}) of revision 2 (1.1.0) failed" in view["message"]
    assert view["stable"] == 1 and last_history(cluster) == ("aborted", "smoke test failure")
    assert served_versions(cluster, 10) == {"1.0.0": 10}
    return str(view["message"])


def test_a_blue_green_preview_that_fails_is_cleaned_up_without_live_traffic(
    cluster: Cluster,
) -> None:
    message = blue_green_release_fails(cluster, "AGENT_BREAK=card-missing-name", "preview")
    assert "card on revision 2" in message
    assert "invalid A2A 1.0 card: name: required, missing" in message
    wait_for(lambda: len(records(cluster)) >= 10)
    assert all(r["revision"] != "2" for r in records(cluster))
    wait_for(lambda: not cluster.pids(2) or None, timeout=30)


def test_a_release_that_fails_after_promotion_switches_back(cluster: Cluster) -> None:
    """The preview passes (one A2A call per replica), then wears out: the post-promotion
    smoke tests on the live listener fail, and the previous revision is active again."""
    message = blue_green_release_fails(cluster, "AGENT_FAIL_AFTER=1", "postPromotion")
    assert "ping on the listener" in message
    assert "revision 1 is active again" in message
    kinds = [e["kind"] for e in cluster.client.request("GET", f"{APP}/events")]
    assert kinds.index("SmokeTestsPassed") < kinds.index("ActiveSwitched")
    assert kinds.index("ActiveSwitched") < kinds.index("SmokeTestsFailed")


def test_rollwise_smoke_runs_the_suite_on_demand(cluster: Cluster) -> None:
    live = cluster.cli("smoke", "sample-agent", "-o", "json")
    suite = json.loads(live.stdout)
    assert suite["success"] and suite["total_tests"] == 2, suite
    assert {r["target"] for r in suite["test_results"]} == {
        f"the listener 127.0.0.1:{cluster.port}"
    }
    text = cluster.cli("smoke", "sample-agent", "--revision", "1").stdout
    assert "PASSED 2/2 passed" in text and "revision 1 at 127.0.0.1:" in text
    dead = cluster.cli("smoke", "sample-agent", "--url", "http://127.0.0.1:9/", check=False)
    assert dead.returncode == 1 and "FAILED" in dead.stdout and "ConnectError" in dead.stdout
    both = cluster.cli(
        "smoke", "sample-agent", "--revision", "1", "--url", "http://x/", check=False
    )
    assert both.returncode == 2 and "give --revision or --url, not both" in both.stderr
    with pytest.raises(NotFoundError, match="revision 7"):
        cluster.client.request("POST", f"{APP}/smoke", json={"revision": 7})
    assert httpx.get(cluster.url + "/healthz").status_code == 200


def metrics(cluster: Cluster) -> str:
    return controller_metrics(cluster.state_dir)


def test_scheduled_smoke_tests_watch_the_listener_and_stop_a_bad_canary(cluster: Cluster) -> None:
    live = {"name": "live", "a2aMessage": {"text": "ping", "expectText": "pong"}, "schedule": "1s"}
    tests = [*yaml.safe_load((EXAMPLES / "rollwise.yaml").read_text())["spec"]["smokeTests"], live]
    canary = {"steps": [{"setWeight": 100}, {"pause": {}}]}
    write_spec(cluster.spec_file, cluster.port, cluster.replicas, canary, smoke_tests=tests)
    cluster.apply()
    up = 'rollwise_smoke_check_up{app="sample-agent",test="live"} 1.0'
    wait_for(lambda: up in metrics(cluster), timeout=10)

    # the gate calls each replica twice (ping, live); from then on, every A2A call fails
    cluster.deploy("1.1.0", "template.env.AGENT_FAIL_AFTER=2")
    view = wait_phase(cluster, "Degraded", timeout=30)
    assert "scheduled smoke test live failed on the listener" in view["message"]
    assert "during the rollout" in view["message"]
    assert last_history(cluster) == ("aborted", "smoke test failure")
    assert events(cluster, "SmokeCheckFailed")
    wait_for(lambda: events(cluster, "SmokeCheckRecovered"), timeout=10)  # stable again
    text = metrics(cluster)
    assert 'rollwise_smoke_checks_total{app="sample-agent",status="failed",test="live"}' in text
    assert up in text
