"""Maintenance tasks on a real controller: a command, a smoke run and a backup on their
schedules, a timeout that kills the command, and a kill -9 of the controller that runs
nothing twice."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import FAST_CANARY, Cluster
from .helpers import assert_spec_refused, wait_for
from .test_crash_phases import kill_controller, restart_controller

pytestmark = pytest.mark.replicas(1)


def tasks(cluster: Cluster) -> dict[str, dict[str, Any]]:
    rows = cluster.client.request("GET", "/apps/sample-agent/tasks")
    return {row["name"]: row for row in rows}


def test_bad_tasks_are_refused_with_where_and_what() -> None:
    cases = {
        "    - {name: t, every: 1h}\n": "needs exactly one of command: [argv], smoke: true",
        "    - {name: t, smoke: true, backup: true, every: 1h}\n": "it has smoke, backup",
        "    - {name: t, smoke: true}\n": "needs exactly one of every",
        "    - {name: t, smoke: true, schedule: '61 * * * *'}\n": "is not a cron schedule",
        "    - {name: t, smoke: true, every: 1h, timeZone: Nowhere}\n": "not a time zone name",
        "    - {name: t, smoke: true, every: 1h}\n    - {name: t, backup: true, every: 1h}\n": (
            "task names must be unique"
        ),
    }
    assert_spec_refused("  maintenance:\n    tasks:\n", cases)


@pytest.mark.slow
def test_tasks_run_on_schedule_report_timeouts_and_survive_a_restart_without_rerunning(
    cluster: Cluster, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.txt"
    append = f"open({str(marks)!r}, 'a').write('ran\\n')"
    maintenance = {
        "tasks": [
            {"name": "marker", "command": [sys.executable, "-c", append], "every": "1h"},
            {"name": "tick", "command": ["true"], "every": "300ms"},
            {"name": "slow", "command": ["sleep", "30"], "every": "1h", "timeout": "300ms"},
            {"name": "smoke", "smoke": True, "every": "1h"},
            {"name": "backup", "backup": True, "every": "1h"},
        ]
    }
    cluster.use_steps(FAST_CANARY, extra={"maintenance": maintenance})

    def all_ran() -> dict[str, dict[str, Any]] | None:
        now = tasks(cluster)
        finished = [r for name, r in now.items() if name != "tick"]
        return now if all(r["outcome"] and not r["running"] for r in finished) else None

    done = wait_for(all_ran, timeout=30)
    assert marks.read_text() == "ran\n"
    assert done["marker"]["outcome"] == "ok" and done["marker"]["runs"] == 1
    assert done["smoke"]["outcome"] == "ok" and "passed" in done["smoke"]["detail"]
    assert done["backup"]["outcome"] == "ok" and list((cluster.state_dir / "backups").glob("*.db"))
    assert done["slow"]["outcome"] == "timeout" and "timed out after 0.3s" in done["slow"]["detail"]
    assert done["marker"]["nextRun"] - done["marker"]["lastRun"] == pytest.approx(3600)
    shown = cluster.cli("tasks", "sample-agent", check=False)
    assert shown.returncode == 1 and "slow: timed out after 0.3s" in shown.stdout, shown.stdout
    metrics_port = cluster.client.request("GET", "/version")["metrics_port"]
    scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
    assert (
        'rollwise_maintenance_runs_total{app="sample-agent",outcome="timeout",task="slow"} 1.0'
        in (scraped)
    )

    ticks = tasks(cluster)["tick"]["runs"]
    kill_controller(cluster)
    restart_controller(cluster)
    # the restarted controller's loop has run (tick ran again): marker is not due, not run
    wait_for(lambda: tasks(cluster)["tick"]["runs"] > ticks + 1, timeout=30)
    after = tasks(cluster)
    assert marks.read_text() == "ran\n"
    assert after["marker"]["runs"] == 1 and after["backup"]["runs"] == 1
    rows = cluster.client.request("GET", "/apps/sample-agent/events", params={"limit": 500})
    failed = [e for e in rows if e["kind"] == "TaskFailed"]
    assert any(e["data"].get("task") == "slow" for e in failed), json.dumps(failed)[:500]
