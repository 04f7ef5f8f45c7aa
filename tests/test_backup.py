"""Backup while a rollout runs, restore on a fresh state directory, scheduled backups with
retention, and ``rollwise doctor`` on a healthy and on a conflicting directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollwise.store import Store

from .conftest import Cluster
from .helpers import rollwise, wait_for
from .test_strategies import wait_phase

pytestmark = pytest.mark.replicas(1)


def contents(db: Path) -> dict[str, Any]:
    """Everything a person relies on: apps and specs, revisions with their history, status,
    events (ids, times, data) and analysis runs."""
    store = Store(db)
    try:
        apps = store.app_names()
        return {
            "apps": {a: store.get_app(a) for a in apps},
            "revisions": {a: [r.__dict__ for r in store.revisions(a)] for a in apps},
            "status": {a: store.get_status(a) for a in apps},
            "events": {a: [e.__dict__ for e in store.events(a, limit=10_000)] for a in apps},
            "analyses": {a: [r.as_json() for r in store.analyses(a)] for a in apps},
        }
    finally:
        store.close()


def test_backup_during_a_rollout_restores_exactly_elsewhere(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.use_steps({"steps": [{"setWeight": 50}, {"pause": {}}]})
    cluster.deploy("1.1.0", "template.env.API_TOKEN=hunter2")
    wait_phase(cluster, "Paused")
    db = cluster.state_dir / "state.db"
    before = contents(db)
    file = tmp_path / "backup.db"
    done = cluster.cli("backup", "--to", str(file), "-o", "json")
    assert contents(db) == before  # nothing moved meanwhile: the backup holds exactly this
    info = json.loads(done.stdout)
    assert (info["apps"], info["revisions"]) == (1, 2) and info["events"] > 5
    assert file.stat().st_mode & 0o777 == 0o600

    refused = rollwise("restore", str(file), state_dir=cluster.state_dir, check=False)
    assert refused.returncode == 1 and "stop it with `rollwise down` first" in refused.stderr

    fresh = tmp_path / "fresh"
    rollwise("restore", str(file), state_dir=fresh)
    assert contents(fresh / "state.db") == before
    again = rollwise("restore", str(file), state_dir=fresh, check=False)
    assert (
        again.returncode == 1
        and "rollouts in progress: sample-agent (Paused, revision 2)" in again.stderr
    )
    rollwise("restore", str(file), "--force", state_dir=fresh)
    assert contents(fresh / "state.db") == before

    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\x13" * 5000)
    bad = rollwise("restore", str(damaged), "--force", state_dir=fresh, check=False)
    assert bad.returncode == 2 and "use another backup" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert contents(fresh / "state.db") == before  # a bad file changed nothing

    # the restored directory's app listens where the running cluster's proxy does
    doctor = rollwise("doctor", "-o", "json", state_dir=fresh, check=False)
    assert doctor.returncode == 1
    (ports,) = [f for f in json.loads(doctor.stdout) if f["check"] == "ports"]
    assert ports["state"] == "fail" and f"127.0.0.1:{cluster.port}" in ports["detail"]
    assert "another spec.listen" in ports["fix"]
    healthy = json.loads(cluster.cli("doctor", "-o", "json").stdout)
    assert {f["check"]: f["state"] for f in healthy} == {
        "store": "ok",
        "controller": "ok",
        "replicas": "ok",
        "ports": "ok",
    }


def test_scheduled_backups_keep_the_newest(cluster: Cluster) -> None:
    spec = yaml.safe_load(cluster.spec_file.read_text())
    spec["spec"]["backup"] = {"schedule": "1s", "keep": 2}
    cluster.spec_file.write_text(yaml.safe_dump(spec))
    cluster.apply()
    backups = cluster.state_dir / "backups"

    def taken() -> list[dict[str, Any]]:
        events = cluster.client.request("GET", "/apps/-/events")
        return [e for e in events if e["kind"] == "BackupTaken"]

    wait_for(lambda: len(taken()) >= 4, timeout=20)
    assert len(list(backups.glob("state-*.db"))) == 2
    assert "older removed (keep 2)" in taken()[-1]["message"]
    newest = max(backups.glob("state-*.db"))
    assert (
        rollwise("restore", str(newest), state_dir=cluster.state_dir.parent / "copy").returncode
        == 0
    )
