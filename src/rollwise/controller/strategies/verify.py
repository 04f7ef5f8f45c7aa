"""After a promotion that has checks: the new revision takes every request while the previous
one stays warm (``status.verifying``); scheduled smoke tests, the ``postPromotion`` smoke
tests on the live listener and a blue-green ``postPromotionAnalysis`` must pass, else traffic
switches back. Both strategies end this way.
"""

from __future__ import annotations

from rollwise.controller.context import PassContext
from rollwise.controller.decisions import WAIT, Complete, Decision, SwitchBack, Wording, judged
from rollwise.controller.state import RevisionInfo
from rollwise.controller.strategies.common import failing_check, judge
from rollwise.words import Reason

__all__ = ["needs_verification", "verify"]

POST = Wording.named("post-promotion analysis")


def needs_verification(revision: RevisionInfo) -> bool:
    """Whether promoting ``revision`` keeps the previous one warm until checks pass."""
    blue_green = revision.spec.strategy.blue_green
    post = blue_green.post_promotion_analysis if blue_green is not None else None
    return bool(revision.spec.smoke_tests) or post is not None


async def verify(ctx: PassContext, revision: RevisionInfo) -> Decision:
    status = ctx.status
    since = status.step_started or ctx.now
    failing = failing_check(ctx, since)
    if failing is not None:
        return SwitchBack(Reason.SMOKE, failing)
    gate = ctx.checks.after_promotion(status, revision)
    if gate.state == "wait":
        ctx.say(gate.detail)
        return WAIT
    if gate.state == "fail":
        return SwitchBack(gate.reason, gate.detail)
    blue_green = revision.spec.strategy.blue_green
    analysis = blue_green.post_promotion_analysis if blue_green is not None else None
    if analysis is None:
        return Complete()
    # after the swap the old revision serves nothing: no concurrent baseline, so only the
    # guardrails judge (an inconclusive end still completes the promotion)
    verdict = await judge(
        ctx,
        "postPromotion",
        "postPromotion",
        revision.spec.analysis_settings,
        analysis,
        revision.number,
        None,
        since,
        judges=False,
    )
    decision = judged(
        ctx, verdict, revision.number, POST, "accept", SwitchBack, ctx.analyses.next_second()
    )
    return decision or Complete()
