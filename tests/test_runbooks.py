"""Runbooks: the spec maps event kinds to steps and a link; a real controller shows them
when the event happened and sends them with the event to webhooks."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from rollwise import runbook_of

from .conftest import Cluster, Receiver, write_spec
from .helpers import assert_spec_refused, wait_for

BOOKS: dict[str, dict[str, Any]] = {
    "RolloutAborted": {
        "steps": ["read the evidence: rollwise get APP", "the canary's logs: rollwise logs APP"],
        "link": "https://wiki.example.com/runbooks/aborted",
    },
    "AlertFiring": {"steps": ["rollwise slo APP"]},
}


def test_bad_runbooks_are_refused_with_where_and_what() -> None:
    cases = {
        "    RollotAborted: {steps: [x]}\n": "'RollotAborted' is not an event kind",
        "    RolloutAborted: {steps: []}\n": "spec.runbooks.RolloutAborted.steps",
        "    RolloutAborted: {steps: [x], link: wiki}\n": "'wiki' is not an http(s) URL",
    }
    assert_spec_refused("  runbooks:\n", cases)


@pytest.mark.replicas(1)
def test_runbooks_are_shown_when_their_event_happened_and_sent_with_it(
    cluster: Cluster, receiver: Receiver
) -> None:
    write_spec(cluster.spec_file, cluster.port, cluster.replicas)
    spec = yaml.safe_load(cluster.spec_file.read_text())
    spec["spec"]["runbooks"] = BOOKS
    spec["spec"]["strategy"] = {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}
    spec["spec"]["webhooks"] = [
        {"url": f"{receiver.url}/all", "events": ["RolloutAborted"]},
        {"url": f"{receiver.url}/slack", "format": "slack", "events": ["RolloutAborted"]},
    ]
    cluster.spec_file.write_text(yaml.safe_dump(spec))
    cluster.apply()
    assert runbook_of(cluster.spec_file) == {
        "RolloutAborted": [*BOOKS["RolloutAborted"]["steps"], BOOKS["RolloutAborted"]["link"]],
        "AlertFiring": ["rollwise slo APP"],
    }
    before = json.loads(cluster.cli("runbook", "sample-agent", "-o", "json").stdout)
    assert [b["kind"] for b in before] == ["AlertFiring", "RolloutAborted"]
    assert all(b["last_seen"] is None for b in before)
    assert "has not happened" in cluster.cli("runbook", "sample-agent", "RolloutAborted").stdout
    assert cluster.get()["runbooks"] == []

    cluster.deploy("1.1.0")
    wait_for(lambda: cluster.get()["pause_reason"] or None, timeout=30)
    cluster.cli("abort", "sample-agent")
    view = wait_for(lambda: (v := cluster.get())["runbooks"] and v, timeout=15)
    (shown,) = view["runbooks"]
    assert shown["kind"] == "RolloutAborted" and shown["revision"] == 2
    assert shown["steps"] == BOOKS["RolloutAborted"]["steps"]
    printed = cluster.cli("get", "sample-agent", check=False).stdout
    assert "Runbook for RolloutAborted: last at" in printed
    assert "1. read the evidence: rollwise get APP" in printed
    assert "https://wiki.example.com/runbooks/aborted" in printed
    one = cluster.cli("runbook", "sample-agent", "RolloutAborted").stdout
    assert "last at" in one and "2. the canary's logs" in one

    sent = wait_for(lambda: receiver.bodies("/all"), timeout=15)
    assert sent[0]["runbook"] == BOOKS["RolloutAborted"]
    slack = wait_for(lambda: receiver.bodies("/slack"), timeout=15)
    assert slack[0]["text"].endswith(
        "\nRunbook: read the evidence: rollwise get APP; the canary's logs: rollwise logs APP"
        " (https://wiki.example.com/runbooks/aborted)"
    )
    refused = cluster.cli("runbook", "sample-agent", "ScaledUp", check=False)
    assert refused.returncode == 2
    assert "has no runbook for ScaledUp; it has AlertFiring, RolloutAborted" in refused.stderr
