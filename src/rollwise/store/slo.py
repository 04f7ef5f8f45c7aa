"""SLI rows and alert states in the store: what an SLO's windows of days are read from.

One row per app, SLO, revision and ``resolution``-wide slice of time (a minute by default)
holds that slice's good and total requests, so that windows of 28 days survive restarts of
the controller and the proxy; a row of a canary revision is its own, and the app's. The
folded-up-to second of each app is stored in the same transaction as the rows it produced,
so a second is counted once across restarts. Alerts keep their state (pending, firing,
resolved), since when, and the numbers, so that a restarted controller neither forgets a
firing alert nor sends it twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["SLO_SCHEMA", "AlertRow", "SliRow", "SloRows"]

SLO_SCHEMA = """
    CREATE TABLE sli (
        app TEXT NOT NULL,
        slo TEXT NOT NULL,
        start INTEGER NOT NULL,
        revision INTEGER NOT NULL,
        good INTEGER NOT NULL,
        total INTEGER NOT NULL,
        PRIMARY KEY (app, slo, start, revision)
    ) WITHOUT ROWID;
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        app TEXT NOT NULL,
        slo TEXT NOT NULL,
        severity TEXT NOT NULL,
        windows TEXT NOT NULL,
        state TEXT NOT NULL,
        since REAL NOT NULL,
        updated REAL NOT NULL,
        resolved_at REAL,
        numbers TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX alerts_app ON alerts(app, id)
"""

_ACTIVE = ("pending", "firing")


@dataclass(frozen=True, slots=True)
class SliRow:
    slo: str
    start: int
    revision: int
    good: int
    total: int


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    app: str
    slo: str
    severity: str
    windows: str
    state: str
    since: float
    updated: float
    resolved_at: float | None
    numbers: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "app": self.app,
            "slo": self.slo,
            "severity": self.severity,
            "window": self.windows,
            "state": self.state,
            "since": self.since,
            "updated": self.updated,
            "resolvedAt": self.resolved_at,
            "numbers": self.numbers,
        }


class _Runs(Protocol):
    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> Any: ...


class SloRows:
    """The store's SLI and alert tables (mixed into ``Store``)."""

    def add_sli(self: _Runs, app: str, rows: Iterable[SliRow]) -> None:
        for row in rows:
            self._run(
                "INSERT INTO sli(app, slo, start, revision, good, total) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(app, slo, start, revision) DO UPDATE SET "
                "good = good + excluded.good, total = total + excluded.total",
                (app, row.slo, row.start, row.revision, row.good, row.total),
            )

    def sli_sums(self: _Runs, app: str, slo: str, starts: Sequence[int]) -> list[tuple[int, int]]:
        """(good, total) from each of ``starts`` on: one scan for every window of an SLO."""
        if not starts:
            return []
        columns = ", ".join(
            "COALESCE(SUM(CASE WHEN start >= ? THEN good END), 0), "
            "COALESCE(SUM(CASE WHEN start >= ? THEN total END), 0)"
            for _ in starts
        )
        args: list[Any] = []
        for start in starts:
            args += [start, start]
        row = self._run(
            f"SELECT {columns} FROM sli WHERE app=? AND slo=? AND start >= ?",
            (*args, app, slo, min(starts)),
        ).fetchone()
        return [(int(row[2 * i]), int(row[2 * i + 1])) for i in range(len(starts))]

    def sli_rows(self: _Runs, app: str, since: int) -> list[SliRow]:
        rows = self._run(
            "SELECT slo, start, revision, good, total FROM sli WHERE app=? AND start >= ? "
            "ORDER BY start",
            (app, since),
        ).fetchall()
        return [SliRow(*row) for row in rows]

    def prune_sli(self: _Runs, app: str, slo: str, before: int) -> None:
        self._run("DELETE FROM sli WHERE app=? AND slo=? AND start < ?", (app, slo, before))

    def forget_slis(self: _Runs, app: str, keep: Sequence[str]) -> None:
        """Drop the rows of SLOs the app's spec no longer has."""
        marks = ",".join("?" for _ in keep)
        self._run(f"DELETE FROM sli WHERE app=? AND slo NOT IN ({marks})", (app, *keep))

    def put_alert(self: _Runs, row: AlertRow) -> int:
        """Insert (``row.id`` 0) or update an alert; its id."""
        numbers = json.dumps(row.numbers)
        if row.id:
            self._run(
                "UPDATE alerts SET state=?, since=?, updated=?, resolved_at=?, numbers=? "
                "WHERE id=?",
                (row.state, row.since, row.updated, row.resolved_at, numbers, row.id),
            )
            return row.id
        cursor = self._run(
            "INSERT INTO alerts(app, slo, severity, windows, state, since, updated, "
            "resolved_at, numbers) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                row.app,
                row.slo,
                row.severity,
                row.windows,
                row.state,
                row.since,
                row.updated,
                row.resolved_at,
                numbers,
            ),
        )
        return int(cursor.lastrowid)

    def delete_alert(self: _Runs, alert_id: int) -> None:
        self._run("DELETE FROM alerts WHERE id=?", (alert_id,))

    def alerts(
        self: _Runs, app: str | None = None, active_only: bool = False, limit: int = 200
    ) -> list[AlertRow]:
        """The newest alerts first (of one app, or all)."""
        where, args = [], []
        if app is not None:
            where.append("app=?")
            args.append(app)
        if active_only:
            where.append(f"state IN ({','.join('?' for _ in _ACTIVE)})")
            args += list(_ACTIVE)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._run(
            "SELECT id, app, slo, severity, windows, state, since, updated, resolved_at, "
            f"numbers FROM alerts {clause} ORDER BY id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [_alert(row) for row in rows]

    def prune_alerts(self: _Runs, app: str, keep: int = 500) -> None:
        """Keep the ``keep`` newest resolved alerts of an app."""
        self._run(
            "DELETE FROM alerts WHERE app=? AND state='resolved' AND id NOT IN "
            "(SELECT id FROM alerts WHERE app=? AND state='resolved' ORDER BY id DESC LIMIT ?)",
            (app, app, keep),
        )


def _alert(row: tuple[Any, ...]) -> AlertRow:
    return AlertRow(
        id=row[0],
        app=row[1],
        slo=row[2],
        severity=row[3],
        windows=row[4],
        state=row[5],
        since=row[6],
        updated=row[7],
        resolved_at=row[8],
        numbers=json.loads(row[9]),
    )
