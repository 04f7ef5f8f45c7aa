"""Secret values never leave the controller: a release that prints its token as it crashes
has the value masked in the events, the webhooks, the admin API (``rollwise get``, history)
and the controller's log, while the replica's own log (the app's output) keeps it."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from ..conftest import Cluster, Receiver
from ..helpers import wait_for

pytestmark = pytest.mark.replicas(1)

TOKEN = "tok-8f1d2c0a-live"
DSN = "postgres://app:pa55word@db/app"
OVERRIDE = "hunter2-overridden"
# An app that logs its settings at start, then fails: its last line is the secret.
PRINT_AND_FAIL = (
    "import os, sys; "
    "print('connecting to', os.environ['DSN'], 'with', os.environ['API_TOKEN'], flush=True); "
    "sys.exit(4)"
)


def test_secret_values_are_masked_everywhere_rollwise_shows_them(
    cluster: Cluster, receiver: Receiver
) -> None:
    spec = yaml.safe_load(cluster.spec_file.read_text())
    spec["spec"]["webhooks"] = [{"url": receiver.url + "/hook"}]
    template = spec["spec"]["template"]
    template["env"].update({"API_TOKEN": TOKEN, "DSN": DSN})
    template["secretEnv"] = ["DSN"]
    template["command"] = [sys.executable, "-c", PRINT_AND_FAIL]
    cluster.spec_file.write_text(yaml.safe_dump(spec))
    cluster.apply()
    cluster.deploy("2.0.0", f"template.env.SIGNING_KEY={OVERRIDE}")

    def aborted() -> dict[str, object] | None:
        view = cluster.get()
        return view if view["phase"] == "Degraded" else None

    view = wait_for(aborted, timeout=60)
    assert "connecting to *** with ***" in str(view["message"])  # the line was there, masked
    replica_log = "".join(
        p.read_text() for p in (cluster.state_dir / "logs").rglob("*.log") if "2" in p.name
    )
    assert TOKEN in replica_log  # the app's own output is the app's

    wait_for(lambda: any(b["kind"] == "RolloutAborted" for b in receiver.bodies("/hook")))
    shown = {
        "view": cluster.get(),
        "events": cluster.client.request("GET", "/apps/sample-agent/events"),
        "history": cluster.client.request("GET", "/apps/sample-agent/history"),
        "list": cluster.client.request("GET", "/apps"),
        "webhooks": receiver.bodies("/hook"),
        "cli": cluster.cli("get", "sample-agent", check=False).stdout,
        "controller log": (cluster.state_dir / "logs" / "controller.log").read_text(),
    }
    for where, what in shown.items():
        text = what if isinstance(what, str) else json.dumps(what)
        for secret in (TOKEN, DSN, OVERRIDE):
            assert secret not in text, f"{secret!r} shown in {where}"
    assert shown["history"][-1]["env"]["SIGNING_KEY"] == "***"
    assert "***" in json.dumps(shown["webhooks"]) and "***" in shown["controller log"]
