"""What both strategies do the same way: gate a revision before its first request, judge an
analysis, name a failing scheduled check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollwise.controller.context import PassContext
from rollwise.controller.decisions import WAIT, Abort, Decision
from rollwise.controller.release_gates import gates_apply
from rollwise.controller.state import RevisionInfo
from rollwise.smoke import TestResult
from rollwise.spec.models import AnalysisSettings, AnalysisStep

if TYPE_CHECKING:
    from rollwise.analysis.run import Verdict

__all__ = ["before_traffic", "failing_check", "judge"]


def before_traffic(ctx: PassContext, key: str, revision: RevisionInfo) -> Decision | None:
    """The card check and the smoke tests on the revision's own replicas, against the stable
    revision's card, then the pre-rollout gates; ``None`` once they passed (each runs once
    per rollout)."""
    status = ctx.status
    stable = status.stable
    baseline = None
    if stable is not None and stable != revision.number:
        baseline = (ctx.revision(stable), ctx.health(stable))
    gate = ctx.checks.before_traffic(status, key, revision, ctx.health(revision.number), baseline)
    if gate.state == "wait":
        ctx.say(gate.detail)
        return WAIT
    if gate.state == "fail":
        return Abort(gate.reason, gate.detail)
    return ctx.checks.hooks.pre_rollout(ctx, revision) if gates_apply(status) else None


def failing_check(ctx: PassContext, since: float) -> str | None:
    """Why a critical scheduled smoke test fails on the listener, if it ran after ``since``
    and failed (a failed verdict: the rollout aborts, or switches back)."""
    result: TestResult | None = ctx.monitor.failing_since(since)
    if result is None:
        return None
    return (
        f"scheduled smoke test {result.test_name} failed on {result.target} during the "
        f"rollout: {result.message}"
    )


async def judge(
    ctx: PassContext,
    key: str,
    kind: str,
    settings: AnalysisSettings,
    step: AnalysisStep,
    revision: int,
    baseline: int | None,
    since: float,
    *,
    judges: bool = True,
) -> Verdict:
    """The verdict so far of the analysis run ``<revision>/<key>``, fed what is new."""
    return await ctx.analyses.judge(
        f"{revision}/{key}", kind, settings, step, revision, baseline, since, judges=judges
    )
