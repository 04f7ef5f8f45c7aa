"""A release whose replicas never become ready: replaced after ``readiness.startTimeout``,
the rollout aborted at ``progressDeadlineSeconds``, stable serving every request meanwhile,
and nothing of the release left running."""

from __future__ import annotations

import psutil
import pytest
import yaml

from ..conftest import Cluster
from ..helpers import Background, wait_for

pytestmark = pytest.mark.replicas(1)


def test_a_release_that_never_becomes_ready_is_aborted(cluster: Cluster) -> None:
    spec = yaml.safe_load(cluster.spec_file.read_text())
    spec["spec"]["progressDeadlineSeconds"] = "4s"
    spec["spec"]["template"]["readiness"]["startTimeout"] = "1500ms"
    cluster.spec_file.write_text(yaml.safe_dump(spec))
    cluster.apply()
    with Background(cluster.url, rate=40) as load:
        # listens only after an hour: never ready within any timeout here
        cluster.deploy("2.0.0", "template.env.AGENT_START_DELAY_S=3600")

        def aborted() -> dict[str, object] | None:
            view = cluster.get()
            return view if view["phase"] == "Degraded" else None

        view = wait_for(aborted, timeout=30, every=0.2)
    assert "made no progress for 4s (progressDeadlineSeconds)" in str(view["message"])
    assert view["stable"] == 1
    report = load.result()
    assert report.errors_total == 0, report.errors
    assert set(report.versions) == {"1.0.0"}
    events = cluster.client.request("GET", "/apps/sample-agent/events")
    lost = [e for e in events if "not ready after 1s500ms" in e["message"]]
    assert lost, [e["message"] for e in events]  # replaced at least once before the abort
    history = cluster.client.request("GET", "/apps/sample-agent/history")
    assert history[-1]["outcome"] == "aborted" and history[-1]["reason"] == "deployment timeout"

    def release_gone() -> bool:
        for proc in psutil.process_iter(["environ"]):
            env = proc.info["environ"] or {}
            if env.get("ROLLWISE_REVISION") == "2" and env.get("ROLLWISE_REPLICA_OF") == str(
                cluster.state_dir.resolve()
            ):
                return False
        return True

    wait_for(release_gone, timeout=20, every=0.2)
