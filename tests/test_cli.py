"""The CLI's read commands, logs, the controller's Prometheus endpoint and the load guard."""

from __future__ import annotations

import json

import httpx

from rollwise.store import Store

from .conftest import Cluster
from .helpers import rollwise


def test_read_commands_and_metrics(cluster: Cluster) -> None:
    apps = json.loads(cluster.cli("list", "-o", "json").stdout)
    assert [a["name"] for a in apps] == ["sample-agent"]
    view = json.loads(cluster.cli("get", "sample-agent", "-o", "json").stdout)
    assert view["phase"] == "Healthy"
    assert view["actual_weights"] == {"1": 100}
    history = json.loads(cluster.cli("history", "sample-agent", "-o", "json").stdout)
    assert history[0]["version"] == "1.0.0"
    table = cluster.cli("list").stdout
    assert "sample-agent" in table
    assert "Healthy" in table

    httpx.post(cluster.url + "/", json={}, headers={"A2A-Version": "1.0"})
    logs = cluster.cli("logs", "sample-agent", "--revision", "1").stdout
    assert "[r1-0] sample agent 1.0.0 listening" in logs

    store = Store(cluster.state_dir / "state.db")
    port = store.get_kv("metrics_port")
    store.close()
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert 'rollwise_events_total{app="sample-agent",kind="RolloutCompleted"} 1.0' in metrics

    missing = cluster.cli("get", "nope", check=False)
    assert missing.returncode == 1
    assert "no app named 'nope'" in missing.stderr


def test_commands_without_a_controller(tmp_path: object) -> None:
    result = rollwise("list", "--state-dir", str(tmp_path), check=False)
    assert result.returncode == 1
    assert "no controller answers" in result.stderr
    assert "Traceback" not in result.stderr


def test_load_refuses_remote_targets_and_bad_input() -> None:
    remote = rollwise("load", "http://192.0.2.1/", "--duration", "1s", check=False)
    assert remote.returncode == 2
    assert "--allow-remote" in remote.stderr
    bad = rollwise("load", "http://127.0.0.1:1/", "--duration", "soon", check=False)
    assert bad.returncode == 2
    assert "--duration" in bad.stderr
    usage = rollwise("deploy", check=False)
    assert usage.returncode == 2
