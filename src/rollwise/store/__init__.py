"""Persistent state: apps, revisions, rollout status, replicas and events in SQLite."""

from rollwise.store.db import EventRow, ReplicaRow, RevisionRow, Store

__all__ = ["EventRow", "ReplicaRow", "RevisionRow", "Store"]
