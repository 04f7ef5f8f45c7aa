"""An app's release gates (``spec.gates``, Flagger's webhook kinds) as a pass sees them.

A hook is a POST of Flagger's payload (``name``, ``namespace``, ``phase``, ``type``,
``metadata``, plus rollwise's ``revision``, ``version``, ``gate`` and ``point``); any 2xx
answer is a yes. A call runs as a task beside the loop (a pass never waits on the network)
and is asked again ``interval`` after a no. A confirm-* gate is also opened by an approval
in the store (``rollwise approve``), so it survives a controller restart; what a gate
decided goes into the status (``gates_passed``) with the rest of the rollout.

While a confirm-* gate holds, the rollout is Paused with the reason ``gate`` (a pause does
not count against ``progressDeadlineSeconds``), ``waiting_gates`` names who holds it and
each pass asks again; nothing else of the rollout moves meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import structlog

from rollwise.controller.decisions import WAIT, Abort, Decision
from rollwise.controller.state import RevisionInfo
from rollwise.controller.status import RolloutStatus
from rollwise.spec.gate import CONFIRMING, Gate, GateType
from rollwise.words import EventKind, Outcome, PauseReason, Phase, Reason

if TYPE_CHECKING:
    from rollwise.controller.context import PassContext

__all__ = ["HookAnswer", "ReleaseGates", "call_hook", "gate_key", "gates_apply", "opened_points"]

log = structlog.get_logger("rollwise.gates")

Emit = Callable[[EventKind, str, int | None, dict[str, Any] | None], None]


@dataclass(frozen=True, slots=True)
class HookAnswer:
    ok: bool
    detail: str  # "HTTP 403: not yet", "timed out after 10s", "connection refused"
    at: float


async def call_hook(gate: Gate, payload: dict[str, Any], now: Callable[[], float]) -> HookAnswer:
    """POST ``payload`` to the gate's hook: a 2xx within its timeout is a yes."""
    assert gate.url is not None
    try:
        async with httpx.AsyncClient(timeout=gate.timeout, trust_env=False) as client:
            resp = await client.post(gate.url, json=payload)
    except httpx.TimeoutException:
        return HookAnswer(False, f"timed out after {gate.timeout:g}s", now())
    except httpx.HTTPError as exc:
        return HookAnswer(
            False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, now()
        )
    text = resp.text.strip().replace("\n", " ")[:120]
    detail = f"HTTP {resp.status_code}" + (f": {text}" if text else "")
    return HookAnswer(resp.is_success, detail, now())


def gate_key(gate: Gate, point: str) -> str:
    return f"gate:{gate.name}@{point}"


def opened_points(status: RolloutStatus, gate: Gate) -> list[str]:
    """Where in this rollout ``gate`` opened (``*``, or ``step N`` for a traffic increase)."""
    prefix = gate_key(gate, "")
    return [k.removeprefix(prefix) for k in status.gates_passed if k.startswith(prefix)]


def gates_apply(status: RolloutStatus) -> bool:
    """A rollout passes its gates unless ``promote --full`` or ``undo`` skipped them, or it
    is a first release (nothing to compare with, as in Flagger's initialisation)."""
    return not status.skip_gates and status.stable is not None


def _release(status: RolloutStatus) -> None:
    """The gate pause ends: nothing holds the rollout any more."""
    status.pause_reason = None
    status.phase = Phase.PROGRESSING
    status.waiting_gates = []
    status.waiting_point = ""


class ReleaseGates:
    def __init__(self, app: str, wake: Callable[[], None], clock: Callable[[], float]) -> None:
        self.app = app
        self._wake = wake
        self._clock = clock
        # (revision, gate, point) → the call running now, and the last answer
        self._calls: dict[tuple[int, str, str], asyncio.Task[HookAnswer]] = {}
        self._answers: dict[tuple[int, str, str], HookAnswer] = {}
        self._told: set[asyncio.Task[HookAnswer]] = set()

    # what passes ask

    @staticmethod
    def of(revision: RevisionInfo, kind: GateType) -> list[Gate]:
        return [g for g in revision.spec.gates if g.type == kind]

    def holds_start(self, status: RolloutStatus, revision: RevisionInfo) -> bool:
        """A confirm-rollout gate is still shut: the new revision gets no replica yet."""
        return gates_apply(status) and any(
            gate_key(g, "*") not in status.gates_passed
            for g in self.of(revision, "confirm-rollout")
        )

    def confirm(
        self, ctx: PassContext, revision: RevisionInfo, kind: GateType, point: str = "*"
    ) -> Decision | None:
        """``None`` once every ``kind`` gate of the revision opened at ``point``; else the
        rollout holds (Paused, reason ``gate``) and the pass waits."""
        status, number = ctx.status, revision.number
        shut: list[tuple[Gate, str]] = []
        for gate in self.of(revision, kind):
            key = gate_key(gate, point)
            if key in status.gates_passed:
                continue
            opened, why = self._opened(ctx, revision, gate, point)
            if not opened:
                shut.append((gate, why))
                continue
            status.gates_passed.append(key)
            ctx.mark()
            data = {"gate": gate.name, "type": kind, "point": point, "why": why}
            ctx.emit(
                EventKind.GATE_OPENED, f"gate {gate.name} ({kind}) opened: {why}", number, data
            )
        if not shut:
            if status.pause_reason == PauseReason.GATE:
                _release(status)
                ctx.say(f"gates ({kind}) open")
                ctx.mark()
            return None
        names = [g.name for g, _ in shut]
        where = f" before {point}" if point != "*" else ""
        first, why = shut[0]
        how = (
            f"`rollwise approve {self.app} --gate {first.name}`"
            if first.manual
            else f"its hook answers 2xx, or `rollwise approve {self.app} --gate {first.name}`"
        )
        message = f"waiting for gate {first.name} ({kind}){where}: {why}; opens when {how}"
        if len(shut) > 1:
            message += f" (also waiting: {', '.join(names[1:])})"
        entering = status.pause_reason != PauseReason.GATE or status.waiting_gates != names
        status.pause_reason = PauseReason.GATE
        status.phase = Phase.PAUSED
        status.waiting_gates = names
        status.waiting_point = point
        ctx.say(message)
        if entering:
            ctx.mark()
            waiting: dict[str, Any] = {"gates": names, "type": kind, "point": point}
            ctx.emit(EventKind.GATE_WAITING, message, number, waiting)
        return WAIT

    def recheck(self, ctx: PassContext, revision: RevisionInfo) -> Decision | None:
        """A pass that starts held asks the holding gates again; ``None`` once they opened."""
        status = ctx.status
        if status.pause_reason != PauseReason.GATE or not status.waiting_gates:
            return None
        holding = [g for g in revision.spec.gates if g.name in status.waiting_gates]
        if not holding:  # the gates are gone from the spec: nothing holds any more
            _release(status)
            ctx.mark()
            return None
        return self.confirm(ctx, revision, holding[0].type, status.waiting_point or "*")

    def pre_rollout(self, ctx: PassContext, revision: RevisionInfo) -> Decision | None:
        """Every pre-rollout hook once, before the revision's first request: a no aborts."""
        status, number = ctx.status, revision.number
        for gate in self.of(revision, "pre-rollout"):
            key = gate_key(gate, "*")
            if key in status.gates_passed:
                continue
            answer = self._ask(ctx, revision, gate, "*", again=False)
            if answer is None:
                ctx.say(f"calling gate {gate.name} (pre-rollout)")
                return WAIT
            data = {"gate": gate.name, "type": gate.type, "answer": answer.detail}
            if not answer.ok:
                detail = (
                    f"gate {gate.name} (pre-rollout) refused revision {number} "
                    f"({revision.version}): {answer.detail}"
                )
                ctx.emit(EventKind.GATE_FAILED, detail, number, data)
                return Abort(Reason.GATE, detail)
            status.gates_passed.append(key)
            ctx.mark()
            message = f"gate {gate.name} (pre-rollout) opened: {answer.detail}"
            ctx.emit(EventKind.GATE_OPENED, message, number, data)
        return None

    def rollback(self, ctx: PassContext, revision: RevisionInfo) -> Decision | None:
        """Each rollback hook, every ``interval`` while the rollout runs: a yes aborts."""
        number = revision.number
        for gate in self.of(revision, "rollback"):
            answer = self._ask(ctx, revision, gate, "*", again=True)
            if answer is None or not answer.ok:
                continue
            detail = (
                f"gate {gate.name} (rollback) asked to roll revision {number} "
                f"({revision.version}) back: {answer.detail}"
            )
            data = {"gate": gate.name, "type": gate.type, "answer": answer.detail}
            ctx.emit(EventKind.ROLLBACK_REQUESTED, detail, number, data)
            return Abort(Reason.GATE, detail)
        return None

    def post_rollout(self, revision: RevisionInfo, outcome: Outcome, emit: Emit) -> None:
        """Tell each post-rollout hook how the rollout ended; the answers are events only."""
        for gate in self.of(revision, "post-rollout"):
            payload = self._payload(revision, gate, "*", phase=str(outcome))

            async def tell(gate: Gate = gate, payload: dict[str, Any] = payload) -> HookAnswer:
                answer = await call_hook(gate, payload, self._clock)
                kind = EventKind.GATE_OPENED if answer.ok else EventKind.GATE_FAILED
                message = f"gate {gate.name} (post-rollout, {outcome}): {answer.detail}"
                data = {"gate": gate.name, "type": gate.type, "answer": answer.detail}
                emit(kind, message, revision.number, data)
                return answer

            task = asyncio.create_task(tell(), name=f"post-rollout {gate.name}")
            self._told.add(task)
            task.add_done_callback(self._told.discard)

    # the calls

    def _opened(
        self, ctx: PassContext, revision: RevisionInfo, gate: Gate, point: str
    ) -> tuple[bool, str]:
        for approval in ctx.store.approvals(self.app, revision.number):
            if approval.gate == gate.name and approval.point in (point, "*"):
                note = f" ({approval.note})" if approval.note else ""
                return True, f"approved by {approval.by}{note}"
        if gate.manual:
            return False, "not approved yet"
        answer = self._ask(ctx, revision, gate, point, again=True)
        if answer is None:
            return False, "asking its hook"
        return answer.ok, f"hook answered {answer.detail}"

    def _ask(
        self, ctx: PassContext, revision: RevisionInfo, gate: Gate, point: str, *, again: bool
    ) -> HookAnswer | None:
        """The hook's last answer (``None`` before the first): a call starts when there is
        none, or (``again``) ``interval`` after the last one."""
        key = (revision.number, gate.name, point)
        task = self._calls.get(key)
        if task is not None and task.done():
            self._answers[key] = task.result()
            del self._calls[key]
            task = None
        answer = self._answers.get(key)
        due = answer is None or (again and ctx.now >= answer.at + gate.interval)
        if task is None and due:
            payload = self._payload(revision, gate, point, phase=ctx.status.phase.value)
            task = asyncio.create_task(
                call_hook(gate, payload, self._clock), name=f"gate {gate.name}"
            )
            task.add_done_callback(lambda _: self._wake())
            self._calls[key] = task
        elif answer is not None and again:
            ctx.wake_by(answer.at + gate.interval)
        return answer

    def _payload(
        self, revision: RevisionInfo, gate: Gate, point: str, phase: str
    ) -> dict[str, Any]:
        return {
            "name": self.app,
            "namespace": "",
            "phase": phase,
            "type": gate.type,
            "metadata": dict(gate.metadata),
            "revision": revision.number,
            "version": revision.version,
            "gate": gate.name,
            "point": point,
        }

    def forget(self, revision: int) -> None:
        """A new rollout of ``revision`` (a retry) asks its hooks afresh."""
        for key in [k for k in self._calls if k[0] == revision]:
            self._calls.pop(key).cancel()
        for key in [k for k in self._answers if k[0] == revision]:
            del self._answers[key]

    def close(self) -> None:
        for task in [*self._calls.values(), *self._told]:
            task.cancel()
        self._calls.clear()

    def approvable(self, revision: RevisionInfo) -> list[Gate]:
        return [g for g in revision.spec.gates if g.type in CONFIRMING]
