"""The persisted status of one app's rollout: what a reconcile pass reads and writes back.

Phases and pause reasons are the types of ``rollwise.words`` (Argo Rollouts' words), so that
its users read them without a manual.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from rollwise.words import PauseReason, Phase

__all__ = ["CanaryScale", "HeaderRoute", "Retiring", "RolloutStatus", "Warm"]


class Retiring(BaseModel):
    """A revision that no longer gets new requests and is stopped once drained."""

    revision: int
    since: float
    deadline: float


class Warm(BaseModel):
    """A replaced stable revision kept running without traffic until ``until``
    (``scaleDownDelaySeconds``): an undo to it is only a routing change."""

    revision: int
    until: float


class CanaryScale(BaseModel):
    """The last ``setCanaryScale`` step: fixed replicas, a weight, or follow the traffic."""

    replicas: int | None = None
    weight: int | None = None


class HeaderRoute(BaseModel):
    """A ``setHeaderRoute`` step in force: requests matching all pairs go to the canary."""

    name: str
    match: list[tuple[str, str]]


class RolloutStatus(BaseModel):
    """One app's rollout, persisted before every action (the controller may die anywhere).

    ``step`` counts completed canary steps; ``step_started`` is when the current one began.
    ``pause_reason`` is set while paused (``PauseReason``: a ``pause`` step, a blue-green
    preview waiting for ``promote``, ``rollwise pause``, an analysis that could not decide).
    ``aborted`` keeps the aborted canary's number so that ``retry`` can start it again.
    ``skip_steps`` marks a rollback (``undo``) to a revision that is no longer running: it
    takes all traffic once ready, without steps or analysis.
    Blue-green: ``preview_since`` is when the preview became ready, ``promote_requested``
    records a ``promote`` (or auto-promotion), and ``verifying`` is the previous active
    revision while the post-promotion analysis runs (it is warm: a failure switches back).
    ``background_since`` is when background analysis (``analysis.startingStep``) began.
    ``gates_passed`` names the smoke-test gates this rollout passed (``preTraffic``,
    ``preview``, ``postPromotion``) and the release gates it opened (``gate:NAME@POINT``):
    each runs once. ``waiting_gates`` are the confirm-* gates that hold the rollout now, at
    ``waiting_point`` (``step N`` for a traffic increase, ``*`` otherwise); ``skip_gates``
    (``promote --full``, ``undo``) lets the rollout pass them all.
    ``manual_weight`` is a weight asked for by hand (the Python API's ``route_traffic``): the
    canary is scaled for it, then it is routed; the steps stay paused meanwhile.
    """

    phase: Phase = Phase.PROGRESSING
    message: str = ""
    strategy: str = "canary"
    stable: int | None = None
    canary: int | None = None
    canary_started: float | None = None
    weights: dict[int, int] = Field(default_factory=dict)
    retiring: list[Retiring] = Field(default_factory=list)
    warm: list[Warm] = Field(default_factory=list)
    step: int = 0
    step_count: int = 0
    step_started: float | None = None
    pause_reason: PauseReason | None = None
    aborted: bool = False
    skip_steps: bool = False
    skip_gates: bool = False
    scaled: int | None = None  # the autoscaler's replica count (spec.autoscaling)
    preview_since: float | None = None
    promote_requested: bool = False
    verifying: int | None = None
    manual_weight: int | None = None
    background_since: float | None = None
    canary_scale: CanaryScale | None = None
    header_routes: list[HeaderRoute] = Field(default_factory=list)
    gates_passed: list[str] = Field(default_factory=list)
    waiting_gates: list[str] = Field(default_factory=list)
    waiting_point: str = ""
    updated: float = 0.0
    phase_since: float = 0.0  # when ``phase`` last changed

    def revisions(self) -> set[int]:
        """Every revision this status keeps running: stable, canary, warm and retiring ones."""
        running = {n for n in (self.stable, self.canary) if n is not None}
        return running | {r.revision for r in self.retiring} | {w.revision for w in self.warm}

    def canary_weight(self) -> int:
        return self.weights.get(self.canary, 0) if self.canary is not None else 0

    def set_weights(self, canary_weight: int) -> None:
        """Split traffic between stable and canary (stable takes the rest)."""
        weights: dict[int, int] = {}
        if self.stable is not None:
            weights[self.stable] = 100 - canary_weight
        if self.canary is not None:
            weights[self.canary] = canary_weight if self.stable is not None else 100
        self.weights = weights
