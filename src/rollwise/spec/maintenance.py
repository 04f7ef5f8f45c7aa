"""``maintenance.tasks:``: work the controller runs for an app on a schedule.

    maintenance:
      tasks:
        - name: rotate-keys
          command: ["./rotate-keys.sh", "--app", "sample-agent"]   # in the spec's directory
          schedule: "30 3 * * *"          # cron (five fields, croniter), in timeZone
          timeZone: Europe/Paris
          timeout: 5m
          startingDeadline: 1h            # missed by more (controller down): skipped
        - name: hourly-smoke
          smoke: true                     # the app's smoke tests on its live listener
          every: 1h
        - name: store-backup
          backup: true                    # a backup of the controller's store
          every: 6h

Kubernetes CronJob's words where they fit: ``schedule``, ``timeZone``,
``startingDeadlineSeconds`` (here ``startingDeadline``, a duration), and runs of one task
never overlap (``concurrencyPolicy: Forbid``). A task that never ran and has ``every`` runs
at once; one with ``schedule`` at its next time. A run is recorded as started before it
starts, so a controller restart never runs it twice (a run cut short by the restart is
reported as interrupted); a run missed while the controller was down runs once when it
comes back, unless it is later than ``startingDeadline``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo

from croniter import croniter
from pydantic import AfterValidator, Field, model_validator

from rollwise.spec.base import Model, name_label
from rollwise.spec.duration import Duration
from rollwise.spec.windows import cron_schedule as _cron
from rollwise.spec.windows import time_zone as _zone

__all__ = ["Maintenance", "MaintenanceTaskSpec", "TaskKind", "run_after"]

TaskKind = Literal["command", "smoke", "backup"]


def run_after(moment: float, every: float | None, schedule: str | None, zone: str) -> float:
    """The run after one at ``moment`` (unix seconds): ``every`` seconds later, or the
    cron ``schedule``'s next time in ``zone``."""
    if every is not None:
        return moment + every
    assert schedule is not None
    at = dt.datetime.fromtimestamp(moment, ZoneInfo(zone))
    nxt: dt.datetime = croniter(schedule, at).get_next(dt.datetime)
    return nxt.timestamp()


class MaintenanceTaskSpec(Model):
    name: Annotated[str, AfterValidator(name_label("task name", "rotate-keys"))]
    command: Annotated[list[str], Field(min_length=1)] | None = None
    smoke: bool = False
    backup: bool = False
    every: Duration | None = None
    schedule: Annotated[str, AfterValidator(_cron)] | None = None
    time_zone: Annotated[str, AfterValidator(_zone)] = "UTC"
    timeout: Duration = 600.0
    starting_deadline: Duration | None = None

    @model_validator(mode="after")
    def _one_of_each(self) -> Self:
        kinds = [
            k
            for k, on in (("command", self.command), ("smoke", self.smoke), ("backup", self.backup))
            if on
        ]
        if len(kinds) != 1:
            raise ValueError(
                f"task {self.name} needs exactly one of command: [argv], smoke: true or "
                f"backup: true{'; it has ' + ', '.join(kinds) if kinds else ''}"
            )
        if (self.every is None) == (self.schedule is None):
            raise ValueError(
                f"task {self.name} needs exactly one of every (e.g. 6h) or schedule "
                "(cron, e.g. '30 3 * * *')"
            )
        if self.every is not None and self.every < 0.1:
            raise ValueError(f"task {self.name}: every must be at least 100ms")
        if self.timeout <= 0:
            raise ValueError(f"task {self.name}: timeout must be above 0")
        return self

    @property
    def kind(self) -> TaskKind:
        return "command" if self.command else "smoke" if self.smoke else "backup"

    @property
    def plan(self) -> str:
        """``every 6h`` or ``30 3 * * * Europe/Paris``."""
        if self.every is not None:
            return f"every {self.every:g}s"
        return f"{self.schedule} {self.time_zone}"

    def first_run(self, now: float) -> float:
        """When a task that never ran is due: at once (``every``) or at the next time."""
        return now if self.every is not None else self.next_after(now)

    def next_after(self, moment: float) -> float:
        """The run after one at ``moment`` (unix seconds)."""
        return run_after(moment, self.every, self.schedule, self.time_zone)


class Maintenance(Model):
    tasks: list[MaintenanceTaskSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_unique(self) -> Self:
        names = [t.name for t in self.tasks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"task names must be unique; repeated: {', '.join(twice)}")
        return self
