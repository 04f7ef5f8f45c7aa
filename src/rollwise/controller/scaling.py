"""How many replicas a revision runs, and taking replicas away without failing a request.

``capacity`` is the app's replica count: ``spec.replicas``, or the autoscaler's count (kept
in the status, within ``minReplicas``..``maxReplicas``) when the spec has ``autoscaling``.
Stable runs it; a canary runs its weight's share of it, so canary and stable scale together.

``Shrinks``: when a running revision needs fewer replicas than the backend runs, the ones
that go (the highest indexes, which the backend stops first) are marked draining in the
routes (no new request; in-flight ones finish), and the backend is told the smaller count
once the data plane reports nothing in flight on them (at the earliest ``DRAIN_MIN_S`` after
they stopped getting requests, at the latest after the template's stop grace period) and,
for an A2A app, none of their conversations was asked about lately (at the latest
``traffic.affinity.drainTimeout`` after they began to drain), as a retiring revision's.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollwise.backends.base import Backend, Workload
from rollwise.controller.retirement import CONVERSATION_POLL_S, DRAIN_MIN_S, DRAIN_POLL_S
from rollwise.controller.status import RolloutStatus
from rollwise.routing.base import TrafficRouter
from rollwise.spec.models import RolloutSpec

__all__ = ["Shrink", "Shrinks", "capacity"]


def capacity(status: RolloutStatus, spec: RolloutSpec) -> int:
    scaling = spec.autoscaling
    if scaling is None:
        return spec.replicas
    wanted = status.scaled if status.scaled is not None else spec.replicas
    return min(max(wanted, scaling.min_replicas), scaling.max_replicas)


@dataclass
class Shrink:
    keep: int
    since: float
    workload: Workload


class Shrinks:
    def __init__(self, app: str, backend: Backend) -> None:
        self.app = app
        self.backend = backend
        self.pending: dict[int, Shrink] = {}

    def want(self, workload: Workload, replicas: int, now: float) -> None:
        """Run ``replicas`` of the workload's revision: at once when it is more (or the
        same), after the excess drained when it is fewer."""
        number = workload.revision
        running = self.backend.health(self.app, number).desired
        if 0 < replicas < running:
            shrink = self.pending.get(number)
            if shrink is None or shrink.keep != replicas:
                self.pending[number] = Shrink(replicas, now, workload)
            return
        self.pending.pop(number, None)
        self.backend.ensure(workload, replicas)

    def draining(self, number: int) -> set[str]:
        """The addresses of ``number``'s replicas that are on their way out."""
        shrink = self.pending.get(number)
        if shrink is None:
            return set()
        health = self.backend.health(self.app, number)
        return {r.address for r in health.replicas if r.index >= shrink.keep}

    async def finish(
        self, router: TrafficRouter, now: float, conversations_s: float = 0.0
    ) -> float | None:
        """Scale down the revisions whose leaving replicas drained; when to look again.
        ``conversations_s``: how long their A2A conversations may hold them."""
        if not self.pending:
            return None
        traffic = await router.replicas()
        again: float | None = None
        for number, shrink in list(self.pending.items()):
            grace = shrink.workload.template.stop_grace_period
            leaving = [traffic[a] for a in self.draining(number) if a in traffic]
            busy = sum(t.in_flight for t in leaving)
            talking = sum(t.conversations for t in leaving)
            wake = None
            if now < shrink.since + DRAIN_MIN_S or (busy and now < shrink.since + grace):
                wake = max(shrink.since + DRAIN_MIN_S, now + DRAIN_POLL_S)
            elif talking and now < shrink.since + conversations_s:
                wake = min(now + CONVERSATION_POLL_S, shrink.since + conversations_s)
            if wake is not None:
                again = wake if again is None else min(again, wake)
                continue
            del self.pending[number]
            self.backend.ensure(shrink.workload, shrink.keep)
        return again

    def forget(self, number: int) -> None:
        self.pending.pop(number, None)
