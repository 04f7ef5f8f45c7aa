"""Maintenance tasks on a hand-set clock: due times, a catch-up after downtime that runs once,
a run later than its startingDeadline skipped, a run cut short by a restart not run again;
and the mission's MaintenanceScheduler over the same store rows."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rollwise import MaintenanceScheduler, MaintenanceTask
from rollwise.controller.maintenance import Scheduled
from rollwise.store import TaskRun

from .harness import APP, Harness

pytestmark = pytest.mark.anyio

TASKS = {
    "tasks": [
        {"name": "hourly", "command": ["true"], "every": "1h"},
        {
            "name": "nightly",
            "command": ["true"],
            "schedule": "0 3 * * *",
            "timeZone": "Europe/Paris",
            "startingDeadline": "1m",
        },
    ]
}


def scheduled(harness: Harness, tmp_path: Path) -> Scheduled:
    return Scheduled(
        harness.store, tmp_path, harness.events, lambda: {APP: harness.worker}, harness.clock
    )


async def settled(runner: Scheduled) -> None:
    while runner._running:
        await asyncio.gather(*runner._running.values())


def row(harness: Harness, task: str) -> TaskRun:
    found = harness.store.task_run(APP, task)
    assert found is not None
    return found


def kinds(harness: Harness) -> list[str]:
    return [e.kind for e in harness.store.events(APP, limit=100)]


async def test_tasks_run_when_due_catch_up_once_and_skip_what_is_too_late(
    harness: Harness, tmp_path: Path
) -> None:
    harness.apply(maintenance=TASKS)
    runner = scheduled(harness, tmp_path)
    t0 = harness.clock.now
    runner.tick()
    await settled(runner)
    hourly, nightly = row(harness, "hourly"), row(harness, "nightly")
    assert (hourly.runs, hourly.outcome, hourly.next_run) == (1, "ok", t0 + 3600)
    at = dt.datetime.fromtimestamp(nightly.next_run or 0, ZoneInfo("Europe/Paris"))
    assert (nightly.runs, at.hour, at.minute) == (0, 3, 0)

    runner.tick()  # nothing is due: nothing runs again
    await settled(runner)
    assert row(harness, "hourly").runs == 1

    # the controller was down for 30 hours: the hourly task catches up once, the nightly
    # run is later than its startingDeadline and is skipped
    harness.clock.now = t0 + 30 * 3600
    runner.tick()
    await settled(runner)
    assert row(harness, "hourly").runs == 2
    nightly = row(harness, "nightly")
    assert (nightly.runs, nightly.outcome) == (0, "missed")
    assert "later than startingDeadline 60s" in nightly.detail
    assert (nightly.next_run or 0) > harness.clock.now
    assert "TaskMissed" in kinds(harness) and kinds(harness).count("TaskSucceeded") == 2


async def test_a_run_cut_short_by_a_restart_is_reported_and_not_run_again(
    harness: Harness, tmp_path: Path
) -> None:
    harness.apply(maintenance=TASKS)
    now = harness.clock.now
    harness.store.put_task_run(APP, TaskRun("hourly", now, now + 3600, "running", "", 4))
    runner = scheduled(harness, tmp_path)
    runner._interrupted()
    runner.tick()
    await settled(runner)
    hourly = row(harness, "hourly")
    assert (hourly.outcome, hourly.runs) == ("interrupted", 4)
    assert "TaskFailed" in kinds(harness)


async def test_the_missions_scheduler_shares_the_store_rows(
    harness: Harness, tmp_path: Path
) -> None:
    ran: list[str] = []
    now = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)

    def work(task: MaintenanceTask) -> None:
        ran.append(task.name)
        if task.name == "broken":
            raise RuntimeError("disk full")

    tasks = [MaintenanceTask("rotate-keys", interval_hours=24), MaintenanceTask("broken", 1)]
    scheduler = MaintenanceScheduler(tasks, store=harness.store, app=APP)
    assert scheduler.run_due(now, work) == ["rotate-keys", "broken"]
    assert scheduler.run_due(now + dt.timedelta(hours=2), work) == ["broken"]
    assert row(harness, "broken").outcome == "failed"
    assert row(harness, "broken").detail == "RuntimeError: disk full"

    # a new scheduler (another run of the script) reads the last runs back
    again = MaintenanceScheduler(
        [MaintenanceTask("rotate-keys", interval_hours=24)], store=harness.store, app=APP
    )
    assert again.run_due(now + dt.timedelta(hours=3), work) == []
    assert again.run_due(now + dt.timedelta(hours=24), work) == ["rotate-keys"]
    assert row(harness, "rotate-keys").runs == 2
    assert ran == ["rotate-keys", "broken", "broken", "rotate-keys"]
