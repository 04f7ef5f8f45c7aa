"""The moves between a rollout's states, shared by commands and passes; each written once.

start (a revision becomes the canary) → promote (it takes every request; the old stable
stays warm) → verify (with checks after promotion) → complete; or abort (all traffic back to
stable, the canary drains) and switch back (after a promotion whose checks failed). Each
changes only the status and the history; the worker persists the status before the routes
and the backend follow, so that a crash between two lines resumes from a consistent state.
"""

from __future__ import annotations

from rollwise.controller.context import PassContext
from rollwise.controller.status import Retiring, RolloutStatus, Warm
from rollwise.words import EventKind, Outcome, Phase, Reason

__all__ = [
    "abort",
    "clear_rollout",
    "complete",
    "drop_canary",
    "promote",
    "replace_stable",
    "retire_later",
    "settle",
    "start",
    "switch_back",
]


def clear_rollout(status: RolloutStatus) -> None:
    """Forget the per-rollout fields: steps, pauses, scale, routes, blue-green progress."""
    status.step = 0
    status.step_started = None
    status.pause_reason = None
    status.skip_steps = False
    status.skip_gates = False
    status.canary_scale = None
    status.header_routes = []
    status.preview_since = None
    status.promote_requested = False
    status.manual_weight = None
    status.background_since = None
    status.gates_passed = []
    status.waiting_gates = []
    status.waiting_point = ""


def start(ctx: PassContext, number: int, message: str) -> None:
    """``number`` becomes the canary (a deploy, a retry, an undo to a stopped revision)."""
    status = ctx.status
    clear_rollout(status)
    status.canary = number
    status.canary_started = ctx.now
    status.aborted = False
    status.phase = Phase.PROGRESSING
    status.message = message
    ctx.mark()


def settle(ctx: PassContext, message: str) -> None:
    """No rollout any more: Healthy."""
    status = ctx.status
    clear_rollout(status)
    status.canary = None
    status.canary_started = None
    status.phase = Phase.HEALTHY
    status.message = message
    ctx.mark()


def retire_later(ctx: PassContext, number: int) -> None:
    """``number`` gets no new request; it is stopped once drained (or its grace period ends)."""
    grace = ctx.revision(number).spec.template.stop_grace_period
    if all(r.revision != number for r in ctx.status.retiring):
        ctx.status.retiring.append(
            Retiring(revision=number, since=ctx.now, deadline=ctx.now + grace)
        )
        ctx.mark()


def drop_canary(ctx: PassContext, outcome: Outcome, reason: str) -> None:
    """Take the canary out of the routes; it drains and stops. An aborted one already is,
    and keeps its outcome."""
    status = ctx.status
    number = status.canary
    assert number is not None
    if not status.aborted:
        ctx.finish(number, outcome, reason)
        retire_later(ctx, number)
    status.canary = None
    status.aborted = False
    status.header_routes = []
    status.set_weights(0)
    ctx.mark()


def replace_stable(ctx: PassContext, number: int) -> None:
    """``number`` becomes stable at 100 %; the old stable stays warm for the app's
    ``scaleDownDelaySeconds`` as set today (an undo to an old revision keeps today's delay)."""
    status = ctx.status
    old = status.stable
    status.stable = number
    status.weights = {number: 100}
    ctx.mark()
    if old is None or old == number:
        return
    strategy = ctx.spec.strategy
    chosen = strategy.blue_green or strategy.canary
    delay = chosen.scale_down_delay_seconds if chosen is not None else 30.0
    status.warm = [w for w in status.warm if w.revision != old]
    status.warm.append(Warm(revision=old, until=ctx.now + delay))
    ctx.finish(old, Outcome.REPLACED, f"replaced by revision {number}")


def abort(ctx: PassContext, reason: Reason, message: str) -> None:
    """All new requests to stable at once; the canary keeps its number for ``retry``."""
    status = ctx.status
    number = status.canary
    assert number is not None
    status.weights = {status.stable: 100} if status.stable is not None else {}
    status.header_routes = []
    status.pause_reason = None
    status.aborted = True
    status.phase = Phase.DEGRADED
    status.message = f"RolloutAborted: {message}"
    retire_later(ctx, number)
    ctx.finish(number, Outcome.ABORTED, reason)
    ctx.emit(EventKind.ROLLOUT_ABORTED, message, number, {"reason": reason.value})
    ctx.mark()


def promote(ctx: PassContext, number: int, *, verify: bool, switched: bool) -> None:
    """``number`` takes every new request. With ``verify`` (checks after promotion) the old
    stable stays warm as ``verifying`` until they pass, and a failure switches back;
    ``switched`` says so as ``ActiveSwitched`` (blue-green's word)."""
    status = ctx.status
    old = status.stable
    started = status.canary_started or ctx.now
    replace_stable(ctx, number)
    if verify and old is not None and old != number:
        settle(ctx, f"post-promotion checks of revision {number}")
        status.phase = Phase.PROGRESSING
        status.verifying = old
        status.step_started = ctx.now
        if switched:
            version = ctx.revision(number).version
            ctx.emit(
                EventKind.ACTIVE_SWITCHED, f"revision {number} ({version}) is active", number, None
            )
        return
    complete(ctx, number, started, warm=old)


def complete(ctx: PassContext, number: int, started: float, warm: int | None = None) -> None:
    """The rollout of ``number`` is over: it is stable and Healthy."""
    status = ctx.status
    status.verifying = None
    settle(ctx, "")
    ctx.finish(number, Outcome.PROMOTED, "")
    version = ctx.revision(number).version
    message = f"revision {number} ({version}) serves 100% of requests"
    if warm is not None and warm != number:
        message += f"; revision {warm} stays warm, then drains"
    ctx.emit(
        EventKind.ROLLOUT_COMPLETED, message, number, {"duration_s": round(ctx.now - started, 3)}
    )


def switch_back(ctx: PassContext, reason: Reason, message: str) -> None:
    """A check after promotion failed: the previous revision (warm) takes traffic again."""
    status = ctx.status
    failed = status.stable
    previous = status.verifying
    assert failed is not None
    assert previous is not None
    status.warm = [w for w in status.warm if w.revision != previous]
    status.stable = previous
    status.weights = {previous: 100}
    status.verifying = None
    retire_later(ctx, failed)
    ctx.finish(failed, Outcome.ABORTED, reason)
    ctx.finish(previous, Outcome.PROMOTED, "switched back")
    status.phase = Phase.DEGRADED
    status.message = f"RolloutAborted: {message}; revision {previous} is active again"
    ctx.emit(EventKind.ROLLOUT_ABORTED, status.message, failed, {"reason": reason.value})
    ctx.mark()
