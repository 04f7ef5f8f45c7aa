"""The persisted status of one app's rollout: what a reconcile pass reads and writes back.

Phases are Argo Rollouts' (Progressing, Paused, Healthy, Degraded) so that its users read
them without a manual.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

__all__ = ["Phase", "Retiring", "RolloutStatus"]


class Phase(StrEnum):
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    HEALTHY = "Healthy"
    DEGRADED = "Degraded"


class Retiring(BaseModel):
    """A revision that no longer gets new requests and is stopped once drained."""

    revision: int
    since: float
    deadline: float


class RolloutStatus(BaseModel):
    phase: Phase = Phase.PROGRESSING
    message: str = ""
    strategy: str = "canary"
    stable: int | None = None
    canary: int | None = None
    canary_started: float | None = None
    weights: dict[int, int] = Field(default_factory=dict)
    retiring: list[Retiring] = Field(default_factory=list)
    step: int = 0
    step_count: int = 0
    updated: float = 0.0

    def revisions(self) -> set[int]:
        """Every revision this status keeps running: stable, canary and the retiring ones."""
        running = {n for n in (self.stable, self.canary) if n is not None}
        return running | {r.revision for r in self.retiring}
