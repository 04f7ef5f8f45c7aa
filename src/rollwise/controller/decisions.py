"""What a strategy's pass decides, and the one place where an analysis verdict becomes one.

A strategy moves the rollout's own fields (step, pause, weights, scale) on the context and
hands back a decision for everything that ends or turns the rollout: ``Promote`` (the
revision takes every new request), ``Abort`` (all traffic back to stable, with the reason for
the history and the evidence in the message), ``Complete`` and ``SwitchBack`` (the verdict
of the checks after a promotion). The worker carries them out with ``transitions``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from rollwise.controller.context import PassContext
from rollwise.words import EventKind, PauseReason, Phase, Reason

if TYPE_CHECKING:
    from rollwise.analysis.run import Verdict

__all__ = [
    "WAIT",
    "Abort",
    "Complete",
    "Decision",
    "Promote",
    "SwitchBack",
    "Wait",
    "judged",
]


@dataclass(frozen=True, slots=True)
class Wait:
    """Nothing more this pass (the context says what changed and when to look again)."""


@dataclass(frozen=True, slots=True)
class Promote:
    """Every step is done: the revision takes every new request once at full capacity."""


@dataclass(frozen=True, slots=True)
class Abort:
    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class Complete:
    """The checks after a promotion passed: the rollout is over."""


@dataclass(frozen=True, slots=True)
class SwitchBack:
    """A check after a promotion failed: the previous revision takes traffic again."""

    reason: Reason
    message: str


Decision = Wait | Promote | Abort | Complete | SwitchBack
WAIT = Wait()

Inconclusive = Literal["pause", "wait", "accept"]


@dataclass(frozen=True, slots=True)
class Wording:
    """How one kind of analysis speaks in status messages and events."""

    waiting: str  # "analysing" -> "analysing: <detail>"
    judged: str  # "analysis" -> "analysis passed: <detail>" / "analysis failed: <detail>"
    still: str  # while an inconclusive run keeps judging

    @classmethod
    def named(cls, name: str) -> Wording:
        """An analysis called ``name`` all along (``pre-promotion analysis: …``)."""
        return cls(name, name, f"{name} inconclusive, still judging")


def judged(
    ctx: PassContext,
    verdict: Verdict,
    revision: int,
    wording: Wording,
    inconclusive: Inconclusive,
    fail: Callable[[Reason, str], Decision],
    next_second: float,
) -> Decision | None:
    """Turn a verdict into what happens next; ``None`` when the rollout may go on (passed, or
    an inconclusive end that ``accept`` takes)."""
    data = verdict.as_json()
    detail = verdict.detail
    if verdict.outcome == "wait":
        ctx.say(f"{wording.waiting}: {detail}")
        ctx.wake_by(next_second)
        return WAIT
    if verdict.outcome == "fail":
        ctx.emit(EventKind.ANALYSIS_FAILED, f"{wording.judged} failed: {detail}", revision, data)
        return fail(Reason.ANALYSIS, detail)
    if verdict.outcome == "pass":
        ctx.emit(EventKind.ANALYSIS_PASSED, f"{wording.judged} passed: {detail}", revision, data)
        return None
    if inconclusive == "accept":
        message = f"{wording.judged} inconclusive: {detail}"
        ctx.emit(EventKind.ANALYSIS_INCONCLUSIVE, message, revision, data)
        return None
    if inconclusive == "wait":
        ctx.say(f"{wording.still}: {detail}")
        ctx.wake_by(next_second)
        return WAIT
    status = ctx.status
    status.pause_reason = PauseReason.INCONCLUSIVE
    status.phase = Phase.PAUSED
    status.message = f"AnalysisInconclusive: {detail}; promote or abort"
    ctx.mark()
    ctx.emit(EventKind.ANALYSIS_INCONCLUSIVE, status.message, revision, data)
    return WAIT
