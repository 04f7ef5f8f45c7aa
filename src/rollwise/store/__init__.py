"""Persistent state: apps, revisions, rollout status, replicas, events, SLI rows and alerts
in SQLite."""

from rollwise.store.db import EventRow, ReplicaRow, RevisionRow, Store
from rollwise.store.slo import AlertRow, SliRow

__all__ = ["AlertRow", "EventRow", "ReplicaRow", "RevisionRow", "SliRow", "Store"]
