"""The canary strategy as ordered steps over a persisted status (Argo's rollout/canary.go).

One call of ``CanaryPass.run`` looks at the status once and moves it at most as far as the
outside world allows: each step either completes (the next one starts in the same pass) or
says what it waits for. Nothing here touches processes or routes; the worker persists the
status and then applies it, so a controller killed between two lines resumes from the last
saved status.

Capacity before traffic: stable keeps all its replicas until promotion, and the canary is
scaled for a weight (``setCanaryScale``, else the weight's share of ``spec.replicas``) and
ready before that weight is routed to it. An abort is therefore only a routing change.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rollwise.analysis import Verdict
from rollwise.backends.local import RevisionHealth
from rollwise.controller.status import CanaryScale, HeaderRoute, Phase, RolloutStatus
from rollwise.spec.models import AnalysisStep, RolloutSpec, Step

__all__ = [
    "AnalysisFailure",
    "CanaryPass",
    "Emit",
    "Judge",
    "canary_replicas",
]

Emit = Callable[[str, str, dict[str, Any] | None], None]
# (step, its index, when it started) -> the analysis run's verdict so far
Judge = Callable[[AnalysisStep, int, float], Awaitable[Verdict]]
PAUSE_STEP = "CanaryPauseStep"


def canary_replicas(status: RolloutStatus, spec: RolloutSpec, weight: int | None = None) -> int:
    """How many canary replicas must be ready for ``weight`` (default: the current weight)."""
    scale = status.canary_scale
    if scale is not None and scale.replicas is not None:
        return scale.replicas
    share = scale.weight if scale is not None and scale.weight is not None else None
    if share is None:
        share = status.canary_weight() if weight is None else weight
    return max(1, math.ceil(spec.replicas * share / 100))


@dataclass
class CanaryPass:
    """One reconcile pass of a canary rollout whose replicas exist (the worker checked)."""

    status: RolloutStatus
    spec: RolloutSpec
    steps: list[Step]
    health: RevisionHealth
    now: float
    emit: Emit
    judge: Judge
    changed: bool = False
    messages: list[str] = field(default_factory=list)

    async def run(self) -> str:
        """Advance through the steps; returns ``"promote"`` when all are done, else ``"wait"``."""
        status = self.status
        if status.pause_reason in ("user", "inconclusive"):
            return "wait"  # until resume, or promote (which completes the step)
        while status.step < len(self.steps):
            step = self.steps[status.step]
            if not await self._step(step):
                return "wait"
            name = step.name or f"{step.kind} #{status.step + 1}"
            status.step += 1
            status.step_started = self.now
            self.changed = True
            self.emit(
                "StepCompleted",
                f"step {status.step}/{len(self.steps)} ({name}) completed",
                {"step": status.step, "step_kind": step.kind},
            )
        return "promote"

    async def _step(self, step: Step) -> bool:
        status = self.status
        if status.step_started is None:
            status.step_started = self.now
            self.changed = True
        if step.set_weight is not None:
            return self._set_weight(step.set_weight)
        if step.pause is not None:
            return self._pause(step.pause.duration)
        if step.analysis is not None:
            return await self._analysis(step.analysis)
        if step.set_canary_scale is not None:
            given = step.set_canary_scale
            if given.match_traffic_weight:
                status.canary_scale = None
            else:
                status.canary_scale = CanaryScale(replicas=given.replicas, weight=given.weight)
            return True
        if step.set_header_route is not None:
            route = step.set_header_route
            match = [(m.header_name, m.header_value) for m in route.match]
            status.header_routes = [r for r in status.header_routes if r.name != route.name]
            status.header_routes.append(HeaderRoute(name=route.name, match=match))
            return True
        raise AssertionError(f"unknown step kind {step.kind}")  # the spec model forbids it

    def _set_weight(self, weight: int) -> bool:
        status = self.status
        needed = canary_replicas(status, self.spec, weight)
        if self.health.ready < needed:
            self._say(f"scaling the canary to {needed} ready replicas before weight {weight}")
            return False
        status.set_weights(weight)
        return True

    def _pause(self, duration: float | None) -> bool:
        status = self.status
        started = status.step_started or self.now
        if duration is not None and self.now - started >= duration:
            if status.pause_reason == PAUSE_STEP:
                status.pause_reason = None
                status.phase = Phase.PROGRESSING
            return True
        if status.pause_reason != PAUSE_STEP:
            status.pause_reason = PAUSE_STEP
            status.phase = Phase.PAUSED
            status.message = PAUSE_STEP + (f" ({duration:g}s)" if duration is not None else "")
            self.changed = True
            self.emit("RolloutPaused", status.message, None)
        return False

    async def _analysis(self, step: AnalysisStep) -> bool:
        status = self.status
        started = status.step_started or self.now
        verdict = await self.judge(step, status.step, started)
        if verdict.outcome == "wait":
            self._say(f"analysing: {verdict.detail}")
            return False
        data = verdict.as_json()
        if verdict.outcome == "pass":
            self.emit("AnalysisPassed", f"analysis passed: {verdict.detail}", data)
            return True
        if verdict.outcome == "fail":
            self.emit("AnalysisFailed", f"analysis failed: {verdict.detail}", data)
            raise AnalysisFailure(verdict.detail)
        if self.spec.strategy.analysis_settings.on_inconclusive == "wait":
            self._say(f"analysis inconclusive, still judging: {verdict.detail}")
            return False
        status.pause_reason = "inconclusive"
        status.phase = Phase.PAUSED
        status.message = f"AnalysisInconclusive: {verdict.detail}; promote or abort"
        self.changed = True
        self.emit("AnalysisInconclusive", status.message, data)
        return False

    def _say(self, message: str) -> None:
        if self.status.message != message:
            self.status.message = message
            self.changed = True


class AnalysisFailure(Exception):
    """The inline analysis judged the canary bad: the worker aborts the rollout."""
