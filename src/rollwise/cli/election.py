"""``rollwise up --leader-elect``: the options, named as kube-controller-manager names them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rollwise.kubernetes.names import LEASE

if TYPE_CHECKING:
    from rollwise.kubernetes.lease import Elector

__all__ = [
    "Election",
    "KubeContext",
    "Kubeconfig",
    "LeaderElect",
    "LeaseDuration",
    "LeaseName",
    "LeaseNamespace",
    "RenewDeadline",
    "RetryPeriod",
]

LeaderElect = Annotated[
    bool,
    typer.Option(
        "--leader-elect",
        help="Act only while holding a coordination.k8s.io Lease: a second controller (a pod, "
        "a laptop) waits until this one stops or stops renewing (docs/kubernetes.md).",
    ),
]
Kubeconfig = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig",
        help="The cluster's kubeconfig (default: the pod's service account, $KUBECONFIG, "
        "~/.kube/config).",
    ),
]
KubeContext = Annotated[
    str | None, typer.Option("--context", help="The kubeconfig context (default: current).")
]
LeaseName = Annotated[str, typer.Option("--leader-elect-resource-name", help="The Lease.")]
LeaseNamespace = Annotated[
    str | None,
    typer.Option(
        "--leader-elect-resource-namespace",
        help="The Lease's namespace (default: the context's, or the pod's).",
    ),
]
LeaseDuration = Annotated[
    float,
    typer.Option(
        "--leader-elect-lease-duration",
        help="Seconds a candidate waits, after the Lease last changed, before taking it.",
    ),
]
RenewDeadline = Annotated[
    float,
    typer.Option(
        "--leader-elect-renew-deadline",
        help="Seconds the leader tries to renew before it stops acting.",
    ),
]
RetryPeriod = Annotated[
    float,
    typer.Option("--leader-elect-retry-period", help="Seconds between tries and renewals."),
]


@dataclass(frozen=True, slots=True)
class Election:
    """The ``--leader-elect*`` options of one ``rollwise up``."""

    enabled: bool = False
    kubeconfig: Path | None = None
    context: str | None = None
    name: str = LEASE
    namespace: str | None = None
    duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_s: float = 2.0

    def argv(self) -> list[str]:
        """The same options on a command line (``up --detach`` starts another process), but
        ``--kubeconfig`` and ``--context``, which ``up`` passes on for the backend too."""
        if not self.enabled:
            return []
        out = ["--leader-elect", "--leader-elect-resource-name", self.name]
        out += ["--leader-elect-lease-duration", repr(self.duration_s)]
        out += ["--leader-elect-renew-deadline", repr(self.renew_deadline_s)]
        out += ["--leader-elect-retry-period", repr(self.retry_s)]
        if self.namespace is not None:
            out += ["--leader-elect-resource-namespace", self.namespace]
        return out

    def elector(self) -> Elector:
        """A candidate for the Lease (checks the timings and the kubeconfig first)."""
        from rollwise.kubernetes.connection import ClusterAccess, connect
        from rollwise.kubernetes.leadership import identity
        from rollwise.kubernetes.lease import Elector, LeaseTerms, check_timing

        check_timing(self.duration_s, self.renew_deadline_s, self.retry_s)
        client = connect(ClusterAccess(self.kubeconfig, self.context, self.namespace))
        terms = LeaseTerms(
            namespace=self.namespace or client.namespace,
            identity=identity(),
            name=self.name,
            duration_s=self.duration_s,
            renew_deadline_s=self.renew_deadline_s,
            retry_s=self.retry_s,
        )
        return Elector(client, terms)
