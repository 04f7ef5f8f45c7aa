"""The blue-green strategy (Argo Rollouts' names): preview ready → gates → pre-promotion
analysis → promotion (automatic, or a pause until ``promote``) → full capacity → swap.

The preview runs with ``previewReplicaCount`` replicas on ``previewListen`` (and for the
override header), and takes no live request until the swap, which moves every new request at
once. What follows the swap (post-promotion analysis and smoke tests, with the old active
kept warm to switch back to) is ``verify``.
"""

from __future__ import annotations

from rollwise.controller.context import PassContext
from rollwise.controller.decisions import WAIT, Abort, Decision, Promote, Wording, judged
from rollwise.controller.scaling import capacity
from rollwise.controller.state import RevisionInfo
from rollwise.controller.strategies.common import before_traffic, judge
from rollwise.spec.models import BlueGreenStrategy
from rollwise.words import EventKind, PauseReason, Phase

__all__ = ["BlueGreen"]

PRE = Wording.named("pre-promotion analysis")


def _spec(revision: RevisionInfo) -> BlueGreenStrategy:
    blue_green = revision.spec.strategy.blue_green
    assert blue_green is not None  # strategy_for chose this strategy for it
    return blue_green


class BlueGreen:
    def replicas(self, ctx: PassContext, revision: RevisionInfo) -> int:
        """The preview's count until the swap is asked for, then full capacity."""
        status, full = ctx.status, capacity(ctx.status, revision.spec)
        if status.promote_requested and status.preview_since is not None:
            return full
        return _spec(revision).preview_replica_count or full

    async def step(self, ctx: PassContext, revision: RevisionInfo) -> Decision:
        status = ctx.status
        blue_green = _spec(revision)
        number = revision.number
        if status.preview_since is None:
            ready = ctx.health(number).ready
            preview = blue_green.preview_replica_count or capacity(status, revision.spec)
            if ready < preview:
                ctx.say(f"starting the preview: {ready}/{preview} ready")
                return WAIT
            status.preview_since = ctx.now
            status.step_started = ctx.now
            ctx.mark()
            where = blue_green.preview_listen or "the override header"
            ctx.emit(
                EventKind.PREVIEW_READY, f"revision {number} is ready on {where}", number, None
            )
        if not status.skip_steps:
            gate = before_traffic(ctx, "preview", revision)
            if gate is not None:
                return gate
        analysis = blue_green.pre_promotion_analysis
        if analysis is not None and not status.skip_steps and status.pause_reason is None:
            verdict = await judge(
                ctx,
                "prePromotion",
                "prePromotion",
                blue_green.analysis,
                analysis,
                number,
                status.stable,
                status.preview_since,
            )
            decision = judged(
                ctx,
                verdict,
                number,
                PRE,
                "wait" if blue_green.analysis.on_inconclusive == "wait" else "pause",
                Abort,
                ctx.analyses.next_second(),
            )
            if decision is not None:
                return decision
            status.skip_steps = True  # passed: not again
            ctx.mark()
        if status.pause_reason is not None:
            return WAIT
        if not status.promote_requested:
            if not blue_green.auto_promotion_enabled:
                status.pause_reason = PauseReason.BLUE_GREEN
                status.phase = Phase.PAUSED
                status.message = "BlueGreenPause: the preview waits for `rollwise promote`"
                ctx.mark()
                ctx.emit(EventKind.ROLLOUT_PAUSED, status.message, number, None)
                return WAIT
            wait = blue_green.auto_promotion_seconds or 0.0
            if ctx.now < status.preview_since + wait:
                ctx.say(f"auto-promotion in {wait:g}s")
                ctx.wake_by(status.preview_since + wait)
                return WAIT
            status.promote_requested = True
            ctx.mark()
        return Promote()
