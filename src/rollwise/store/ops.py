"""Approvals of release gates, the runs of maintenance tasks and runtime feature flags (with
their history), in the store.

An approval is kept per app, revision, gate and point (``step 2`` for a traffic increase,
``*`` for the whole rollout), with who gave it and when: a restarted controller still knows
a gate is open, and the history says who opened it. A maintenance task keeps its last and
next run, so a restart neither runs it twice nor forgets one that is due.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any, Protocol

__all__ = ["OPS_SCHEMA", "Approval", "FlagRow", "OpsRows", "TaskRun"]

OPS_SCHEMA = """
    CREATE TABLE approvals (
        app TEXT NOT NULL,
        revision INTEGER NOT NULL,
        gate TEXT NOT NULL,
        point TEXT NOT NULL,
        by TEXT NOT NULL,
        at REAL NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (app, revision, gate, point)
    );
    CREATE TABLE task_runs (
        app TEXT NOT NULL,
        task TEXT NOT NULL,
        last_run REAL,
        next_run REAL,
        outcome TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT '',
        runs INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (app, task)
    );
    CREATE TABLE flags (
        app TEXT NOT NULL,
        key TEXT NOT NULL,
        definition TEXT NOT NULL,
        by TEXT NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (app, key)
    );
    CREATE TABLE flag_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        app TEXT NOT NULL,
        key TEXT NOT NULL,
        definition TEXT,
        by TEXT NOT NULL,
        at REAL NOT NULL,
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX flag_history_app ON flag_history(app, id)
"""


@dataclass(frozen=True, slots=True)
class Approval:
    revision: int
    gate: str
    point: str
    by: str
    at: float
    note: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TaskRun:
    task: str
    last_run: float | None
    next_run: float | None
    outcome: str
    detail: str
    runs: int

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "lastRun": self.last_run,
            "nextRun": self.next_run,
            "outcome": self.outcome,
            "detail": self.detail,
            "runs": self.runs,
        }


@dataclass(frozen=True, slots=True)
class FlagRow:
    key: str
    definition: dict[str, Any]
    by: str
    updated: float


class _Runs(Protocol):
    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> Any: ...

    def transaction(self) -> AbstractContextManager[None]: ...


class OpsRows:
    """The store's approvals and task-run tables (mixed into ``Store``)."""

    def approve(self: _Runs, app: str, approval: Approval) -> None:
        self._run(
            "INSERT OR REPLACE INTO approvals(app, revision, gate, point, by, at, note) "
            "VALUES (?,?,?,?,?,?,?)",
            (
                app,
                approval.revision,
                approval.gate,
                approval.point,
                approval.by,
                approval.at,
                approval.note,
            ),
        )

    def approvals(self: _Runs, app: str, revision: int) -> list[Approval]:
        rows = self._run(
            "SELECT revision, gate, point, by, at, note FROM approvals "
            "WHERE app=? AND revision=? ORDER BY at",
            (app, revision),
        ).fetchall()
        return [Approval(*row) for row in rows]

    def task_run(self: _Runs, app: str, task: str) -> TaskRun | None:
        row = self._run(
            "SELECT task, last_run, next_run, outcome, detail, runs FROM task_runs "
            "WHERE app=? AND task=?",
            (app, task),
        ).fetchone()
        return None if row is None else TaskRun(*row)

    def task_runs(self: _Runs, app: str) -> list[TaskRun]:
        rows = self._run(
            "SELECT task, last_run, next_run, outcome, detail, runs FROM task_runs "
            "WHERE app=? ORDER BY task",
            (app,),
        ).fetchall()
        return [TaskRun(*row) for row in rows]

    def put_task_run(self: _Runs, app: str, run: TaskRun) -> None:
        self._run(
            "INSERT OR REPLACE INTO task_runs(app, task, last_run, next_run, outcome, detail, "
            "runs) VALUES (?,?,?,?,?,?,?)",
            (app, run.task, run.last_run, run.next_run, run.outcome, run.detail, run.runs),
        )

    def flags(self: _Runs, app: str) -> list[FlagRow]:
        rows = self._run(
            "SELECT key, definition, by, updated FROM flags WHERE app=? ORDER BY key", (app,)
        ).fetchall()
        return [FlagRow(r[0], json.loads(r[1]), r[2], r[3]) for r in rows]

    def put_flag(
        self: _Runs, app: str, key: str, definition: dict[str, Any], by: str, at: float, note: str
    ) -> None:
        """A flag's runtime definition, and the change in its history (one transaction)."""
        text = json.dumps(definition, sort_keys=True)
        with self.transaction():
            self._run(
                "INSERT OR REPLACE INTO flags(app, key, definition, by, updated) "
                "VALUES (?,?,?,?,?)",
                (app, key, text, by, at),
            )
            self._run(
                "INSERT INTO flag_history(app, key, definition, by, at, note) VALUES (?,?,?,?,?,?)",
                (app, key, text, by, at, note),
            )

    def drop_flag(self: _Runs, app: str, key: str, by: str, at: float) -> None:
        with self.transaction():
            self._run("DELETE FROM flags WHERE app=? AND key=?", (app, key))
            self._run(
                "INSERT INTO flag_history(app, key, definition, by, at, note) "
                "VALUES (?,?,NULL,?,?,'reset to the spec')",
                (app, key, by, at),
            )

    def flag_history(self: _Runs, app: str, key: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT key, definition, by, at, note FROM flag_history WHERE app=?"
        args: tuple[Any, ...] = (app,)
        if key is not None:
            sql += " AND key=?"
            args = (app, key)
        rows = self._run(sql + " ORDER BY id", args).fetchall()
        return [
            {
                "key": r[0],
                "definition": json.loads(r[1]) if r[1] else None,
                "by": r[2],
                "at": r[3],
                "note": r[4],
            }
            for r in rows
        ]
