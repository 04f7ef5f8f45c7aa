"""The mission's ``MaintenanceTask`` and ``MaintenanceScheduler``, over the controller's
store: a task's last run is read from and written to the same ``task_runs`` rows the
controller's own maintenance tasks use (``spec.maintenance.tasks``; ``rollwise tasks``), so a
script's runs show beside them and survive it.

    scheduler = MaintenanceScheduler([MaintenanceTask("rotate-keys", interval_hours=24)],
                                     store=Store(".rollwise/state.db"), app="sample-agent")
    scheduler.run_due(datetime.now(UTC), lambda task: rotate(task.name))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from rollwise.spec.maintenance import run_after
from rollwise.store import Store, TaskRun

__all__ = ["MaintenanceScheduler", "MaintenanceTask"]


@dataclass
class MaintenanceTask:
    name: str
    interval_hours: float
    last_run: dt.datetime | None = None

    def next_run(self) -> dt.datetime | None:
        """When it is due next (``None``: never ran, due now)."""
        if self.last_run is None:
            return None
        after = run_after(self.last_run.timestamp(), self.interval_hours * 3600, None, "UTC")
        return dt.datetime.fromtimestamp(after, self.last_run.tzinfo or dt.UTC)

    def due(self, now: dt.datetime) -> bool:
        nxt = self.next_run()
        return nxt is None or _aware(now) >= _aware(nxt)

    def mark_run(self, now: dt.datetime) -> None:
        self.last_run = now


@dataclass
class MaintenanceScheduler:
    tasks: list[MaintenanceTask]
    store: Store | None = None
    app: str = "-"
    runs: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.store is None:
            return
        for task in self.tasks:
            row = self.store.task_run(self.app, task.name)
            if row is None:
                continue
            self.runs[task.name] = row.runs
            if task.last_run is None and row.last_run is not None:
                task.last_run = dt.datetime.fromtimestamp(row.last_run, dt.UTC)

    def run_due(self, now: dt.datetime, executor: Callable[[MaintenanceTask], None]) -> list[str]:
        """Run each due task with ``executor`` and mark it run; the names that ran. A task
        whose executor raises is marked run too (its error recorded), and the others run."""
        ran = []
        for task in self.tasks:
            if not task.due(now):
                continue
            outcome, detail = "ok", ""
            try:
                executor(task)
            except Exception as exc:  # the executor is the caller's code: any failure is its result
                outcome, detail = "failed", f"{type(exc).__name__}: {exc}"
            task.mark_run(now)
            ran.append(task.name)
            self.runs[task.name] = self.runs.get(task.name, 0) + 1
            if self.store is not None:
                nxt = task.next_run()
                self.store.put_task_run(
                    self.app,
                    TaskRun(
                        task.name,
                        _aware(now).timestamp(),
                        nxt.timestamp() if nxt else None,
                        outcome,
                        detail,
                        self.runs[task.name],
                    ),
                )
        return ran


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
