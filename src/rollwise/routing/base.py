"""What the controller asks of a traffic router: send each app's new requests where its
routing table says, and prove it.

The controller computes every app's ``AppTable`` (weights per revision, header routes,
draining replicas, a blue-green preview listener) from its status; the router applies it to
a data plane and returns once the data plane runs it, or raises. That read-back is Argo
Rollouts' *VerifyWeight*: a rollout never takes its next step on a weight it only asked for.
The built-in proxy is ``routing/builtin.py``; a Gateway API router is another module with
the same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from rollwise.routing.table import AppTable, Table

__all__ = ["ReplicaTraffic", "ReplicaWatcher", "TrafficRouter"]


@dataclass(frozen=True, slots=True)
class ReplicaTraffic:
    """What the data plane knows of one replica: requests in flight, passive health, and
    (draining, A2A) the conversations asked about lately that it holds."""

    in_flight: int = 0
    ejected: bool = False
    conversations: int = 0


# (address, ejected): the data plane's passive health took a replica out, or back in
ReplicaWatcher = Callable[[str, bool], None]


class TrafficRouter(Protocol):
    async def start(self) -> bool:
        """Start or adopt the data plane and continue from the table it runs; ``True`` when
        the data plane is new."""

    async def set_routes(self, app: str, routes: AppTable | None) -> bool:
        """Make ``app``'s routes these (``None``: none); ``True`` when something was applied.
        Returns once the data plane runs them (verified), else raises ``DataPlaneError``."""

    def problem(self, app: str) -> str:
        """Why the data plane cannot serve ``app`` as asked ('' when it does)."""

    async def applied(self) -> Table:
        """The table the data plane runs, read back from it."""

    async def replicas(self) -> dict[str, ReplicaTraffic]:
        """Per replica address, as the data plane counts it now."""

    @property
    def generation(self) -> int:
        """The last generation the controller numbered."""

    async def run(self) -> None:
        """Supervise the data plane until cancelled (restart it, re-apply, retry listeners)."""

    async def stop(self) -> None:
        """Stop the data plane (``rollwise down``)."""

    async def aclose(self) -> None:
        """Release connections."""
