"""``analysis.prometheus``: a canary judged from a real Prometheus' answers (Debian's,
scraping the controller's per-revision series), and a Prometheus that is down or has no
series for the queries gives an inconclusive analysis, never a failure."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from rollwise.backends.ports import free_port

from .conftest import Cluster
from .helpers import Background, promql, wait_for
from .test_strategies import wait_phase

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None, reason="Debian's prometheus (.ci/run installs it)"
)


def prometheus_steps(source: dict[str, Any], max_duration: str = "60s") -> dict[str, Any]:
    steps = [{"setWeight": 50}, {"analysis": {"until": "pass", "maxDuration": max_duration}}]
    settings = {"errorRate": {"maxFailureRate": "1%"}, "prometheus": source}
    return {"steps": steps, "analysis": settings, "scaleDownDelaySeconds": "1s"}


def analysis_of(cluster: Cluster, revision: int) -> dict[str, Any]:
    runs = cluster.client.request("GET", "/apps/sample-agent/analysis")
    (run,) = [r for r in runs if r["revision"] == revision]
    return dict(run)


@pytest.mark.slow
def test_a_failing_canary_is_aborted_on_what_prometheus_answers(
    cluster: Cluster, prometheus: str
) -> None:
    source = {"address": prometheus, "preset": "rollwise", "interval": "3s", "delay": "2s"}
    cluster.use_steps(prometheus_steps(source), smoke=False)
    with Background(cluster.url, rate=40):
        # the controller's own series, scraped: what the rollwise preset queries
        wait_for(lambda: promql(prometheus, 'rollwise_requests_total{revision="1"} > 0'))
        cluster.deploy("1.1.0", "template.env.AGENT_FAIL_RATE=0.5")
        view = wait_phase(cluster, "Degraded", timeout=60)
    assert view["message"].startswith("RolloutAborted: failure rate"), view["message"]
    run = analysis_of(cluster, 2)
    judge = next(j for j in run["verdict"]["judges"] if j["name"] == "errorRate")
    assert judge["outcome"] == "fail", judge
    evidence = judge["evidence"]["canary"]
    assert evidence["requests"] > 0 and evidence["rate"] > 0.2, evidence
    # the judged requests are Prometheus' (whole requests, per 1 s interval): no more than it
    # holds for the canary
    (total,) = promql(prometheus, 'rollwise_requests_total{revision="2"}')
    assert evidence["requests"] <= float(total["value"][1]) + 5
    (latency,) = promql(prometheus, 'sum(rollwise_request_duration_seconds_count{revision="2"})')
    assert float(latency["value"][1]) > 0


@pytest.mark.slow
def test_no_prometheus_or_no_series_is_inconclusive_not_a_failure(
    cluster: Cluster, prometheus: str, tmp_path: Path
) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    cases = [
        ({"address": down, "preset": "rollwise", "interval": "1s", "delay": "1s"}, 2),
        ({"address": prometheus, "preset": "istio", "interval": "1s", "delay": "1s"}, 3),
    ]
    with Background(cluster.url, rate=20):
        for source, revision in cases:
            cluster.use_steps(prometheus_steps(source, max_duration="5s"), smoke=False)
            cluster.deploy(f"1.{revision}.0", "template.env.AGENT_FAIL_RATE=0.5")
            view = wait_phase(cluster, "Paused", timeout=40)
            assert view["message"].startswith("AnalysisInconclusive"), view["message"]
            run = analysis_of(cluster, revision)
            assert run["outcome"] != "fail", run
            judge = next(j for j in run["verdict"]["judges"] if j["name"] == "errorRate")
            assert judge["evidence"]["canary"]["requests"] == 0, judge
            cluster.cli("abort", "sample-agent")
            wait_phase(cluster, "Degraded", timeout=20)
    log = (cluster.state_dir / "logs" / "controller.log").read_text()
    assert "Prometheus query failed" in log and down in log  # said once, with the query
    assert "rollwise_requests_total" in log
