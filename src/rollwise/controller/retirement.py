"""The end of a revision's life: warm until its delay ends, then drain, stop, and leave the
history once it is older than ``revisionHistoryLimit``.

A replaced stable revision stays *warm* (running, weight 0) for ``scaleDownDelaySeconds`` so
that ``undo`` is only a routing change; the previous one is kept while a promotion is being
verified, whatever its delay. A *retiring* revision gets no new request; it is stopped once
the data plane reports nothing in flight on its replicas (at the earliest ``DRAIN_MIN_S``
after it stopped getting requests, at the latest at its stop grace period). An A2A app's
retiring revision also waits for its open conversations (``traffic.affinity``: a task
submitted, working or waiting for input): while one it holds was asked about within
``idle``, at most ``drainTimeout`` after it began to retire, it keeps answering them.
"""

from __future__ import annotations

from rollwise.backends.base import Backend
from rollwise.controller.context import PassContext
from rollwise.controller.status import Retiring
from rollwise.controller.transitions import retire_later
from rollwise.routing.base import TrafficRouter
from rollwise.words import EventKind

__all__ = [
    "CONVERSATION_POLL_S",
    "DRAIN_MIN_S",
    "DRAIN_POLL_S",
    "conversation_drain",
    "delete_logs",
    "expire_warm",
    "prune_history",
    "stop_drained",
]

DRAIN_MIN_S = 0.3
DRAIN_POLL_S = 0.1
CONVERSATION_POLL_S = 1.0  # conversations go quiet in seconds; in-flight requests in ms


def conversation_drain(ctx: PassContext) -> float:
    """How long a retiring revision of this app may wait for its conversations."""
    spec = ctx.spec
    affinity = spec.traffic.affinity
    return affinity.drain_timeout if spec.speaks_a2a and affinity.enabled else 0.0


def expire_warm(ctx: PassContext) -> None:
    """Warm revisions whose delay ended start retiring."""
    status = ctx.status
    for warm in [w for w in status.warm if w.revision != status.verifying]:
        if ctx.now >= warm.until:
            status.warm.remove(warm)
            retire_later(ctx, warm.revision)
        else:
            ctx.wake_by(warm.until)


async def stop_drained(ctx: PassContext, router: TrafficRouter) -> list[int]:
    """Stop retiring revisions that drained (or whose grace period ended); their numbers."""
    status = ctx.status
    if not status.retiring:
        return []
    traffic = await router.replicas()
    done: list[Retiring] = []
    for item in status.retiring:
        if ctx.now < item.since + DRAIN_MIN_S:
            ctx.wake_by(item.since + DRAIN_MIN_S)
            continue
        addresses = ctx.backend.addresses(ctx.app, item.revision, ready=False)
        busy = sum(traffic[a].in_flight for a in addresses if a in traffic)
        if busy and ctx.now < item.deadline:
            ctx.wake_by(min(ctx.now + DRAIN_POLL_S, item.deadline))
            continue
        talking = sum(traffic[a].conversations for a in addresses if a in traffic)
        until = item.since + conversation_drain(ctx)
        if talking and ctx.now < until:
            ctx.wake_by(min(ctx.now + CONVERSATION_POLL_S, until))
            continue
        await ctx.backend.stop(ctx.app, item.revision)
        done.append(item)
        message = f"revision {item.revision} stopped"
        ctx.emit(EventKind.REVISION_STOPPED, message, item.revision, None)
    if done:
        status.retiring = [r for r in status.retiring if r not in done]
        ctx.mark()
    return [item.revision for item in done]


def delete_logs(backend: Backend, app: str, revision: int) -> list[str]:
    """Remove a revision's log files, rotated ones included; their paths."""
    removed = []
    for path in backend.log_paths(app, revision):
        for rotated in [path, *path.parent.glob(path.name + ".*")]:
            rotated.unlink(missing_ok=True)
            removed.append(str(rotated))
    return removed


def prune_history(ctx: PassContext) -> list[int]:
    """Keep ``revisionHistoryLimit`` stopped revisions; the older ones leave the store with
    their analyses, kept cards and logs. Their numbers."""
    limit = ctx.spec.revision_history_limit
    running = ctx.status.revisions()
    old = sorted(r.number for r in ctx.store.revisions(ctx.app) if r.number not in running)
    pruned = old[: max(0, len(old) - limit)]
    for number in pruned:
        ctx.store.delete_revision(ctx.app, number)
        ctx.store.delete_analyses(ctx.app, number)
        ctx.store.delete_card(ctx.app, number)
        ctx.state.forget(number)
        ctx.analyses.forget(number)
        delete_logs(ctx.backend, ctx.app, number)
        ctx.emit(EventKind.REVISION_PRUNED, f"revision {number} left the history", number, None)
    return pruned
