"""What the controller asks of a backend: the place where revisions run.

The controller declares, the backend makes it so (Kubernetes' way): ``ensure`` states how
many ready replicas a revision should have and returns at once; a supervision loop of the
backend's own (``run``) starts, probes, restarts and reports. The controller reads health as
a snapshot (``health``); the backend reports through two callables it is given when built: a
``HealthListener`` whenever a revision's health changes (so that a reconcile pass runs when
something can change its outcome, never on a timer), and ``BackendEvents`` for what people
should read (a crash, a crash loop). The local backend (processes on this machine) is
``backends/local.py``; a Kubernetes backend is another module beside it with the same shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx

from rollwise.spec.models import Rollout, RolloutSpec, Template
from rollwise.words import EventKind

__all__ = [
    "DIRECT",
    "LIMITS",
    "Backend",
    "BackendEvents",
    "Direct",
    "HealthListener",
    "Reach",
    "ReplicaState",
    "RevisionHealth",
    "Workload",
]


@dataclass(frozen=True, slots=True)
class Workload:
    """What one revision runs: the app's template at that revision's version."""

    app: str
    revision: int
    version: str
    template: Template
    base_dir: str
    # more environment from the controller (the revision's OFREP URL), as (name, value)
    extra_env: tuple[tuple[str, str], ...] = ()
    # the revision's whole spec, for a backend that builds objects from more than the
    # template (Kubernetes: namespace, ports, progress deadline)
    rollout: Rollout | None = None


@dataclass(frozen=True, slots=True)
class ReplicaState:
    index: int
    address: str
    pid: int | None
    state: str  # pending, starting, ready, crashed
    restarts: int
    last_exit: int | None
    name: str = ""  # a cluster's pod; a local replica is its pid
    reason: str = ""  # why it does not start, when the platform says (a pod's waiting reason)
    # CPU in use as a share of its request, where the platform measures it (a cluster's
    # metrics API); a local replica's is read from its process by the autoscaler
    cpu: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "address": self.address,
            "name": self.name,
            "pid": self.pid,
            "state": self.state,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "reason": self.reason,
            "cpu": self.cpu,
        }


@dataclass(frozen=True, slots=True)
class RevisionHealth:
    """A revision's replicas as the backend sees them now."""

    desired: int
    running: int
    ready: int
    crash_loop: bool
    replicas: tuple[ReplicaState, ...] = ()
    last_logs: tuple[str, ...] = ()

    @classmethod
    def none(cls) -> RevisionHealth:
        """A revision the backend does not run."""
        return cls(0, 0, 0, False)

    def ready_addresses(self) -> list[str]:
        return [r.address for r in self.replicas if r.state == "ready"]

    def stuck(self) -> str:
        """Why a replica does not start, as the platform said (``""``: it said nothing)."""
        for r in self.replicas:
            if r.reason:
                return f"{'pod ' + r.name if r.name else f'replica {r.index}'}: {r.reason}"
        return ""

    def as_json(self) -> dict[str, Any]:
        return {
            "desired": self.desired,
            "running": self.running,
            "ready": self.ready,
            "crash_loop": self.crash_loop,
            "replicas": [r.as_json() for r in self.replicas],
            "last_logs": list(self.last_logs),
        }


# (app, revision): called whenever a revision's health changes (ready, unready, crashed)
HealthListener = Callable[[str, int], None]
# (app, revision, kind, message): what the backend has to say, as events
BackendEvents = Callable[[str, int, EventKind, str], None]


LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's own


class Reach(Protocol):
    """How this controller reaches an app over HTTP: a replica (the smoke tests and the
    agent-card check before a revision's first request, ``agentMetrics``) and the app's live
    entry (smoke tests after promotion, scheduled smoke tests)."""

    def url(self, address: str) -> str:
        """The base URL (no trailing slash) of the replica that answers at ``address``."""

    def entry(self, app: str, spec: RolloutSpec) -> tuple[str, str]:
        """Where the app's live traffic enters, as this controller reaches it: base URL, and
        how to name it in a message."""

    def client(
        self, timeout: float | None, limits: httpx.Limits | None = None
    ) -> httpx.AsyncClient:
        """A new client for those URLs (with what they need: credentials, TLS); its user
        closes it. ``timeout`` ``None``: none of its own (the caller bounds each request)."""


class Direct:
    """Replicas at their own address and the app at its listener: processes on this machine
    behind rollwise's proxy."""

    def url(self, address: str) -> str:
        return f"http://{address}"

    def entry(self, app: str, spec: RolloutSpec) -> tuple[str, str]:
        listen = spec.listen
        return f"http://{listen}", f"the listener {listen}"

    def client(
        self, timeout: float | None, limits: httpx.Limits | None = None
    ) -> httpx.AsyncClient:
        # never through $HTTP_PROXY: no proxy of the user's routes to replicas
        return httpx.AsyncClient(timeout=timeout, limits=limits or LIMITS, trust_env=False)


DIRECT = Direct()


@runtime_checkable
class PodLogs(Protocol):
    """A backend whose replicas' logs live on the platform, read on demand (a cluster's
    pods); the local backend's are files (``Backend.log_paths``)."""

    async def pod_logs(
        self, app: str, revision: int | None, tail: int, since: Mapping[str, str]
    ) -> list[tuple[str, int, list[tuple[str, str]]]]:
        """(pod, revision, (stamp, line) pairs): the last ``tail`` lines of each pod, or
        those after the stamp ``since`` gives for it."""


class Backend(Protocol):
    """Where a revision's replicas run. Every method but ``stop``/``run`` returns at once."""

    reach: Reach

    def ensure(self, workload: Workload, replicas: int) -> None:
        """``workload`` should have ``replicas`` ready replicas (scaling up or down)."""

    def health(self, app: str, revision: int) -> RevisionHealth:
        """The revision's replicas now (``RevisionHealth.none()`` when it does not run)."""

    def addresses(self, app: str, revision: int, *, ready: bool = True) -> list[str]:
        """Where the revision's replicas answer: the ready ones, or all of them."""

    async def stop(self, app: str, revision: int) -> None:
        """Stop every replica of the revision (gracefully: its stop grace period)."""

    async def adopt(self, running: Mapping[tuple[str, int], Workload]) -> int:
        """After a controller restart: take over what still runs of ``running``, stop the
        rest of what this backend started, and know the adopted replicas' health before
        returning; how many replicas were adopted."""

    def suspect(self, address: str) -> None:
        """The data plane saw failures at ``address``: check that replica now."""

    def owner(self, address: str) -> tuple[str, int] | None:
        """The app and revision whose replica answers at ``address``."""

    def log_paths(self, app: str, revision: int | None = None) -> list[Path]:
        """The replicas' log files (none where the backend keeps no files)."""

    async def run(self) -> None:
        """Supervise until cancelled."""

    async def stop_all(self) -> None:
        """Stop every replica (``rollwise down``)."""

    async def aclose(self) -> None:
        """Release connections and watchers."""
