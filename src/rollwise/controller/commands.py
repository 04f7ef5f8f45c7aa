"""What people ask of one app: deploy, promote, abort, retry, pause, resume, set a weight,
undo, clean up. Argo Rollouts' commands, with its meanings.

A command takes the app's lock (a reconcile pass takes it too), so commands and passes are
serialized: two terminals racing end in one consistent state. It reads the app through a
context like a pass does, changes the status with ``transitions``, saves it, records an
event, and wakes the app's pass to act on the outside world. A command that does not fit the
phase is refused with what it is and what it applies to; a refused command changes nothing.
"""

from __future__ import annotations

import asyncio
import getpass
import re
from collections.abc import Callable

from rollwise.controller import transitions
from rollwise.controller.checks import ReleaseChecks
from rollwise.controller.context import PassContext
from rollwise.controller.retirement import delete_logs
from rollwise.controller.scaling import capacity
from rollwise.controller.status import CanaryScale, RolloutStatus
from rollwise.controller.strategies.canary import steps_of
from rollwise.errors import ConflictError, UsageError
from rollwise.redact import SECRETS
from rollwise.spec import apply_overrides
from rollwise.spec.models import CanaryStrategy
from rollwise.store import Approval
from rollwise.words import EventKind, Outcome, PauseReason, Phase, Reason

__all__ = ["VERSION_RE", "Commands"]

VERSION_RE = re.compile(r"^[\x21-\x7e][\x20-\x7e]{0,127}$")


class Commands:
    def __init__(
        self,
        app: str,
        lock: asyncio.Lock,
        open_context: Callable[[], PassContext],
        commit: Callable[[PassContext], None],
        wake: Callable[[], None],
        checks: ReleaseChecks,
    ) -> None:
        self.app = app
        self.lock = lock
        self.context = open_context
        self.commit = commit
        self.wake = wake
        self.checks = checks

    def _start(self, ctx: PassContext, number: int, message: str) -> None:
        self.checks.forget(number)  # a retry runs its gates again
        transitions.start(ctx, number, message)

    def _require_rollout(self, status: RolloutStatus, command: str) -> int:
        if status.canary is None or status.aborted:
            raise ConflictError(
                f"app {self.app} is {status.phase.value} with no rollout in progress: nothing "
                f"to {command}; {command} applies to a Progressing or Paused rollout"
            )
        return status.canary

    async def deploy(self, version: str, sets: list[str], cause: str) -> int:
        """Create a revision from the app's spec (plus ``--set``) and start rolling it out.

        A rollout in progress is superseded, as in Argo Rollouts: its canary stops getting
        requests and is stopped once drained; stable is untouched.
        """
        if not VERSION_RE.match(version):
            raise UsageError(
                f"version {version!r} cannot be used: it goes into replicas' environment and "
                "response headers; use 1 to 128 printable characters, e.g. 1.2.0"
            )
        async with self.lock:
            ctx = self.context()
            spec = ctx.state.spec
            if sets:
                spec = apply_overrides(spec, sets)
            SECRETS.add(spec.spec.template.secret_values())
            number = ctx.store.add_revision(
                self.app,
                version,
                spec.model_dump(mode="json", by_alias=True),
                getpass.getuser(),
                cause,
            )
            status = ctx.status
            if status.verifying is not None and status.stable is not None:
                # a new release ends the checks of the last one: it stays, promoted
                ctx.finish(status.stable, Outcome.PROMOTED, f"checks ended by revision {number}")
                status.verifying = None
            if status.canary is not None:
                old = status.canary
                transitions.drop_canary(ctx, Outcome.SUPERSEDED, f"replaced by revision {number}")
                message = f"revision {old} superseded by revision {number}"
                ctx.emit(EventKind.ROLLOUT_SUPERSEDED, message, old, None)
            self._start(ctx, number, f"starting revision {number} ({version})")
            status.strategy = spec.spec.strategy.name
            steps = (spec.spec.strategy.canary or CanaryStrategy()).steps
            status.step_count = len(steps) if status.stable is not None else 0
            message = f"rollout of revision {number} ({version}) started"
            ctx.emit(EventKind.ROLLOUT_STARTED, message, number, {"version": version})
            self.commit(ctx)
        self.wake()
        return number

    async def promote(self, full: bool = False) -> RolloutStatus:
        """Complete the current step (a pause, an inconclusive analysis) or, with ``full``,
        skip every remaining step and analysis."""
        async with self.lock:
            ctx = self.context()
            status = ctx.status
            number = self._require_rollout(status, "promote")
            revision = ctx.revision(number)
            status.promote_requested = True  # blue-green: swap once the preview is ready
            if revision.blue_green and status.pause_reason == PauseReason.INCONCLUSIVE:
                status.skip_steps = True  # a person accepted the preview
            steps = steps_of(status, revision)
            if full:
                status.step = len(steps)
                status.skip_steps = True
                status.skip_gates = True
                status.waiting_gates = []
            elif status.pause_reason == PauseReason.GATE:
                raise ConflictError(
                    f"revision {number} of app {self.app} waits for gate "
                    f"{', '.join(status.waiting_gates)}: `rollwise approve {self.app}` opens it "
                    "(`promote --full` skips every gate, step and analysis)"
                )
            elif status.pause_reason == PauseReason.USER:
                pass  # promote on a user pause only resumes, as Argo's does
            elif status.step < len(steps):
                status.step += 1
                kind = steps[status.step - 1].kind
                ctx.emit(
                    EventKind.STEP_COMPLETED,
                    f"step {status.step}/{len(steps)} ({kind}) completed by promote",
                    number,
                    {"step": status.step, "step_kind": kind},
                )
            status.step_started = ctx.now
            status.pause_reason = None
            status.phase = Phase.PROGRESSING
            status.message = "promoted" + (" (full)" if full else f" to step {status.step}")
            ctx.mark()
            ctx.emit(EventKind.PROMOTE_REQUESTED, status.message, number, {"full": full})
            self.commit(ctx)
        self.wake()
        return status

    async def approve(self, gate: str | None, by: str, note: str = "") -> RolloutStatus:
        """Open a confirm-* gate of the rollout by hand: the one that holds it (``gate`` may
        then be left out), or one it has not reached yet (approved for the whole rollout).
        Who approved, when and why is stored and is an event."""
        async with self.lock:
            ctx = self.context()
            status = ctx.status
            number = self._require_rollout(status, "approve")
            revision = ctx.revision(number)
            gates = {g.name: g for g in self.checks.hooks.approvable(revision)}
            if not gates:
                raise ConflictError(
                    f"revision {number} of app {self.app} has no gate to approve; gates of "
                    "type confirm-rollout, confirm-traffic-increase or confirm-promotion are "
                    "approved by hand (spec.gates)"
                )
            if gate is None:
                held = [n for n in status.waiting_gates if n in gates]
                choices = held or list(gates)
                if len(choices) != 1:
                    raise UsageError(f"say which gate to approve with --gate: {', '.join(choices)}")
                gate = choices[0]
            if gate not in gates:
                raise UsageError(
                    f"revision {number} of app {self.app} has no gate {gate!r} to approve; "
                    f"its gates: {', '.join(gates)}"
                )
            held_now = gate in status.waiting_gates
            point = (status.waiting_point or "*") if held_now else "*"
            ctx.store.approve(self.app, Approval(number, gate, point, by, ctx.now, note))
            kind = gates[gate].type
            where = f" at {point}" if point != "*" else ""
            message = f"gate {gate} ({kind}) of revision {number} approved by {by}{where}"
            if note:
                message += f": {note}"
            data = {"gate": gate, "type": kind, "point": point, "by": by, "note": note}
            ctx.emit(EventKind.GATE_APPROVED, message, number, data)
            self.commit(ctx)
        self.wake()
        return status

    async def scale(self, replicas: int, why: str) -> RolloutStatus:
        """The autoscaler's decision: the app runs ``replicas`` (stable all of them, a canary
        its weight's share) from the next pass on."""
        async with self.lock:
            ctx = self.context()
            status = ctx.status
            before = capacity(status, ctx.spec)
            status.scaled = replicas
            ctx.mark()
            if replicas != before:
                kind = EventKind.SCALED_UP if replicas > before else EventKind.SCALED_DOWN
                data = {"from": before, "to": replicas, "why": why}
                ctx.emit(kind, f"{before}→{replicas}: {why}", status.stable, data)
            self.commit(ctx)
        self.wake()
        return status

    async def abort(self) -> RolloutStatus:
        """Send all traffic back to stable at once; the canary drains and stops. While a
        promotion is being verified, switch back to the previous revision."""
        async with self.lock:
            ctx = self.context()
            status = ctx.status
            message = f"rollout aborted by {getpass.getuser()}"
            if status.canary is None and status.verifying is not None:
                transitions.switch_back(ctx, Reason.MANUAL, message)
            else:
                self._require_rollout(status, "abort")
                transitions.abort(ctx, Reason.MANUAL, message)
            self.commit(ctx)
        self.wake()
        return status

    async def retry(self) -> RolloutStatus:
        """Start an aborted rollout again from its first step."""
        async with self.lock:
            ctx = self.context()
            status = ctx.status
            number = status.canary
            if number is None or not status.aborted:
                raise ConflictError(
                    f"app {self.app} is {status.phase.value} with no aborted rollout; "
                    "retry applies to a rollout that was aborted (phase Degraded)"
                )
            status.retiring = [r for r in status.retiring if r.revision != number]
            version = ctx.revision(number).version
            self._start(ctx, number, f"retrying revision {number} ({version})")
            ctx.store.reopen_revision(self.app, number, "retry")
            ctx.emit(
                EventKind.ROLLOUT_RETRIED, f"rollout of revision {number} retried", number, None
            )
            self.commit(ctx)
        self.wake()
        return status

    async def pause(self) -> RolloutStatus:
        async with self.lock:
            ctx = self.context()
            status = ctx.status
            number = self._require_rollout(status, "pause")
            if status.pause_reason == PauseReason.USER:
                raise ConflictError(
                    f"app {self.app} is already paused by a user; `rollwise resume` continues it"
                )
            status.pause_reason = PauseReason.USER
            status.phase = Phase.PAUSED
            status.message = f"paused by {getpass.getuser()}"
            ctx.mark()
            ctx.emit(EventKind.ROLLOUT_PAUSED, status.message, number, None)
            self.commit(ctx)
        self.wake()
        return status

    async def set_weight(self, weight: int) -> RolloutStatus:
        """Route ``weight`` % to the canary by hand (after scaling it for that weight); the
        steps pause until ``resume`` or ``promote``."""
        if not 0 <= weight <= 100:
            raise UsageError(f"weight {weight} is not in 0..100")
        async with self.lock:
            ctx = self.context()
            status = ctx.status
            number = self._require_rollout(status, "set a weight for")
            status.manual_weight = weight
            status.canary_scale = CanaryScale(weight=max(weight, status.canary_weight()))
            status.pause_reason = PauseReason.USER
            status.phase = Phase.PAUSED
            status.message = f"weight {weight} set by hand; `rollwise resume` continues the steps"
            ctx.mark()
            ctx.emit(EventKind.WEIGHT_SET, status.message, number, {"weight": weight})
            self.commit(ctx)
        self.wake()
        return status

    async def resume(self) -> RolloutStatus:
        async with self.lock:
            ctx = self.context()
            status = ctx.status
            if status.pause_reason != PauseReason.USER:
                hint = (
                    "a pause step or an inconclusive analysis continues with `rollwise promote`"
                    if status.pause_reason
                    else "it is not paused"
                )
                raise ConflictError(
                    f"app {self.app} is {status.phase.value}: nothing to resume; {hint}"
                )
            status.pause_reason = None
            status.phase = Phase.PROGRESSING
            status.message = f"resumed by {getpass.getuser()}"
            ctx.mark()
            ctx.emit(EventKind.ROLLOUT_RESUMED, status.message, status.canary, None)
            self.commit(ctx)
        self.wake()
        return status

    async def undo(self, to_revision: int | None = None, why: str = "manual") -> RolloutStatus:
        """Roll back to a revision. By default, as Argo's ``undo``, to the revision before
        the current one: the stable one while a rollout is in progress or was aborted (which
        ends it and clears Degraded), else the one stable before it.

        Instant when the target still runs (stable under a canary, or kept warm for
        ``scaleDownDelaySeconds``): only the routes change. An older revision is started
        again and takes all traffic once ready, skipping steps and analysis.
        """
        async with self.lock:
            ctx = self.context()
            status = ctx.status
            target = to_revision
            if target is None:
                rollout = status.canary is not None and status.stable is not None
                target = status.stable if rollout else self._previous_stable(ctx)
                assert target is not None
            version = ctx.revision(target).version  # NotFoundError names the fix
            if target == status.stable and status.canary is None:
                raise ConflictError(
                    f"app {self.app} already runs revision {target} ({version}) as stable; "
                    "`rollwise history` lists the revisions to undo to"
                )
            if target == status.canary and not status.aborted:
                raise ConflictError(
                    f"revision {target} is the rollout in progress; "
                    "`rollwise promote` moves it forward, `rollwise abort` drops it"
                )
            reason = f"rolled back to revision {target} ({version})"
            if status.canary is not None:
                dropped = status.canary
                reason += f": revision {dropped} " + (
                    "was aborted" if status.aborted else "is rolled back"
                )
                transitions.drop_canary(ctx, Outcome.ROLLED_BACK, why)
            warm = next((w for w in status.warm if w.revision == target), None)
            if target == status.stable:
                status.set_weights(0)
                transitions.settle(ctx, reason)
                ctx.emit(EventKind.ROLLED_BACK, reason, target, {"instant": True})
            elif warm is not None:
                status.warm.remove(warm)
                transitions.replace_stable(ctx, target)
                ctx.finish(target, Outcome.PROMOTED, "undo")
                transitions.settle(ctx, reason)
                ctx.emit(EventKind.ROLLED_BACK, reason, target, {"instant": True})
            else:
                status.retiring = [r for r in status.retiring if r.revision != target]
                self._start(ctx, target, f"rolling back to revision {target}")
                status.skip_steps = True
                status.skip_gates = True
                ctx.store.reopen_revision(self.app, target, "undo")
                ctx.emit(EventKind.ROLLBACK_STARTED, reason, target, {"instant": False})
            self.commit(ctx)
        self.wake()
        return status

    def _previous_stable(self, ctx: PassContext) -> int:
        for row in reversed(ctx.store.revisions(self.app)):
            if row.number != ctx.status.stable and row.outcome in (
                Outcome.REPLACED,
                Outcome.PROMOTED,
            ):
                return row.number
        raise ConflictError(
            f"app {self.app} has no earlier stable revision to undo to; "
            "`rollwise history` lists its revisions, `--to-revision N` picks one"
        )

    async def cleanup(self, revision: int) -> list[str]:
        """Remove what a finished revision left: processes (if any) and log files."""
        async with self.lock:
            ctx = self.context()
            ctx.revision(revision)  # NotFoundError names the fix
            if revision in ctx.status.revisions():
                raise ConflictError(
                    f"revision {revision} of {self.app} is still in use; only a revision that "
                    "was aborted, superseded or replaced and stopped can be cleaned up"
                )
            await ctx.backend.stop(self.app, revision)
            removed = delete_logs(ctx.backend, self.app, revision)
            message = f"revision {revision}: {len(removed)} log files removed"
            ctx.emit(EventKind.REVISION_CLEANED_UP, message, revision, None)
            self.commit(ctx)
            return removed
