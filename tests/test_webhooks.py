"""Webhooks: a real HTTP receiver on loopback gets the events, retried, and never in the way."""

from __future__ import annotations

import time

import yaml

from .conftest import Cluster, Receiver, write_spec
from .helpers import wait_for


def test_events_reach_webhooks_with_retries_without_blocking(
    cluster: Cluster, receiver: Receiver
) -> None:
    write_spec(cluster.spec_file, cluster.port, cluster.replicas)
    spec = yaml.safe_load(cluster.spec_file.read_text())
    url = receiver.url
    spec["spec"]["webhooks"] = [
        {"url": f"{url}/all"},
        {"url": f"{url}/slack", "format": "slack", "events": ["RolloutCompleted"]},
        {"url": f"{url}/flaky", "events": ["RolloutCompleted"], "retries": 3},
        {"url": f"{url}/slow", "timeout": "500ms", "retries": 0},
        # a Slack-style URL whose path is the credential, and whose receiver is gone
        {"url": f"{url}/gone/T0123/B0456/Xs3cr3tPath", "events": ["RolloutCompleted"]},
    ]
    cluster.spec_file.write_text(yaml.safe_dump(spec))
    cluster.apply()
    started = time.monotonic()
    cluster.deploy("1.1.0")
    cluster.wait_stable(2)
    assert time.monotonic() - started < 20, "a hanging hook must not slow the rollout"

    def all_kinds() -> list[str] | None:
        kinds = [b["kind"] for b in receiver.bodies("/all")]
        return kinds if "RolloutCompleted" in kinds else None

    kinds = wait_for(all_kinds, timeout=15)
    assert {"SpecApplied", "RolloutStarted", "StepCompleted"} <= set(kinds)
    completed = next(b for b in receiver.bodies("/all") if b["kind"] == "RolloutCompleted")
    assert completed["app"] == "sample-agent" and completed["revision"] == 2
    assert set(completed) == {"id", "ts", "app", "kind", "revision", "message", "data"}
    slack = wait_for(lambda: receiver.bodies("/slack"), timeout=15)
    assert slack == [
        {"text": f"[sample-agent revision 2] RolloutCompleted: {completed['message']}"}
    ]
    wait_for(lambda: receiver.flaky_calls >= 3, timeout=20)  # 500, 500, then delivered
    assert len(receiver.bodies("/flaky")) == 3

    # A failing hook is logged by its origin only: the path is the credential.
    log = cluster.state_dir / "logs" / "controller.log"
    failed = wait_for(
        lambda: [
            line
            for line in log.read_text().splitlines()
            if "webhook delivery failed" in line and "410 Gone" in line
        ],
        timeout=15,
    )
    assert f"{url}/…" in failed[0] and "Xs3cr3tPath" not in log.read_text()
