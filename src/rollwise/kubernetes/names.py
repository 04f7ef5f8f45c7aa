"""The names and labels rollwise gives its Kubernetes objects.

In a module of their own, without the spec's models: the CLI and the Lease read them, and
``rollwise --help`` must not pay for importing what builds objects.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "APP_LABEL",
    "CONTROLLER",
    "LEASE",
    "MANAGED_BY",
    "REVISION_LABEL",
    "VERSION_ANNOTATION",
    "WAITING_FOR_LEASE",
    "owned",
    "revision_of",
]

MANAGED_BY = {"app.kubernetes.io/managed-by": "rollwise"}
APP_LABEL = "rollwise.dev/app"
REVISION_LABEL = "rollwise.dev/revision"
VERSION_ANNOTATION = "rollwise.dev/version"
CONTROLLER = "rollwise-controller"  # the in-cluster controller's Deployment, account, Role
LEASE = "rollwise-controller"  # the Lease that says which controller acts
# the log event of a candidate waiting for the Lease (``rollwise up --detach`` looks for it)
WAITING_FOR_LEASE = "waiting for the lease"


def owned(labels: Mapping[str, str] | None) -> bool:
    """Whether an object with these labels is rollwise's (the only ones it changes)."""
    found = labels or {}
    return all(found.get(k) == v for k, v in MANAGED_BY.items())


def revision_of(labels: Mapping[str, str] | None) -> tuple[str, int] | None:
    """The app and revision an object of rollwise's belongs to, from its labels."""
    found = labels or {}
    try:
        return found[APP_LABEL], int(found[REVISION_LABEL])
    except (KeyError, ValueError):
        return None
