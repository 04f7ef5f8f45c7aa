"""Backup and restore of the state store.

A backup is SQLite's online backup of ``state.db`` in one step: a consistent snapshot even
while the controller writes (WAL readers see one transaction's state). A restore checks the
file first (``PRAGMA integrity_check``, a schema this rollwise knows, the tables it needs),
refuses while a controller runs on the target directory, and, unless forced, while the
state it would replace has a rollout in progress; then it swaps the file in atomically and
drops the old write-ahead log, so nothing of the replaced state leaks into the restored one.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollwise.errors import ConflictError, InputError, StoreError
from rollwise.store.db import MIGRATIONS

__all__ = [
    "BackupInfo",
    "BackupListing",
    "backup_listing",
    "backup_name",
    "inspect_backup",
    "list_backups",
    "newest_first",
    "prune_backups",
    "restore",
    "take_backup",
]

TABLES = ("apps", "revisions", "status", "events", "kv")


@dataclass(frozen=True, slots=True)
class BackupInfo:
    path: Path
    schema: int
    apps: int
    revisions: int
    events: int
    size: int

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "schema": self.schema,
            "apps": self.apps,
            "revisions": self.revisions,
            "events": self.events,
            "size": self.size,
        }

    def summary(self) -> str:
        return (
            f"{self.apps} apps, {self.revisions} revisions, {self.events} events "
            f"({self.size / 1024:.0f} KiB, schema {self.schema})"
        )


def _counts(db: sqlite3.Connection, path: Path) -> BackupInfo:
    (schema,) = db.execute("PRAGMA user_version").fetchone()

    def count(table: str) -> int:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    return BackupInfo(
        path, int(schema), count("apps"), count("revisions"), count("events"), path.stat().st_size
    )


def take_backup(db_path: Path, to: Path) -> BackupInfo:
    """Copy the store at ``db_path`` to ``to`` (mode 0600) while it may be in use."""
    if not db_path.exists():
        raise StoreError(f"no state store at {db_path}; nothing to back up (check --state-dir)")
    to = to.resolve()
    to.parent.mkdir(parents=True, exist_ok=True)
    partial = to.with_name(f".{to.name}.partial")
    try:
        source = sqlite3.connect(db_path, timeout=10.0)
        target = sqlite3.connect(partial)
        try:
            source.backup(target)  # all pages in one step: one consistent snapshot
            target.execute("PRAGMA journal_mode=DELETE")  # a self-contained file
        finally:
            target.close()
            source.close()
        os.chmod(partial, 0o600)
        os.replace(partial, to)
    except (sqlite3.Error, OSError) as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise StoreError(f"backup of {db_path} to {to} failed: {exc}") from None
    return inspect_backup(to)


def inspect_backup(path: Path) -> BackupInfo:
    """Check that ``path`` is a whole, readable rollwise store; say what it holds."""
    if not path.is_file():
        raise InputError(f"{path}: no such backup file")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            (check,) = db.execute("PRAGMA integrity_check").fetchone()
            if check != "ok":
                raise InputError(
                    f"{path} is damaged (integrity_check: {check}); use another backup"
                )
            names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            missing = [t for t in TABLES if t not in names]
            if missing:
                raise InputError(
                    f"{path} is not a rollwise state store (no table {', '.join(missing)})"
                )
            info = _counts(db, path)
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise InputError(
            f"{path} is not a readable SQLite file ({exc}); use another backup"
        ) from None
    if info.schema > len(MIGRATIONS):
        raise InputError(
            f"{path} has schema {info.schema}, newer than this rollwise knows "
            f"({len(MIGRATIONS)}); restore it with the rollwise that wrote it"
        )
    return info


def _query(db_path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on a store that may not exist (then none)."""
    if not db_path.exists():
        return []
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    except sqlite3.Error:
        return []
    finally:
        db.close()


def _rollouts_in_progress(db_path: Path) -> list[str]:
    busy = []
    for app, body in _query(db_path, "SELECT app, body FROM status"):
        status = json.loads(body)
        if status.get("canary") is not None and not status.get("aborted"):
            busy.append(f"{app} ({status.get('phase')}, revision {status['canary']})")
    return busy


def _live_processes(db_path: Path) -> list[str]:
    """The proxy and replicas the store records that still run (same pid, same start)."""
    import psutil

    rows = [
        ("replica", int(p), float(t))
        for p, t in _query(db_path, "SELECT pid, start_time FROM replicas")
    ]
    for (value,) in _query(db_path, "SELECT value FROM kv WHERE key='proxy'"):
        record = json.loads(value)
        if record:
            rows.append(("proxy", int(record["pid"]), float(record["start_time"])))
    alive = []
    for kind, pid, started in rows:
        with contextlib.suppress(psutil.Error):
            if abs(psutil.Process(pid).create_time() - started) < 1.0:
                alive.append(f"{kind} pid {pid}")
    return alive


def restore(backup: Path, state_dir: Path, force: bool = False) -> BackupInfo:
    """Replace ``state_dir``'s store with ``backup``. The controller must be stopped.

    The restored store records no process: those the backup recorded belong to the
    directory it was taken from (a controller started on the restored one starts its own)."""
    inspect_backup(backup)  # a damaged or foreign file changes nothing
    from rollwise.client import AdminClient

    with AdminClient(state_dir) as client:
        if client.running():
            raise ConflictError(
                f"a controller runs on {state_dir}; stop it with `rollwise down` first"
            )
    db_path = state_dir / "state.db"
    running = _live_processes(db_path)
    if running and not force:
        raise ConflictError(
            f"processes of {state_dir} still run ({', '.join(running)}); stop them with "
            "`rollwise up` then `rollwise down`, or pass --force to leave them behind"
        )
    busy = _rollouts_in_progress(db_path)
    if busy and not force:
        raise ConflictError(
            f"{db_path} has rollouts in progress: {', '.join(busy)}; restoring would drop them. "
            "Pass --force to restore anyway"
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    partial = state_dir / ".state.db.restoring"
    try:
        source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
        target = sqlite3.connect(partial)
        try:
            source.backup(target)
            target.execute("DELETE FROM replicas")
            target.execute("DELETE FROM kv WHERE key='proxy'")
            target.commit()
        finally:
            target.close()
            source.close()
        os.chmod(partial, 0o600)
        for stale in (db_path.with_name("state.db-wal"), db_path.with_name("state.db-shm")):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        os.replace(partial, db_path)
    except (sqlite3.Error, OSError) as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise StoreError(f"restore of {backup} into {state_dir} failed: {exc}") from None
    return inspect_backup(db_path)


def prune_backups(directory: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest ``state-*.db`` backups in ``directory``."""
    found = sorted(directory.glob("state-*.db"), key=lambda p: p.stat().st_mtime, reverse=True)
    gone = found[keep:]
    for path in gone:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return gone


@dataclass(frozen=True, slots=True)
class BackupListing:
    name: str
    path: Path
    taken: float
    size: int
    integrity: str  # "ok", or what is wrong with it

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "taken": self.taken,
            "size": self.size,
            "integrity": self.integrity,
        }


def newest_first(directory: Path) -> list[Path]:
    """The ``*.db`` backups in ``directory``, newest first."""
    return sorted(directory.glob("*.db"), key=lambda p: p.stat().st_mtime, reverse=True)


def backup_listing(directory: Path) -> list[BackupListing]:
    """Every ``*.db`` backup in ``directory``, newest first, each checked as ``restore``
    would check it."""
    found = newest_first(directory)
    listing = []
    for path in found:
        try:
            inspect_backup(path)
            integrity = "ok"
        except InputError as exc:
            integrity = exc.message.removeprefix(f"{path} ").removeprefix(f"{path}: ")
        stat = path.stat()
        listing.append(BackupListing(path.name, path, stat.st_mtime, stat.st_size, integrity))
    return listing


def list_backups(state_dir: Path | None = None) -> list[str]:
    """The backups' file names in ``<state>/backups``, newest first (the mission's call)."""
    from rollwise.client import default_state_dir

    directory = (state_dir or default_state_dir()) / "backups"
    return [b.name for b in backup_listing(directory)]


def backup_name(now: float | None = None) -> str:
    """``state-20261122T115500Z.db``: sorts by time, unique to the second."""
    return time.strftime(
        "state-%Y%m%dT%H%M%SZ.db", time.gmtime(now if now is not None else time.time())
    )
