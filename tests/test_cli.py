"""The CLI's read commands, logs, the controller's Prometheus endpoint and the load guard."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from rollwise.errors import UsageError
from rollwise.store import Store

from .conftest import Cluster, write_spec
from .helpers import rollwise, wait_for


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


def test_a_taken_listen_port_is_shown_on_its_app_only(cluster: Cluster) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        spec_file = write_spec(cluster.spec_file.with_name("other.yaml"), taken, replicas=1)
        spec = yaml.safe_load(spec_file.read_text())
        spec["metadata"]["name"] = "other"
        spec_file.write_text(yaml.safe_dump(spec))
        cluster.cli("apply", "-f", str(spec_file), "--version", "2.0.0")

        def shown() -> dict[str, str] | None:
            got = cluster.cli("get", "other", "-o", "json", check=False)
            view = json.loads(got.stdout)
            return view if view["error"] and view["phase"] != "Progressing" else None

        view = wait_for(shown, timeout=30)
        assert f"cannot listen on 127.0.0.1:{taken} for app other" in view["error"]
        assert "free the port or change spec.listen" in view["error"]
        assert view["phase"] == "Degraded" and view["message"] == view["error"]
        assert cluster.cli("status", "other", check=False).returncode == 1
        text = cluster.cli("get", "other", check=False).stdout
        assert "Error:" in text
        assert json.loads(cluster.cli("get", "sample-agent", "-o", "json").stdout)["error"] == ""
        cluster.cli("deploy", "sample-agent", "--version", "1.0.1")
        cluster.wait_stable(2)
    wait_for(lambda: httpx.get(f"http://127.0.0.1:{taken}/healthz").status_code == 200, 30)


def test_events_shows_a_rollout_and_follows_the_next(cluster: Cluster) -> None:
    text = cluster.cli("events", "sample-agent").stdout.splitlines()
    assert any("RolloutCompleted" in line and "rev 1" in line for line in text), text
    newest = json.loads(cluster.cli("events", "sample-agent", "--tail", "2", "-o", "json").stdout)
    assert len(newest) == 2 and newest[-1]["kind"] == "RolloutCompleted"

    # --follow prints, as JSON Lines, every event of the next rollout, none twice
    argv = [sys.executable, "-m", "rollwise", "events", "sample-agent", "-f", "-o", "json"]
    argv += ["--tail", "1", "--state-dir", str(cluster.state_dir)]
    follower = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    seen: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: seen.extend(map(json.loads, follower.stdout or [])))
    reader.start()
    try:
        wait_for(lambda: seen, timeout=15)  # the newest, printed first
        cluster.deploy("1.1.0")
        wait_for(
            lambda: any(e["kind"] == "RolloutCompleted" and e["revision"] == 2 for e in seen),
            timeout=30,
        )
    finally:
        follower.terminate()
        follower.wait(10)
        reader.join(10)
        assert follower.stdout is not None
        follower.stdout.close()
    ids = [e["id"] for e in seen]
    assert ids == sorted(set(ids)) and ids[0] == newest[-1]["id"]
    stored = cluster.client.request("GET", "/apps/sample-agent/events", params={"after": ids[0]})
    assert [e["id"] for e in stored][: len(ids) - 1] == ids[1:], "followed events skipped"

    missing = cluster.cli("events", "nope", check=False)
    assert missing.returncode == 1 and "no app named 'nope'" in missing.stderr
    with pytest.raises(UsageError, match="limit"):
        cluster.client.request("GET", "/apps/sample-agent/events", params={"limit": 0})


def test_an_option_given_alone_takes_its_default_value() -> None:
    from rollwise.cli.lifecycle import DASHBOARD_DEFAULT, optional_values

    assert optional_values(["up", "--dashboard"]) == ["up", "--dashboard", DASHBOARD_DEFAULT]
    assert optional_values(["up", "--dashboard", "-d"]) == [
        "up",
        "--dashboard",
        DASHBOARD_DEFAULT,
        "-d",
    ]
    given = ["up", "--dashboard", "127.0.0.1:9999", "--detach"]
    assert optional_values(given) == given


def test_a_reset_while_a_controller_starts_is_not_running(tmp_path: Path) -> None:
    """A connection reset on the admin socket (a controller replacing its socket under a
    waiting connection) answers "not running", so ``up`` keeps waiting instead of failing."""
    import struct

    from rollwise.client import AdminClient

    path = tmp_path / "admin.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def reset() -> None:
        conn, _ = server.accept()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.recv(1)  # the request has begun
        conn.close()

    thread = threading.Thread(target=reset, daemon=True)
    thread.start()
    with AdminClient(tmp_path, timeout=5) as client:
        assert client.running() is False
    thread.join(5)
    server.close()
