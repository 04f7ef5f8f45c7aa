"""Persistent state: apps, revisions, rollout status, replicas, events, SLI rows and alerts,
approvals and maintenance task runs in SQLite."""

from rollwise.store.db import EventRow, ReplicaRow, RevisionRow, Store
from rollwise.store.ops import Approval, TaskRun
from rollwise.store.slo import AlertRow, SliRow

__all__ = [
    "AlertRow",
    "Approval",
    "EventRow",
    "ReplicaRow",
    "RevisionRow",
    "SliRow",
    "Store",
    "TaskRun",
]
