"""The controller's scheduled work: backups of the store (``spec.backup``) and each app's
maintenance tasks (``spec.maintenance.tasks``).

A task's last and next run live in the store (``task_runs``). A run is written as started,
with its next time, before it starts: a controller killed mid-run does not run it again when
it comes back (the run is reported as interrupted), and one that was down when a run was due
runs it once, unless it is later than the task's ``startingDeadline``. Runs of one task never
overlap. Results are events (``TaskSucceeded``, ``TaskFailed``, ``TaskMissed``) and
Prometheus series (``rollwise_maintenance_*``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from rollwise.errors import RollwiseError
from rollwise.spec.maintenance import MaintenanceTaskSpec
from rollwise.store import Store, TaskRun
from rollwise.store.backup import backup_name, prune_backups, take_backup
from rollwise.words import EventKind

if TYPE_CHECKING:
    from rollwise.controller.events import Events
    from rollwise.controller.worker import AppWorker

__all__ = ["Scheduled"]

MAX_SLEEP_S = 30.0
OUTPUT_LINES = 5
DEFAULT_KEEP = 24


class Scheduled:
    def __init__(
        self,
        store: Store,
        state_dir: Path,
        events: Events,
        workers: Callable[[], dict[str, AppWorker]],
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.store = store
        self.state_dir = state_dir
        self.events = events
        self.workers = workers
        self.clock = clock
        self.wake = asyncio.Event()
        self._running: dict[tuple[str, str], asyncio.Task[None]] = {}
        registry = registry or CollectorRegistry()
        self.runs = Counter(
            "rollwise_maintenance_runs",
            "Maintenance task runs by outcome (ok, failed, timeout, missed, interrupted)",
            ["app", "task", "outcome"],
            registry=registry,
        )
        self.last_run = Gauge(
            "rollwise_maintenance_last_run_timestamp_seconds",
            "When a maintenance task last started",
            ["app", "task"],
            registry=registry,
        )
        self.next_run = Gauge(
            "rollwise_maintenance_next_run_timestamp_seconds",
            "When a maintenance task runs next",
            ["app", "task"],
            registry=registry,
        )
        self.duration = Gauge(
            "rollwise_maintenance_last_duration_seconds",
            "How long a maintenance task's last run took",
            ["app", "task"],
            registry=registry,
        )

    # maintenance tasks

    async def tasks(self) -> None:
        """Run each app's due tasks; sleep until the next one is due (or an apply wakes it)."""
        self._interrupted()
        while True:
            self.wake.clear()
            due = self.tick()
            delay = min(MAX_SLEEP_S, max(0.0, due - self.clock()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self.wake.wait()

    def tick(self) -> float:
        """Start what is due now; when the next task is due."""
        now = self.clock()
        soonest = now + MAX_SLEEP_S
        for app, worker in list(self.workers().items()):
            for task in worker.state.spec.spec.maintenance.tasks:
                soonest = min(soonest, self._consider(app, worker, task, now))
        return soonest

    def view(self, app: str, tasks: list[MaintenanceTaskSpec]) -> list[dict[str, Any]]:
        """Each task of ``app`` with its plan and its last and next run."""
        rows = {r.task: r for r in self.store.task_runs(app)}
        shown = []
        for task in tasks:
            row = rows.get(task.name)
            shown.append(
                {
                    "name": task.name,
                    "kind": task.kind,
                    "plan": task.plan,
                    "running": (app, task.name) in self._running,
                    **(row.as_json() if row else {"lastRun": None, "nextRun": None, "runs": 0}),
                }
            )
        return shown

    def _consider(
        self, app: str, worker: AppWorker, task: MaintenanceTaskSpec, now: float
    ) -> float:
        row = self.store.task_run(app, task.name)
        if row is None:
            row = TaskRun(task.name, None, task.first_run(now), "", "", 0)
            self.store.put_task_run(app, row)
        planned = task.first_run(now) if row.last_run is None else task.next_after(row.last_run)
        next_run = min(row.next_run if row.next_run is not None else planned, planned)
        self.next_run.labels(app, task.name).set(next_run)
        if next_run > now or (app, task.name) in self._running:
            return next_run if next_run > now else now + MAX_SLEEP_S
        late = now - next_run
        following = task.next_after(now)
        if task.starting_deadline is not None and late > task.starting_deadline:
            detail = (
                f"the run due {late:.0f}s ago was missed (later than startingDeadline "
                f"{task.starting_deadline:g}s); next at {_when(following)}"
            )
            missed = replace(row, next_run=following, outcome="missed", detail=detail)
            self.store.put_task_run(app, missed)
            self.runs.labels(app, task.name, "missed").inc()
            self.events.emit(app, EventKind.TASK_MISSED, f"task {task.name}: {detail}")
            return following
        started = replace(
            row, last_run=now, next_run=following, outcome="running", detail="", runs=row.runs + 1
        )
        self.store.put_task_run(app, started)  # before it runs: a restart does not run it again
        self.last_run.labels(app, task.name).set(now)
        self.next_run.labels(app, task.name).set(following)
        run = asyncio.create_task(self._run(app, worker, task, started), name=f"task {task.name}")
        self._running[(app, task.name)] = run
        run.add_done_callback(lambda _: self._running.pop((app, task.name), None))
        return following

    async def _run(
        self, app: str, worker: AppWorker, task: MaintenanceTaskSpec, started: TaskRun
    ) -> None:
        begun = time.monotonic()
        try:
            async with asyncio.timeout(task.timeout):
                ok, detail = await self._execute(app, worker, task)
            outcome = "ok" if ok else "failed"
        except TimeoutError:
            outcome, detail = "timeout", f"timed out after {task.timeout:g}s"
        except RollwiseError as exc:
            outcome, detail = "failed", str(exc)
        took = time.monotonic() - begun
        self.store.put_task_run(app, replace(started, outcome=outcome, detail=detail))
        self.runs.labels(app, task.name, outcome).inc()
        self.duration.labels(app, task.name).set(took)
        kind = EventKind.TASK_SUCCEEDED if outcome == "ok" else EventKind.TASK_FAILED
        message = f"task {task.name} ({task.kind}) {outcome} in {took:.2f}s"
        data = {"task": task.name, "task_kind": task.kind, "outcome": outcome, "detail": detail}
        self.events.emit(app, kind, f"{message}: {detail}" if detail else message, None, data)

    async def _execute(
        self, app: str, worker: AppWorker, task: MaintenanceTaskSpec
    ) -> tuple[bool, str]:
        if task.command is not None:
            return await _command(task.command, Path(worker.state.base_dir), app, self.state_dir)
        if task.smoke:
            suite = await worker.smoke()
            return suite.success, suite.summary()
        spec = worker.state.spec.spec
        keep = spec.backup.keep if spec.backup is not None else DEFAULT_KEEP
        info = await self._backup(keep)
        return True, f"backup {info.path.name}: {info.summary()}"

    def _interrupted(self) -> None:
        """Runs that were going on when the last controller stopped: said, not run again."""
        for app in self.store.app_names():
            for row in self.store.task_runs(app):
                if row.outcome != "running":
                    continue
                detail = "interrupted: the controller stopped during the run; not run again"
                self.store.put_task_run(app, replace(row, outcome="interrupted", detail=detail))
                self.runs.labels(app, row.task, "interrupted").inc()
                self.events.emit(app, EventKind.TASK_FAILED, f"task {row.task}: {detail}")

    # store backups

    async def backups(self) -> None:
        """Back the store up as the apps' ``spec.backup`` asks (shortest schedule, largest
        ``keep``), into ``<state>/backups/``."""
        last = 0.0
        while True:
            await asyncio.sleep(1.0)
            wanted = [
                worker.state.spec.spec.backup
                for worker in list(self.workers().values())
                if worker.state.spec.spec.backup is not None
            ]
            if not wanted:
                continue
            now = self.clock()
            if now - last < min(w.schedule for w in wanted):
                continue
            last = now
            with contextlib.suppress(RollwiseError):
                await self._backup(max(w.keep for w in wanted))

    async def _backup(self, keep: int) -> Any:
        directory = self.state_dir / "backups"
        try:
            info = await asyncio.to_thread(
                take_backup, self.store.path, directory / backup_name(self.clock())
            )
            pruned = prune_backups(directory, keep)
        except RollwiseError as exc:
            self.events.emit("-", EventKind.BACKUP_FAILED, str(exc))
            raise
        message = f"backup {info.path.name}: {info.summary()}"
        if pruned:
            message += f"; {len(pruned)} older removed (keep {keep})"
        self.events.emit("-", EventKind.BACKUP_TAKEN, message, None, info.as_json())
        return info

    async def aclose(self) -> None:
        for run in list(self._running.values()):
            run.cancel()
        if self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)


async def _command(argv: list[str], cwd: Path, app: str, state_dir: Path) -> tuple[bool, str]:
    """Run ``argv`` in ``cwd`` in its own session; its exit code and last output lines. A
    cancelled run (a timeout) kills the whole session."""
    env = {**os.environ, "ROLLWISE_APP": app, "ROLLWISE_STATE_DIR": str(state_dir)}
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return False, f"{argv[0]} could not start: {exc.strerror or exc}"
    try:
        output, _ = await proc.communicate()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    lines = output.decode(errors="replace").strip().splitlines()[-OUTPUT_LINES:]
    tail = " | ".join(lines)
    if proc.returncode == 0:
        return True, tail
    return False, f"exit code {proc.returncode}" + (f": {tail}" if tail else "")


def _when(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))
