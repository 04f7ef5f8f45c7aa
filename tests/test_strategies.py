"""Canary steps and the rollout commands against a real controller, proxy and agents.

Each test applies the steps it is about, releases 1.1.0 over the running 1.0.0, and checks
what users see: phases and messages, the proxy's weights and the request record, history and
events. Instant moves (abort, undo to a warm revision) are timed from the proxy's record:
from the moment the command is sent to the admin API to the start of the last request the
old target served (the CLI adds its own interpreter start, about half a second, before that).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest
import yaml

from rollwise.backends.ports import free_port

from .conftest import Cluster, write_spec
from .helpers import ROOT, Background, wait_for

PAUSE_THEN_50 = {
    "steps": [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "1s"}}],
    "scaleDownDelaySeconds": "30s",
}


# one replica per revision: every replica is an interpreter start (1.8 s of CPU)
pytestmark = pytest.mark.replicas(1)


def wait_phase(cluster: Cluster, phase: str, timeout: float = 60.0) -> dict[str, Any]:
    seen: list[dict[str, Any]] = []

    def reached() -> dict[str, Any] | None:
        seen[:] = [cluster.get()]
        return seen[0] if seen[0]["phase"] == phase else None

    try:
        return wait_for(reached, timeout=timeout, every=0.05)
    except AssertionError:
        last = seen[0] if seen else {}
        shown = {
            k: last.get(k)
            for k in ("phase", "message", "step", "stable", "canary", "pause_reason", "analysis")
        }
        raise AssertionError(f"not {phase} within {timeout}s; last seen: {shown}") from None


def actual_weights(cluster: Cluster) -> dict[str, int]:
    """The weights the proxy runs, revisions at 0 (draining, warm) left out."""
    weights = cluster.client.request("GET", "/apps/sample-agent")["actual_weights"]
    return {name: weight for name, weight in weights.items() if weight}


def served_versions(cluster: Cluster, count: int, **headers: str) -> Counter[str]:
    with httpx.Client(base_url=cluster.url, headers=headers) as client:
        return Counter(client.get("/healthz").json()["version"] for _ in range(count))


def records(cluster: Cluster) -> list[dict[str, Any]]:
    return [json.loads(line) for line in cluster.record.read_text().splitlines()]


def switch_time(
    cluster: Cluster, sent: float, old_revision: str, until: float | None = None
) -> float:
    """Seconds from ``sent`` to the start of the last request ``old_revision`` served after it
    (and before ``until``; ≤ 0 when none did). The record is flushed once a second, so wait
    for a later line first."""
    end = until if until is not None else sent + 1.0
    wait_for(lambda: any(r["ts"] > end for r in records(cluster)), timeout=10)
    starts = [
        r["ts"] - r["latency_ms"] / 1000
        for r in records(cluster)
        if r["revision"] == old_revision and r["ts"] > sent
    ]
    return max((t for t in starts if until is None or t < until), default=sent) - sent


def test_steps_pause_until_promote_then_complete(cluster: Cluster) -> None:
    cluster.use_steps(PAUSE_THEN_50)
    cluster.cli("deploy", "sample-agent", "--version", "1.1.0")
    view = wait_phase(cluster, "Paused")
    assert view["message"] == "CanaryPauseStep"
    assert (view["step"], view["step_count"], view["set_weight"]) == (1, 4, 25)
    assert actual_weights(cluster) == {"1": 75, "2": 25}
    seen = served_versions(cluster, 400)
    assert 60 <= seen["1.1.0"] <= 140, seen
    status = cluster.cli("status", "sample-agent", "--timeout", "10s")
    assert status.stdout.strip().splitlines()[-1] == "Paused - CanaryPauseStep"

    cluster.cli("promote", "sample-agent")
    final = cluster.wait_stable(2)
    assert final["phase"] == "Healthy"
    events = [e["kind"] for e in cluster.client.request("GET", "/apps/sample-agent/events")]
    assert events.count("StepCompleted") == 4
    assert "PromoteRequested" in events and events[-1] != "RolloutAborted"
    revision_1 = next(r for r in final["revisions"] if r["number"] == 1)
    assert "warm" in revision_1["labels"]  # kept for scaleDownDelaySeconds
    history = cluster.client.request("GET", "/apps/sample-agent/history")
    assert [(h["version"], h["outcome"]) for h in history] == [
        ("1.0.0", "replaced"),
        ("1.1.0", "promoted"),
    ]


def test_abort_is_instant_and_retry_starts_again(cluster: Cluster) -> None:
    cluster.use_steps({"steps": [{"setWeight": 50}, {"pause": {}}]})
    cluster.deploy("1.1.0")
    wait_phase(cluster, "Paused")
    with Background(cluster.url, rate=100) as load:
        time.sleep(1.0)
        sent = time.time()
        aborted = cluster.client.request("POST", "/apps/sample-agent/abort")
        time.sleep(1.0)
    assert aborted["phase"] == "Degraded" and "RolloutAborted" in aborted["message"]
    assert load.result().errors_total == 0, load.result().as_json()
    assert switch_time(cluster, sent, "2") <= 0.1
    assert actual_weights(cluster) == {"1": 100}
    status = cluster.cli("status", "sample-agent", check=False)
    assert status.returncode == 1 and status.stdout.startswith("Degraded - RolloutAborted")
    assert cluster.cli("get", "sample-agent", check=False).returncode == 1
    history = cluster.client.request("GET", "/apps/sample-agent/history")
    assert (history[-1]["outcome"], history[-1]["reason"]) == ("aborted", "manual")
    wait_for(lambda: not cluster.pids(2) or None, timeout=30)  # the canary drained and stopped

    refused = cluster.cli("promote", "sample-agent", check=False)
    assert refused.returncode != 0
    assert "Degraded with no rollout in progress" in refused.stderr

    cluster.cli("retry", "sample-agent")
    view = wait_phase(cluster, "Paused")
    assert view["canary"] == 2 and view["set_weight"] == 50
    cluster.cli("promote", "sample-agent", "--full")
    cluster.wait_stable(2)
    assert cluster.client.request("GET", "/apps/sample-agent/history")[-1]["cause"] == "retry"


def test_undo_to_a_warm_revision_is_instant(cluster: Cluster) -> None:
    cluster.use_steps({"steps": [{"setWeight": 50}], "scaleDownDelaySeconds": "60s"})
    cluster.deploy("1.1.0")
    cluster.wait_stable(2)
    old_pids = sorted(cluster.pids(1))
    assert old_pids, "revision 1 stays warm"
    with Background(cluster.url, rate=100) as load:
        time.sleep(1.0)
        sent = time.time()
        cluster.client.request("POST", "/apps/sample-agent/undo", json={})
        time.sleep(1.0)
    assert load.result().errors_total == 0, load.result().as_json()
    assert switch_time(cluster, sent, "2") <= 0.1
    view = cluster.wait_stable(1)
    assert sorted(cluster.pids(1)) == old_pids, "the warm replicas took the traffic back"
    assert "warm" in next(r for r in view["revisions"] if r["number"] == 2)["labels"]
    events = cluster.client.request("GET", "/apps/sample-agent/events")
    rolled = [e for e in events if e["kind"] == "RolledBack"]
    assert rolled and rolled[-1]["data"]["instant"] is True

    cluster.cli("undo", "sample-agent", "--to-revision", "2")  # and back, as instantly
    cluster.wait_stable(2)


def test_undo_to_a_stopped_revision_starts_it_and_skips_steps(cluster: Cluster) -> None:
    cluster.use_steps(
        {"steps": [{"setWeight": 50}, {"pause": {}}], "scaleDownDelaySeconds": "0s"},
    )
    cluster.deploy("1.1.0")
    wait_phase(cluster, "Paused")
    cluster.cli("promote", "sample-agent", "--full")
    cluster.wait_stable(2)
    wait_for(lambda: not cluster.pids(1) or None, timeout=30)
    cluster.cli("undo", "sample-agent", "--to-revision", "1")
    view = cluster.wait_stable(1, timeout=60)  # no pause step stopped it
    assert view["step_count"] == 0 or view["step"] == 0
    assert served_versions(cluster, 20) == {"1.0.0": 20}
    history = cluster.client.request("GET", "/apps/sample-agent/history")
    assert history[0]["cause"] == "undo" and history[0]["outcome"] == "promoted"


@pytest.mark.replicas(2)  # setCanaryScale needs room to scale
def test_header_route_and_canary_scale(cluster: Cluster) -> None:
    cluster.use_steps(
        {
            "steps": [
                {"setCanaryScale": {"replicas": 1}},
                {
                    "setHeaderRoute": {
                        "name": "beta",
                        "match": [{"headerName": "X-Beta", "headerValue": "1"}],
                    }
                },
                {"pause": {}},
            ]
        },
    )
    cluster.deploy("1.1.0")
    view = wait_phase(cluster, "Paused")
    canary = next(r for r in view["revisions"] if r["number"] == 2)
    assert canary["health"]["desired"] == 1 and canary["weight"] == 0
    assert served_versions(cluster, 20, **{"X-Beta": "1"}) == {"1.1.0": 20}
    assert served_versions(cluster, 20) == {"1.0.0": 20}
    cluster.cli("promote", "sample-agent", "--full")
    view = cluster.wait_stable(2)
    stable = next(r for r in view["revisions"] if r["number"] == 2)
    assert stable["health"]["desired"] == 2 and stable["health"]["ready"] == 2


def deploy_failing(cluster: Cluster) -> None:
    """Release 1.1.0 with half of its A2A answers failing (the sample agent's knob); the
    spec's smoke tests must be off for an analysis to see it."""
    cluster.deploy("1.1.0", "template.env.AGENT_FAIL_RATE=0.5")


def test_analysis_step_aborts_a_failing_canary(cluster: Cluster) -> None:
    analysis = {"until": "duration", "duration": "20s", "maxErrorRate": 0.05, "minRequests": 20}
    cluster.use_steps({"steps": [{"setWeight": 50}, {"analysis": analysis}]}, smoke=False)
    with Background(cluster.url, rate=60):
        deploy_failing(cluster)
        view = wait_phase(cluster, "Degraded", timeout=30)
    # the guardrail or the failure-rate judge, whichever saw enough first, with its evidence
    assert "failure rate" in view["message"] and "after" in view["message"], view["message"]
    history = cluster.client.request("GET", "/apps/sample-agent/history")
    assert (history[-1]["outcome"], history[-1]["reason"]) == ("aborted", "analysis failure")
    kinds = [e["kind"] for e in cluster.client.request("GET", "/apps/sample-agent/events")]
    assert "AnalysisFailed" in kinds
    assert served_versions(cluster, 20) == {"1.0.0": 20}


def test_a_new_deploy_supersedes_the_rollout(cluster: Cluster) -> None:
    cluster.use_steps({"steps": [{"setWeight": 20}, {"pause": {}}]})
    cluster.deploy("1.1.0")
    wait_phase(cluster, "Paused")
    cluster.deploy("1.2.0")
    view = wait_for(lambda: (v := cluster.get())["canary"] == 3 and v["phase"] == "Paused" and v)
    assert view["stable"] == 1
    history = cluster.client.request("GET", "/apps/sample-agent/history")
    assert history[1]["outcome"] == "superseded"
    wait_for(lambda: not cluster.pids(2) or None, timeout=30)
    cluster.cli("promote", "sample-agent", "--full")
    cluster.wait_stable(3)


def test_commands_are_refused_in_the_wrong_phase_and_serialized(cluster: Cluster) -> None:
    for command in ("promote", "abort", "pause", "resume", "retry"):
        refused = cluster.cli(command, "sample-agent", check=False)
        assert refused.returncode == 1, (command, refused.stdout, refused.stderr)
        assert "Healthy" in refused.stderr and "Traceback" not in refused.stderr
    assert (
        "already runs revision 1"
        in cluster.cli("undo", "sample-agent", "--to-revision", "1", check=False).stderr
    )

    cluster.use_steps({"steps": [{"setWeight": 50}, {"pause": {}}, {"pause": {}}]})
    cluster.deploy("1.1.0")
    wait_phase(cluster, "Paused")
    results: dict[str, int] = {}

    def run(command: str) -> None:
        results[command] = cluster.cli(command, "sample-agent", check=False).returncode

    threads = [threading.Thread(target=run, args=(c,)) for c in ("promote", "abort")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    view = cluster.get()
    # Either order is one consistent state: the abort always lands (promote cannot undo it),
    # and a promote after the abort is refused.
    assert results["abort"] == 0
    assert view["phase"] == "Degraded" and view["aborted"] is True
    assert actual_weights(cluster) == {"1": 100}
    assert results["promote"] in (0, 1)  # ran first, or was refused after the abort


@pytest.mark.parametrize("command", ["resume", "promote"])
def test_user_pause_holds_the_rollout(cluster: Cluster, command: str) -> None:
    cluster.use_steps(
        {"steps": [{"setWeight": 30}, {"pause": {"duration": "4s"}}, {"setWeight": 60}]}
    )
    cluster.deploy("1.1.0")
    wait_for(lambda: cluster.get()["set_weight"] == 30)
    step_ends = time.monotonic() + 4.0
    # the pause step is long enough for the CLI to start under load (it took over 2 s once)
    cluster.cli("pause", "sample-agent")
    time.sleep(max(0.0, step_ends - time.monotonic()) + 1.0)  # past the step: the pause holds
    view = cluster.get()
    assert view["phase"] == "Paused" and view["pause_reason"] == "user" and view["set_weight"] == 30
    cluster.cli(command, "sample-agent")  # promote on a user pause only resumes, like resume
    cluster.wait_stable(2)


def test_blue_green_preview_swap_and_instant_undo(cluster: Cluster) -> None:
    preview = free_port()
    cluster.use_blue_green(
        {
            "previewListen": f"127.0.0.1:{preview}",
            "autoPromotionEnabled": False,
            "scaleDownDelaySeconds": "60s",
        },
    )
    cluster.deploy("1.1.0")
    view = wait_phase(cluster, "Paused")
    assert view["message"].startswith("BlueGreenPause")
    labels = {r["number"]: r["labels"] for r in view["revisions"]}
    assert "active" in labels[1] and "preview" in labels[2]
    assert httpx.get(f"http://127.0.0.1:{preview}/healthz").json()["version"] == "1.1.0"
    assert served_versions(cluster, 20) == {"1.0.0": 20}
    with Background(cluster.url, rate=100) as load:
        time.sleep(1.0)
        sent = time.time()
        cluster.client.request("POST", "/apps/sample-agent/promote", json={})
        cluster.wait_stable(2)
        swapped = time.time()
        time.sleep(1.0)
        undo_sent = time.time()
        cluster.client.request("POST", "/apps/sample-agent/undo", json={})
        time.sleep(1.0)
    assert load.result().errors_total == 0, load.result().as_json()
    assert swapped - sent < 1.0  # the preview had every replica: the swap is a route change
    assert switch_time(cluster, sent, "1", until=undo_sent) <= 0.1
    assert switch_time(cluster, undo_sent, "2") <= 0.1  # and so is the undo
    cluster.wait_stable(1)
    with pytest.raises(httpx.ConnectError):  # the preview listener is gone
        httpx.get(f"http://127.0.0.1:{preview}/healthz")


def test_blue_green_post_promotion_failure_switches_back(cluster: Cluster) -> None:
    analysis = {"until": "duration", "duration": "20s", "maxErrorRate": 0.05, "minRequests": 20}
    blue_green = {"postPromotionAnalysis": analysis, "scaleDownDelaySeconds": "60s"}
    cluster.use_blue_green(blue_green, smoke=False)  # the analysis, not the smoke tests, catches it
    with Background(cluster.url, rate=60):
        deploy_failing(cluster)
        view = wait_phase(cluster, "Degraded", timeout=40)
    assert "revision 1 is active again" in view["message"]
    assert view["stable"] == 1
    history = cluster.client.request("GET", "/apps/sample-agent/history")
    assert (history[-1]["outcome"], history[-1]["reason"]) == ("aborted", "analysis failure")
    kinds = [e["kind"] for e in cluster.client.request("GET", "/apps/sample-agent/events")]
    assert "ActiveSwitched" in kinds and "AnalysisFailed" in kinds
    assert served_versions(cluster, 20) == {"1.0.0": 20}


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (.ci/run installs it)"
)
def test_every_move_under_500_rps_fails_no_request(cluster: Cluster) -> None:
    """Canary promotion, abort, undo and a blue-green swap under wrk: 0 failed requests."""
    seconds = 60  # an upper bound: wrk is stopped (SIGINT, it then reports) after the moves
    script = str(ROOT / "bench" / "proxy" / "wrk.lua")
    argv = ["wrk", "-t1", "-c8", f"-d{seconds}s", "--timeout", "5s", "-s", script]
    wrk = subprocess.Popen([*argv, cluster.url + "/healthz"], stdout=subprocess.PIPE, text=True)
    try:
        started = time.monotonic()
        cluster.use_steps({"steps": [{"setWeight": 50}], "scaleDownDelaySeconds": "60s"})
        cluster.deploy("1.1.0")
        cluster.wait_stable(2)
        cluster.use_steps({"steps": [{"setWeight": 50}, {"pause": {}}]})
        cluster.deploy("1.2.0")
        wait_phase(cluster, "Paused")
        cluster.cli("abort", "sample-agent")
        wait_for(lambda: not cluster.pids(3) or None, timeout=30)
        cluster.cli("undo", "sample-agent", "--to-revision", "1")  # still warm
        cluster.wait_stable(1)
        cluster.use_blue_green({"scaleDownDelaySeconds": "60s"})
        cluster.deploy("1.3.0")
        cluster.wait_stable(4)
        moves_took = time.monotonic() - started
        time.sleep(0.5)  # load on the settled state too
        wrk.send_signal(signal.SIGINT)
        out, _ = wrk.communicate(timeout=30)
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    assert moves_took < seconds, f"every move must happen under load (took {moves_took:.1f}s)"
    result = json.loads(next(ln for ln in reversed(out.splitlines()) if ln.startswith("{")))
    rate = result["requests"] / (result["duration_us"] / 1e6)
    assert rate >= 500, result
    assert sum(result["errors"].values()) == 0, result
    print(f"{result['requests']} requests at {rate:.0f} req/s over every move, 0 failed")


def test_history_redacts_secrets_and_keeps_the_limit(cluster: Cluster) -> None:
    write_spec(cluster.spec_file, cluster.port, cluster.replicas)
    spec = yaml.safe_load(cluster.spec_file.read_text())
    spec["spec"]["revisionHistoryLimit"] = 1
    cluster.spec_file.write_text(yaml.safe_dump(spec))
    cluster.apply()
    secret = "template.env.API_TOKEN=hunter2"
    cluster.cli("deploy", "sample-agent", "--version", "1.1.0", "--set", secret)
    cluster.wait_stable(2)
    row = cluster.client.request("GET", "/apps/sample-agent/history")[-1]
    assert row["env"]["API_TOKEN"] == "***" and row["env"]["AGENT_VERSION"] == "{version}"
    assert "hunter2" not in cluster.cli("history", "sample-agent", "-o", "json").stdout
    cluster.deploy("1.2.0")
    cluster.wait_stable(3)

    def pruned() -> list[int] | None:
        kept = [h["revision"] for h in cluster.client.request("GET", "/apps/sample-agent/history")]
        return kept if kept == [2, 3] else None

    wait_for(pruned, timeout=30)  # revision 1 stopped after its delay, then left the history
    kinds = [e["kind"] for e in cluster.client.request("GET", "/apps/sample-agent/events")]
    assert "RevisionPruned" in kinds
