"""The canary strategy: ordered steps over the persisted status (Argo's rollout/canary.go).

One pass looks at the status once and moves it at most as far as the outside world allows:
each step either completes (the next one starts in the same pass) or says what it waits for.
Nothing here touches processes or routes; the worker persists the status and then applies it,
so a controller killed between two lines resumes from the last saved status.

Capacity before traffic: stable keeps all its replicas until promotion, and the canary is
scaled for a weight (``setCanaryScale``, else the weight's share of the app's capacity:
``spec.replicas`` or the autoscaler's count) and
ready before that weight is routed to it. An abort is therefore only a routing change.
"""

from __future__ import annotations

import math

from rollwise.controller.context import PassContext
from rollwise.controller.decisions import WAIT, Abort, Decision, Promote, Wording, judged
from rollwise.controller.release_gates import gates_apply
from rollwise.controller.scaling import capacity
from rollwise.controller.state import RevisionInfo
from rollwise.controller.status import CanaryScale, HeaderRoute, RolloutStatus
from rollwise.controller.strategies.common import before_traffic, failing_check, judge
from rollwise.spec.models import AnalysisStep, RolloutSpec, Step
from rollwise.spec.models import CanaryStrategy as CanarySpec
from rollwise.words import EventKind, PauseReason, Phase, Reason

__all__ = ["BACKGROUND", "Canary", "canary_replicas", "steps_of"]

# Background analysis only ever fails a rollout: no time limit, no pass.
BACKGROUND = AnalysisStep(until="pass", max_duration=math.inf)
INLINE = Wording("analysing", "analysis", "analysis inconclusive, still judging")
BACKGROUND_WORDS = Wording.named("background analysis")


def canary_replicas(status: RolloutStatus, spec: RolloutSpec, weight: int | None = None) -> int:
    """How many canary replicas must be ready for ``weight`` (default: the current weight)."""
    scale = status.canary_scale
    if scale is not None and scale.replicas is not None:
        return scale.replicas
    share = scale.weight if scale is not None and scale.weight is not None else None
    if share is None:
        share = status.canary_weight() if weight is None else weight
    return max(1, math.ceil(capacity(status, spec) * share / 100))


def steps_of(status: RolloutStatus, revision: RevisionInfo) -> list[Step]:
    """The canary's steps; none for a first release (nothing to compare with, as in Argo
    Rollouts), a rollback to a revision that no longer runs, or a blue-green revision."""
    if status.stable is None or status.skip_steps or revision.blue_green:
        return []
    return (revision.spec.strategy.canary or CanarySpec()).steps


class Canary:
    def replicas(self, ctx: PassContext, revision: RevisionInfo) -> int:
        """For the weight the current step is about to set, or all of them once the steps
        are done (promotion needs full capacity)."""
        status, spec = ctx.status, revision.spec
        steps = steps_of(status, revision)
        if status.step >= len(steps):
            return capacity(status, spec)
        upcoming = steps[status.step].set_weight
        now = canary_replicas(status, spec)
        return max(now, canary_replicas(status, spec, upcoming)) if upcoming is not None else now

    async def step(self, ctx: PassContext, revision: RevisionInfo) -> Decision:
        status = ctx.status
        if status.manual_weight is not None:
            return self._hand_set(ctx, revision, status.manual_weight)
        if not status.skip_steps:
            gate = before_traffic(ctx, "preTraffic", revision)
            if gate is not None:
                return gate
            failing = failing_check(ctx, status.canary_started or ctx.now)
            if failing is not None:
                return Abort(Reason.SMOKE, failing)
        background = await self._background(ctx, revision)
        if background is not None:
            return background
        if status.pause_reason in (PauseReason.USER, PauseReason.INCONCLUSIVE):
            return WAIT  # until resume, or promote (which completes the step)
        steps = steps_of(status, revision)
        while status.step < len(steps):
            step = steps[status.step]
            if status.step_started is None:
                status.step_started = ctx.now
                ctx.mark()
            decision = await self._step(ctx, revision, step)
            if decision is not None:
                return decision
            name = step.name or f"{step.kind} #{status.step + 1}"
            status.step += 1
            status.step_started = ctx.now
            ctx.mark()
            ctx.emit(
                EventKind.STEP_COMPLETED,
                f"step {status.step}/{len(steps)} ({name}) completed",
                revision.number,
                {"step": status.step, "step_kind": step.kind},
            )
        return Promote()

    def _hand_set(self, ctx: PassContext, revision: RevisionInfo, weight: int) -> Decision:
        """A weight asked for by hand: scale for it, then route it; the steps stay paused."""
        status = ctx.status
        needed = canary_replicas(status, revision.spec, weight)
        if ctx.health(revision.number).ready < needed:
            ctx.say(f"scaling the canary to {needed} for weight {weight}")
            return WAIT
        status.set_weights(weight)
        status.manual_weight = None
        ctx.mark()
        return WAIT

    async def _step(self, ctx: PassContext, revision: RevisionInfo, step: Step) -> Decision | None:
        """``None`` when the step completed; else what the rollout waits for."""
        status = ctx.status
        if step.set_weight is not None:
            if step.set_weight > status.canary_weight() and gates_apply(status):
                point = f"step {status.step + 1}"
                held = ctx.checks.hooks.confirm(ctx, revision, "confirm-traffic-increase", point)
                if held is not None:
                    return held
            needed = canary_replicas(status, revision.spec, step.set_weight)
            if ctx.health(revision.number).ready < needed:
                ctx.say(
                    f"scaling the canary to {needed} ready replicas before weight {step.set_weight}"
                )
                return WAIT
            status.set_weights(step.set_weight)
            ctx.mark()
            return None
        if step.pause is not None:
            return self._pause(ctx, revision, step.pause.duration)
        if step.analysis is not None:
            return await self._analysis(ctx, revision, step.analysis)
        if step.set_canary_scale is not None:
            given = step.set_canary_scale
            if given.match_traffic_weight:
                status.canary_scale = None
            else:
                status.canary_scale = CanaryScale(replicas=given.replicas, weight=given.weight)
            ctx.mark()
            return None
        if step.set_header_route is not None:
            route = step.set_header_route
            match = [(m.header_name, m.header_value) for m in route.match]
            status.header_routes = [r for r in status.header_routes if r.name != route.name]
            status.header_routes.append(HeaderRoute(name=route.name, match=match))
            ctx.mark()
            return None
        raise AssertionError(f"unknown step kind {step.kind}")  # the spec model forbids it

    def _pause(
        self, ctx: PassContext, revision: RevisionInfo, duration: float | None
    ) -> Decision | None:
        status = ctx.status
        started = status.step_started or ctx.now
        if duration is not None and ctx.now >= started + duration:
            if status.pause_reason == PauseReason.CANARY_STEP:
                status.pause_reason = None
                status.phase = Phase.PROGRESSING
                ctx.mark()
            return None
        if duration is not None:
            ctx.wake_by(started + duration)
        if status.pause_reason != PauseReason.CANARY_STEP:
            status.pause_reason = PauseReason.CANARY_STEP
            status.phase = Phase.PAUSED
            status.message = PauseReason.CANARY_STEP + (
                f" ({duration:g}s)" if duration is not None else ""
            )
            ctx.mark()
            ctx.emit(EventKind.ROLLOUT_PAUSED, status.message, revision.number, None)
        return WAIT

    async def _analysis(
        self, ctx: PassContext, revision: RevisionInfo, step: AnalysisStep
    ) -> Decision | None:
        status = ctx.status
        settings = revision.spec.analysis_settings
        index = status.step
        verdict = await judge(
            ctx,
            f"step{index}",
            f"step {index}",
            settings,
            step,
            revision.number,
            status.stable,
            status.step_started or ctx.now,
        )
        return judged(
            ctx,
            verdict,
            revision.number,
            INLINE,
            "wait" if settings.on_inconclusive == "wait" else "pause",
            Abort,
            ctx.analyses.next_second(),
        )

    async def _background(self, ctx: PassContext, revision: RevisionInfo) -> Decision | None:
        """Background analysis from ``analysis.startingStep`` to promotion: only a failure
        acts (the rollout aborts)."""
        status = ctx.status
        settings = revision.spec.analysis_settings
        start = settings.starting_step
        if start is None or status.skip_steps or status.step < start or status.stable is None:
            return None
        if status.background_since is None:
            status.background_since = ctx.now
            ctx.mark()
            message = f"background analysis from step {start}"
            ctx.emit(EventKind.ANALYSIS_STARTED, message, revision.number, None)
        verdict = await judge(
            ctx,
            "background",
            "background",
            settings,
            BACKGROUND,
            revision.number,
            status.stable,
            status.background_since,
        )
        ctx.wake_by(ctx.analyses.next_second())
        if verdict.outcome != "fail":
            return None
        next_second = ctx.analyses.next_second()
        return judged(ctx, verdict, revision.number, BACKGROUND_WORDS, "accept", Abort, next_second)
