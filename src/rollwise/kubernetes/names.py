"""The names and labels rollwise gives its Kubernetes objects.

In a module of their own, without the spec's models: the CLI and the Lease read them, and
``rollwise --help`` must not pay for importing what builds objects.
"""

from __future__ import annotations

__all__ = [
    "APP_LABEL",
    "CONTROLLER",
    "LEASE",
    "MANAGED_BY",
    "REVISION_LABEL",
    "VERSION_ANNOTATION",
]

MANAGED_BY = {"app.kubernetes.io/managed-by": "rollwise"}
APP_LABEL = "rollwise.dev/app"
REVISION_LABEL = "rollwise.dev/revision"
VERSION_ANNOTATION = "rollwise.dev/version"
CONTROLLER = "rollwise-controller"  # the in-cluster controller's Deployment, account, Role
LEASE = "rollwise-controller"  # the Lease that says which controller acts
