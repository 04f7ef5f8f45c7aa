"""The state store: one SQLite file in WAL mode (``.rollwise/state.db`` by default).

Every write is its own committed transaction with ``synchronous=FULL``: when a method returns,
the row survives a crash of this process or the machine. The controller relies on that to
write what it is about to do before it does it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from rollwise.errors import NotFoundError, StoreError
from rollwise.store.ops import OPS_SCHEMA, OpsRows
from rollwise.store.slo import SLO_SCHEMA, SloRows

__all__ = ["AnalysisRow", "EventRow", "ReplicaRow", "RevisionRow", "Store"]

MIGRATIONS: list[str] = [
    """
    CREATE TABLE apps (
        name TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        base_dir TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE revisions (
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        version TEXT NOT NULL,
        spec TEXT NOT NULL,
        created_at REAL NOT NULL,
        created_by TEXT NOT NULL,
        cause TEXT NOT NULL,
        outcome TEXT NOT NULL DEFAULT 'pending',
        reason TEXT NOT NULL DEFAULT '',
        finished_at REAL,
        PRIMARY KEY (app, number)
    );
    CREATE TABLE status (
        app TEXT PRIMARY KEY REFERENCES apps(name) ON DELETE CASCADE,
        body TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE replicas (
        app TEXT NOT NULL,
        revision INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        pid INTEGER NOT NULL,
        start_time REAL NOT NULL,
        port INTEGER NOT NULL,
        log_path TEXT NOT NULL,
        PRIMARY KEY (app, revision, idx)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        app TEXT NOT NULL,
        revision INTEGER,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_app ON events(app, id);
    CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE analysis_runs (
        app TEXT NOT NULL,
        key TEXT NOT NULL,
        revision INTEGER NOT NULL,
        baseline INTEGER,
        kind TEXT NOT NULL,
        started REAL NOT NULL,
        updated REAL NOT NULL,
        outcome TEXT NOT NULL,
        verdict TEXT NOT NULL,
        PRIMARY KEY (app, key)
    );
    """,
    """
    CREATE TABLE cards (
        app TEXT NOT NULL,
        revision INTEGER NOT NULL,
        card TEXT NOT NULL,
        fetched_at REAL NOT NULL,
        PRIMARY KEY (app, revision)
    );
    """,
    SLO_SCHEMA,
    OPS_SCHEMA,
]


@dataclass(frozen=True)
class RevisionRow:
    app: str
    number: int
    version: str
    spec: dict[str, Any]
    created_at: float
    created_by: str
    cause: str
    outcome: str
    reason: str
    finished_at: float | None


@dataclass(frozen=True)
class ReplicaRow:
    app: str
    revision: int
    index: int
    pid: int
    start_time: float
    port: int
    log_path: str


@dataclass(frozen=True)
class EventRow:
    id: int
    ts: float
    app: str
    revision: int | None
    kind: str
    message: str
    data: dict[str, Any]


@dataclass(frozen=True)
class AnalysisRow:
    """One analysis run and its latest verdict (``Verdict.as_json``)."""

    app: str
    key: str
    revision: int
    baseline: int | None
    kind: str
    started: float
    updated: float
    outcome: str
    verdict: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "revision": self.revision,
            "baseline": self.baseline,
            "kind": self.kind,
            "started": self.started,
            "updated": self.updated,
            "outcome": self.outcome,
            "verdict": self.verdict,
        }


class Store(SloRows, OpsRows):
    """Typed access to the state database; safe to share between threads (one lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=5.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"cannot open the state store {self.path}: {exc}; check that the directory "
                "is writable and that no other program holds the file"
            ) from None
        self._lock = threading.RLock()
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _migrate(self) -> None:
        with self._lock:
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in script.split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version={number}")
                    self._db.execute("COMMIT")
                except sqlite3.Error:
                    self._db.execute("ROLLBACK")
                    raise

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """The writes inside are one transaction: one fsync for a command's or a pass's
        status, history and events, instead of one each. Synchronous code only: the store
        is shared by every app's tasks, and an ``await`` inside would let theirs in."""
        with self._lock:
            self._run("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._run("ROLLBACK")
                raise
            self._run("COMMIT")

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            try:
                return self._db.execute(sql, args)
            except sqlite3.OperationalError as exc:
                raise self._failure(exc) from None

    def _failure(self, exc: sqlite3.Error) -> StoreError:
        """What went wrong with the store, said so that a person can fix it."""
        text = str(exc)
        if "locked" in text or "busy" in text:
            holders = _holders(self.path)
            return StoreError(
                f"the state store {self.path} is locked by another process"
                + (f" ({holders})" if holders else "")
                + "; close it (a sqlite3 shell, a backup tool) and retry"
            )
        if "full" in text:
            return StoreError(
                f"the disk holding the state store {self.path} is full; free some space and retry"
            )
        if "readonly" in text or "read-only" in text:
            return StoreError(
                f"the state store {self.path} is read-only ({text}); "
                f"make {self.path.parent} writable and retry"
            )
        return StoreError(f"state store {self.path}: {text}")

    # apps

    def put_app(self, name: str, spec: dict[str, Any], base_dir: str) -> None:
        now = time.time()
        self._run(
            "INSERT INTO apps(name, spec, base_dir, created_at, updated_at) VALUES (?,?,?,?,?) "
            "ON CONFLICT(name) DO UPDATE SET spec=excluded.spec, base_dir=excluded.base_dir, "
            "updated_at=excluded.updated_at",
            (name, json.dumps(spec), base_dir, now, now),
        )

    def get_app(self, name: str) -> tuple[dict[str, Any], str]:
        row = self._run("SELECT spec, base_dir FROM apps WHERE name=?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"no app named {name!r}; `rollwise list` shows the apps")
        return json.loads(row[0]), row[1]

    def app_names(self) -> list[str]:
        return [r[0] for r in self._run("SELECT name FROM apps ORDER BY name").fetchall()]

    # revisions

    def add_revision(
        self, app: str, version: str, spec: dict[str, Any], created_by: str, cause: str
    ) -> int:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise self._failure(exc) from None
            try:
                (last,) = self._db.execute(
                    "SELECT COALESCE(MAX(number), 0) FROM revisions WHERE app=?", (app,)
                ).fetchone()
                self._db.execute(
                    "INSERT INTO revisions(app, number, version, spec, created_at, created_by, "
                    "cause) VALUES (?,?,?,?,?,?,?)",
                    (app, last + 1, version, json.dumps(spec), time.time(), created_by, cause),
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise self._failure(exc) from None
        return int(last) + 1

    def revision(self, app: str, number: int) -> RevisionRow:
        row = self._run(
            "SELECT * FROM revisions WHERE app=? AND number=?", (app, number)
        ).fetchone()
        if row is None:
            raise NotFoundError(
                f"app {app!r} has no revision {number}; `rollwise history {app}` lists them"
            )
        return _revision(row)

    def revisions(self, app: str) -> list[RevisionRow]:
        rows = self._run("SELECT * FROM revisions WHERE app=? ORDER BY number", (app,))
        return [_revision(r) for r in rows.fetchall()]

    def finish_revision(self, app: str, number: int, outcome: str, reason: str) -> None:
        self._run(
            "UPDATE revisions SET outcome=?, reason=?, finished_at=? WHERE app=? AND number=?",
            (outcome, reason, time.time(), app, number),
        )

    def delete_revision(self, app: str, number: int) -> None:
        """Forget an old revision (``revisionHistoryLimit``); numbers are never reused."""
        self._run("DELETE FROM revisions WHERE app=? AND number=?", (app, number))

    def reopen_revision(self, app: str, number: int, cause: str) -> None:
        """A revision rolls out again (``retry``, ``undo``): it is pending, with a new cause."""
        self._run(
            "UPDATE revisions SET outcome='pending', reason='', finished_at=NULL, cause=? "
            "WHERE app=? AND number=?",
            (cause, app, number),
        )

    # status

    def get_status(self, app: str) -> dict[str, Any] | None:
        row = self._run("SELECT body FROM status WHERE app=?", (app,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put_status(self, app: str, body: dict[str, Any]) -> None:
        self._run(
            "INSERT INTO status(app, body, updated_at) VALUES (?,?,?) "
            "ON CONFLICT(app) DO UPDATE SET body=excluded.body, updated_at=excluded.updated_at",
            (app, json.dumps(body), time.time()),
        )

    # replicas (what runs, so that a restarted controller can adopt it)

    def put_replica(self, row: ReplicaRow) -> None:
        self._run(
            "INSERT OR REPLACE INTO replicas VALUES (?,?,?,?,?,?,?)",
            (row.app, row.revision, row.index, row.pid, row.start_time, row.port, row.log_path),
        )

    def delete_replica(self, app: str, revision: int, index: int) -> None:
        self._run(
            "DELETE FROM replicas WHERE app=? AND revision=? AND idx=?", (app, revision, index)
        )

    def replicas(self) -> list[ReplicaRow]:
        rows = self._run("SELECT * FROM replicas ORDER BY app, revision, idx").fetchall()
        return [ReplicaRow(*r) for r in rows]

    # events

    def add_event(
        self,
        app: str,
        kind: str,
        message: str,
        revision: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> int:
        cur = self._run(
            "INSERT INTO events(ts, app, revision, kind, message, data) VALUES (?,?,?,?,?,?)",
            (time.time(), app, revision, kind, message, json.dumps(data or {})),
        )
        return int(cur.lastrowid or 0)

    def events(self, app: str, after: int | None = None, limit: int = 200) -> list[EventRow]:
        """An app's events, oldest first: the newest ``limit``, or with ``after`` the first
        ``limit`` after that id (so a reader that follows, page by page, misses none)."""
        if after is None:
            sql = "SELECT * FROM events WHERE app=? AND id>? ORDER BY id DESC LIMIT ?"
        else:
            sql = "SELECT * FROM events WHERE app=? AND id>? ORDER BY id LIMIT ?"
        rows = self._run(sql, (app, after or 0, limit)).fetchall()
        if after is None:
            rows.reverse()
        return [EventRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]

    def last_events(self, app: str, kinds: Iterable[str]) -> dict[str, EventRow]:
        """The newest event of each of ``kinds`` the app had, by kind."""
        wanted = sorted(set(kinds))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        sql = (
            f"SELECT * FROM events WHERE id IN (SELECT max(id) FROM events "
            f"WHERE app=? AND kind IN ({marks}) GROUP BY kind)"
        )
        rows = self._run(sql, (app, *wanted)).fetchall()
        return {r[4]: EventRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows}

    # analysis runs

    def put_analysis(self, row: AnalysisRow) -> None:
        self._run(
            "INSERT OR REPLACE INTO analysis_runs VALUES (?,?,?,?,?,?,?,?,?)",
            (
                row.app,
                row.key,
                row.revision,
                row.baseline,
                row.kind,
                row.started,
                row.updated,
                row.outcome,
                json.dumps(row.verdict),
            ),
        )

    def analyses(self, app: str, limit: int = 50) -> list[AnalysisRow]:
        rows = self._run(
            "SELECT * FROM analysis_runs WHERE app=? ORDER BY started DESC LIMIT ?", (app, limit)
        ).fetchall()
        return [
            AnalysisRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8]))
            for r in reversed(rows)
        ]

    def delete_analyses(self, app: str, revision: int) -> None:
        self._run("DELETE FROM analysis_runs WHERE app=? AND revision=?", (app, revision))

    # agent cards, as each revision served them (for diffs, the registry, the matrix)

    def put_card(self, app: str, revision: int, card: dict[str, Any]) -> None:
        self._run(
            "INSERT OR REPLACE INTO cards VALUES (?,?,?,?)",
            (app, revision, json.dumps(card, sort_keys=True), time.time()),
        )

    def card(self, app: str, revision: int) -> dict[str, Any] | None:
        row = self._run(
            "SELECT card FROM cards WHERE app=? AND revision=?", (app, revision)
        ).fetchone()
        return dict(json.loads(row[0])) if row else None

    def cards(self, app: str) -> dict[int, dict[str, Any]]:
        rows = self._run("SELECT revision, card FROM cards WHERE app=? ORDER BY revision", (app,))
        return {int(r[0]): dict(json.loads(r[1])) for r in rows.fetchall()}

    def delete_card(self, app: str, revision: int) -> None:
        self._run("DELETE FROM cards WHERE app=? AND revision=?", (app, revision))

    # small values (data-plane pid, routing generation, ...)

    def put_kv(self, key: str, value: Any) -> None:
        self._run(
            "INSERT INTO kv(key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET "
            "value=excluded.value",
            (key, json.dumps(value)),
        )

    def get_kv(self, key: str) -> Any:
        row = self._run("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])


def _revision(row: tuple[Any, ...]) -> RevisionRow:
    return RevisionRow(
        app=row[0],
        number=row[1],
        version=row[2],
        spec=json.loads(row[3]),
        created_at=row[4],
        created_by=row[5],
        cause=row[6],
        outcome=row[7],
        reason=row[8],
        finished_at=row[9],
    )


def _holders(path: Path) -> str:
    """The other processes that have the store open, as "pid N (name)"."""
    found = []
    wanted = {str(path.resolve()), str(path.resolve()) + "-wal"}
    for proc in psutil.process_iter(["pid", "name"]):
        if proc.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            if any(f.path in wanted for f in proc.open_files()):
                found.append(f"pid {proc.pid} ({proc.info['name']})")
    return ", ".join(found[:3])
