"""One app's reconcile loop and its commands: read status, decide, persist, then act.

A pass is a list of ordered steps that may end it early (the shape of Argo Rollouts'
rollout/canary.go). Every change of status is written to the store before the outside world
is touched, so a controller killed at any point resumes from a consistent status. Commands
(deploy, promote, abort, retry, pause, resume, undo) take the same per-app lock as a pass,
so they are serialized: two terminals racing end in one consistent state, and a command
that does not fit the phase is refused with what it is and what is allowed.
"""

from __future__ import annotations

import asyncio
import getpass
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter

from rollwise.analysis import Verdict
from rollwise.backends.local import LocalBackend, RevisionHealth
from rollwise.controller.canary import AnalysisFailure, CanaryPass, canary_replicas
from rollwise.controller.checks import SMOKE_FAILURE, ReleaseChecks
from rollwise.controller.events import Events
from rollwise.controller.judging import AppAnalyses
from rollwise.controller.monitor import SmokeMetrics, SyntheticMonitor
from rollwise.controller.routes import RouteSync, app_section
from rollwise.controller.status import CanaryScale, Phase, Retiring, RolloutStatus, Warm
from rollwise.errors import ConflictError, RollwiseError, UsageError
from rollwise.redact import SECRETS
from rollwise.smoke import SmokeTestSuite, TestResult
from rollwise.spec import Rollout, RolloutSpec, apply_overrides, format_duration, spec_from_dict
from rollwise.spec.models import AnalysisStep, CanaryStrategy, Step
from rollwise.store import Store

__all__ = ["AppWorker", "ReconcileMetrics"]

log = structlog.get_logger("rollwise.controller")

DRAIN_MIN_S = 0.3
# Background analysis only ever fails a rollout: no time limit, no pass.
BACKGROUND = AnalysisStep(until="pass", max_duration=float("inf"))
PREVIEW_SUFFIX = ".preview"  # the proxy app name of a blue-green preview listener
VERSION_RE = re.compile(r"^[\x21-\x7e][\x20-\x7e]{0,127}$")


class ReconcileMetrics:
    """Reconcile passes that did not finish, for alerts on a controller that keeps failing:
    ``kind`` is ``failed`` (a known error: the store locked, the proxy unreachable) or
    ``crashed`` (a bug; the log has its trace)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.failures = Counter(
            "rollwise_reconcile_failures",
            "Reconcile passes that failed and were retried with backoff",
            ["app", "kind"],
            registry=registry,
        )


class AppWorker:
    def __init__(
        self,
        app: str,
        store: Store,
        backend: LocalBackend,
        routes: RouteSync,
        events: Events,
        in_flight: Callable[[], Awaitable[dict[str, int]]],
        clock: Callable[[], float] = time.time,
        smoke_metrics: SmokeMetrics | None = None,
        reconcile_metrics: ReconcileMetrics | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.backend = backend
        self.routes = routes
        self.events = events
        self.in_flight = in_flight
        self.clock = clock
        self.lock = asyncio.Lock()
        self.wake = asyncio.Event()
        self.errors = 0
        self.last_error = ""
        self.log = log.bind(app=app)
        self.analyses = AppAnalyses(
            app, (app, f"{app}{PREVIEW_SUFFIX}"), store, routes.dataplane, clock
        )
        self.checks = ReleaseChecks(app, store, self._emit, self.wake.set)
        metrics = smoke_metrics or SmokeMetrics(CollectorRegistry())
        self.monitor = SyntheticMonitor(app, metrics, self._emit, self.wake.set, clock)
        self.failures = (reconcile_metrics or ReconcileMetrics(CollectorRegistry())).failures

    # state

    def status(self) -> RolloutStatus:
        raw = self.store.get_status(self.app)
        return RolloutStatus.model_validate(raw) if raw else RolloutStatus()

    def save(self, status: RolloutStatus) -> None:
        status.updated = self.clock()
        self.store.put_status(self.app, status.model_dump(mode="json"))

    def rollout(self, revision: int) -> tuple[Rollout, str]:
        row = self.store.revision(self.app, revision)
        return spec_from_dict(row.spec), row.version

    def versions(self, status: RolloutStatus) -> dict[int, str]:
        return {n: self.store.revision(self.app, n).version for n in status.revisions()}

    def _canary_strategy(self, revision: int) -> CanaryStrategy:
        rollout, _ = self.rollout(revision)
        return rollout.spec.strategy.canary or CanaryStrategy()

    def _steps(self, status: RolloutStatus) -> list[Step]:
        """The canary's steps; none for a first release (nothing to compare with, as in
        Argo Rollouts) or a rollback to a revision that no longer runs."""
        if status.canary is None or status.stable is None or status.skip_steps:
            return []
        rollout, _ = self.rollout(status.canary)
        if rollout.spec.strategy.blue_green is not None:
            return []
        return self._canary_strategy(status.canary).steps

    def _emit(
        self, kind: str, message: str, revision: int | None, data: dict[str, Any] | None = None
    ) -> None:
        self.events.emit(self.app, kind, message, revision, data)

    # commands

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
            spec_json, _ = self.store.get_app(self.app)
            spec = spec_from_dict(spec_json, file=f"app {self.app}")
            if sets:
                spec = apply_overrides(spec, sets)
            SECRETS.add(spec.spec.template.secret_values())
            number = self.store.add_revision(
                self.app, version, spec.model_dump(by_alias=True), getpass.getuser(), cause
            )
            status = self.status()
            if status.canary is not None:
                self._drop_canary(status, "superseded", f"replaced by revision {number}")
                self._emit(
                    "RolloutSuperseded",
                    f"revision {status.canary} superseded by revision {number}",
                    status.canary,
                )
            steps = (spec.spec.strategy.canary or CanaryStrategy()).steps
            self._start_canary(status, number, f"starting revision {number} ({version})")
            status.strategy = spec.spec.strategy.name
            status.step_count = len(steps) if status.stable is not None else 0
            self.save(status)
            self._emit(
                "RolloutStarted",
                f"rollout of revision {number} ({version}) started",
                number,
                {"version": version},
            )
        self.wake.set()
        return number

    async def promote(self, full: bool = False) -> RolloutStatus:
        """Complete the current step (a pause, an inconclusive analysis) or, with ``full``,
        skip every remaining step and analysis."""
        async with self.lock:
            status = self.status()
            self._require_rollout(status, "promote")
            now = self.clock()
            status.promote_requested = True  # blue-green: swap once the preview is ready
            assert status.canary is not None  # _require_rollout
            blue_green = self.rollout(status.canary)[0].spec.strategy.blue_green
            if blue_green is not None and status.pause_reason == "inconclusive":
                status.skip_steps = True  # a person accepted the preview
            if full:
                status.step = len(self._steps(status))
                status.skip_steps = True
            elif status.pause_reason == "user":
                pass  # promote on a user pause only resumes, as Argo's does
            elif status.step < len(steps := self._steps(status)):
                status.step += 1
                self._emit(
                    "StepCompleted",
                    f"step {status.step}/{len(steps)} ({steps[status.step - 1].kind}) "
                    "completed by promote",
                    status.canary,
                    {"step": status.step, "step_kind": steps[status.step - 1].kind},
                )
            status.step_started = now
            status.pause_reason = None
            status.phase = Phase.PROGRESSING
            status.message = "promoted" + (" (full)" if full else f" to step {status.step}")
            self.save(status)
            self._emit("PromoteRequested", status.message, status.canary, {"full": full})
        self.wake.set()
        return status

    async def abort(self) -> RolloutStatus:
        """Send all traffic back to stable at once; the canary drains and stops. During a
        blue-green post-promotion analysis, switch back to the previous active revision."""
        async with self.lock:
            status = self.status()
            message = f"rollout aborted by {getpass.getuser()}"
            if status.canary is None and status.verifying is not None:
                self._switch_back(status, "manual", message)
            else:
                self._require_rollout(status, "abort")
                self._abort(status, "manual", message)
            self.save(status)
        self.wake.set()
        return status

    async def retry(self) -> RolloutStatus:
        """Start an aborted rollout again from its first step."""
        async with self.lock:
            status = self.status()
            number = status.canary
            if number is None or not status.aborted:
                raise ConflictError(
                    f"app {self.app} is {status.phase.value} with no aborted rollout; "
                    "retry applies to a rollout that was aborted (phase Degraded)"
                )
            status.retiring = [r for r in status.retiring if r.revision != number]
            _, version = self.rollout(number)
            self._start_canary(status, number, f"retrying revision {number} ({version})")
            self.store.reopen_revision(self.app, number, "retry")
            self.save(status)
            self._emit("RolloutRetried", f"rollout of revision {number} retried", number)
        self.wake.set()
        return status

    async def pause(self) -> RolloutStatus:
        async with self.lock:
            status = self.status()
            self._require_rollout(status, "pause")
            if status.pause_reason == "user":
                raise ConflictError(
                    f"app {self.app} is already paused by a user; `rollwise resume` continues it"
                )
            status.pause_reason = "user"
            status.phase = Phase.PAUSED
            status.message = f"paused by {getpass.getuser()}"
            self.save(status)
            self._emit("RolloutPaused", status.message, status.canary)
        return status

    async def set_weight(self, weight: int) -> RolloutStatus:
        """Route ``weight`` % to the canary by hand (after scaling it for that weight); the
        steps pause until ``resume`` or ``promote``."""
        if not 0 <= weight <= 100:
            raise UsageError(f"weight {weight} is not in 0..100")
        async with self.lock:
            status = self.status()
            self._require_rollout(status, "set a weight for")
            status.manual_weight = weight
            status.canary_scale = CanaryScale(weight=max(weight, status.canary_weight()))
            status.pause_reason = "user"
            status.phase = Phase.PAUSED
            status.message = f"weight {weight} set by hand; `rollwise resume` continues the steps"
            self.save(status)
            self._emit("WeightSet", status.message, status.canary, {"weight": weight})
        self.wake.set()
        return status

    async def resume(self) -> RolloutStatus:
        async with self.lock:
            status = self.status()
            if status.pause_reason != "user":
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
            self.save(status)
            self._emit("RolloutResumed", status.message, status.canary)
        self.wake.set()
        return status

    async def undo(self, to_revision: int | None = None, why: str = "manual") -> RolloutStatus:
        """Roll back to a revision (default: the one stable before the current stable).

        Instant when the target still runs (stable under a canary, or kept warm for
        ``scaleDownDelaySeconds``): only the routes change. An older revision is started
        again and takes all traffic once ready, skipping steps and analysis.
        """
        async with self.lock:
            status = self.status()
            target = to_revision if to_revision is not None else self._previous_stable(status)
            row = self.store.revision(self.app, target)  # NotFoundError names the fix
            now = self.clock()
            if target == status.stable and status.canary is None:
                raise ConflictError(
                    f"app {self.app} already runs revision {target} ({row.version}) as stable; "
                    "`rollwise history` lists the revisions to undo to"
                )
            if target == status.canary and not status.aborted:
                raise ConflictError(
                    f"revision {target} is the rollout in progress; "
                    "`rollwise promote` moves it forward, `rollwise abort` drops it"
                )
            reason = f"rolled back to revision {target} ({row.version})"
            if status.canary is not None:
                self._drop_canary(status, "rolled back", why)
            warm = next((w for w in status.warm if w.revision == target), None)
            if target == status.stable:
                status.set_weights(0)
                self._settle(status, reason)
                self._emit("RolledBack", reason, target, {"instant": True})
            elif warm is not None:
                status.warm.remove(warm)
                self._replace_stable(status, target, now)
                self.store.finish_revision(self.app, target, "promoted", "undo")
                self._settle(status, reason)
                self._emit("RolledBack", reason, target, {"instant": True})
            else:
                status.retiring = [r for r in status.retiring if r.revision != target]
                self._start_canary(status, target, f"rolling back to revision {target}")
                status.skip_steps = True
                self.store.reopen_revision(self.app, target, "undo")
                self._emit("RollbackStarted", reason, target, {"instant": False})
            self.save(status)
        self.wake.set()
        return status

    async def cleanup(self, revision: int) -> list[str]:
        """Remove what a finished revision left: processes (if any) and log files."""
        async with self.lock:
            status = self.status()
            self.store.revision(self.app, revision)  # NotFoundError names the fix
            if revision in status.revisions():
                raise ConflictError(
                    f"revision {revision} of {self.app} is still in use; only a revision that "
                    "was aborted, superseded or replaced and stopped can be cleaned up"
                )
            await self.backend.stop(self.app, revision)
            removed = self._delete_logs(revision)
            self._emit(
                "RevisionCleanedUp",
                f"revision {revision}: {len(removed)} log files removed",
                revision,
            )
            return removed

    def _delete_logs(self, revision: int) -> list[str]:
        """Remove a revision's log files, rotated ones included; returns their paths."""
        removed = []
        for path in self.backend.log_paths(self.app, revision):
            for rotated in [path, *path.parent.glob(path.name + ".*")]:
                rotated.unlink(missing_ok=True)
                removed.append(str(rotated))
        return removed

    def _previous_stable(self, status: RolloutStatus) -> int:
        for row in reversed(self.store.revisions(self.app)):
            if row.number != status.stable and row.outcome in ("replaced", "promoted"):
                return row.number
        raise ConflictError(
            f"app {self.app} has no earlier stable revision to undo to; "
            "`rollwise history` lists its revisions, `--to-revision N` picks one"
        )

    def _require_rollout(self, status: RolloutStatus, command: str) -> None:
        if status.canary is None or status.aborted:
            raise ConflictError(
                f"app {self.app} is {status.phase.value} with no rollout in progress: nothing "
                f"to {command}; {command} applies to a Progressing or Paused rollout"
            )

    # status transitions shared by commands and passes

    @staticmethod
    def _clear_rollout(status: RolloutStatus) -> None:
        """Forget the per-rollout fields: steps, pauses, scale, routes, blue-green progress."""
        status.step = 0
        status.step_started = None
        status.pause_reason = None
        status.skip_steps = False
        status.canary_scale = None
        status.header_routes = []
        status.preview_since = None
        status.promote_requested = False
        status.manual_weight = None
        status.background_since = None
        status.gates_passed = []

    def _start_canary(self, status: RolloutStatus, number: int, message: str) -> None:
        self._clear_rollout(status)
        self.checks.forget(number)  # a retry runs its gates again
        status.canary = number
        status.canary_started = self.clock()
        status.aborted = False
        status.phase = Phase.PROGRESSING
        status.message = message

    def _drop_canary(self, status: RolloutStatus, outcome: str, reason: str) -> None:
        """Take the canary out of the routes; it drains and stops. ``aborted`` ones already
        are, and keep their outcome."""
        number = status.canary
        assert number is not None
        if not status.aborted:
            self.store.finish_revision(self.app, number, outcome, reason)
            self._retire_later(status, number)
        status.canary = None
        status.aborted = False
        status.header_routes = []
        status.set_weights(0)

    def _retire_later(self, status: RolloutStatus, number: int) -> None:
        now = self.clock()
        grace = self.rollout(number)[0].spec.template.stop_grace_period
        if all(r.revision != number for r in status.retiring):
            status.retiring.append(Retiring(revision=number, since=now, deadline=now + grace))

    def _replace_stable(self, status: RolloutStatus, number: int, now: float) -> None:
        old = status.stable
        status.stable = number
        status.weights = {number: 100}
        if old is not None and old != number:
            # The app's spec as applied now, not the revision's: an undo to an old revision
            # keeps the delay the user set today.
            spec_json, _ = self.store.get_app(self.app)
            strategy = spec_from_dict(spec_json, file=f"app {self.app}").spec.strategy
            delay = (strategy.canary or CanaryStrategy()).scale_down_delay_seconds
            status.warm = [w for w in status.warm if w.revision != old]
            status.warm.append(Warm(revision=old, until=now + delay))
            self.store.finish_revision(self.app, old, "replaced", f"replaced by revision {number}")

    def _settle(self, status: RolloutStatus, message: str) -> None:
        self._clear_rollout(status)
        status.canary = None
        status.canary_started = None
        status.phase = Phase.HEALTHY
        status.message = message

    def _abort(self, status: RolloutStatus, reason: str, message: str) -> bool:
        number = status.canary
        assert number is not None
        status.weights = {status.stable: 100} if status.stable is not None else {}
        status.header_routes = []
        status.pause_reason = None
        status.aborted = True
        status.phase = Phase.DEGRADED
        status.message = f"RolloutAborted: {message}"
        self._retire_later(status, number)
        self.store.finish_revision(self.app, number, "aborted", reason)
        self._emit("RolloutAborted", message, number, {"reason": reason})
        return True

    # the reconcile pass

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with self.lock:
                    await self.reconcile()
                self.errors = 0
                self.last_error = ""
                backoff = 0.5
                delay = 0.1
            except RollwiseError as exc:
                self.errors += 1
                self.last_error = str(exc)
                self.failures.labels(self.app, "failed").inc()
                self.log.warning("reconcile pass failed", error=str(exc), retry_in=backoff)
                delay, backoff = backoff, min(backoff * 2, 10.0)
            except Exception as exc:
                self.errors += 1
                self.last_error = f"internal error ({type(exc).__name__}); see the controller log"
                self.failures.labels(self.app, "crashed").inc()
                self.log.exception("reconcile pass crashed", retry_in=backoff)
                delay, backoff = backoff, min(backoff * 2, 10.0)
            self.wake.clear()
            try:
                async with asyncio.timeout(delay):
                    await self.wake.wait()
            except TimeoutError:
                pass

    async def reconcile(self) -> None:
        status = self.status()
        spec_json, base_dir = self.store.get_app(self.app)
        spec = spec_from_dict(spec_json, file=f"app {self.app}").spec
        changed = self._expire_warm(status)
        self._ensure_replicas(status, base_dir)
        if status.stable is not None:
            self.monitor.tick(spec, status.stable)
        if await self._progress(status):
            changed = True
        if changed:
            self.save(status)
        await self._push_routes(status, spec)
        if await self._retire(status):
            self.save(status)
            await self._push_routes(status, spec)

    async def _push_routes(self, status: RolloutStatus, spec: RolloutSpec) -> None:
        versions = self.versions(status)
        section = app_section(self.app, spec, status, versions, self.backend)
        await self.routes.update(self.app, section)
        await self.routes.update(
            f"{self.app}{PREVIEW_SUFFIX}", self._preview_section(status, spec, versions)
        )

    def _preview_section(
        self, status: RolloutStatus, spec: RolloutSpec, versions: dict[int, str]
    ) -> dict[str, Any] | None:
        """A blue-green preview's own listener, while there is a preview to show."""
        number = status.canary
        if number is None or status.aborted or status.stable is None:
            return None
        blue_green = self.rollout(number)[0].spec.strategy.blue_green
        if blue_green is None or blue_green.preview_listen is None:
            return None
        addresses = self.backend.ready_addresses(self.app, number)
        return {
            "listen": blue_green.preview_listen,
            "revisions": [
                {
                    "name": str(number),
                    "version": versions.get(number, ""),
                    "labels": ["preview", "canary"],
                    "weight": 100,
                    "replicas": [{"address": a} for a in addresses],
                }
            ],
        }

    def _ensure_replicas(self, status: RolloutStatus, base_dir: str) -> None:
        wanted: dict[int, int] = {}
        if status.stable is not None:
            wanted[status.stable] = self.rollout(status.stable)[0].spec.replicas
        for warm in status.warm:
            wanted[warm.revision] = self.rollout(warm.revision)[0].spec.replicas
        if status.canary is not None and not status.aborted:
            wanted[status.canary] = self._canary_target(status)
        for number, replicas in wanted.items():
            rollout, version = self.rollout(number)
            self.backend.ensure(
                self.app, number, version, rollout.spec.template, base_dir, replicas
            )

    def _canary_target(self, status: RolloutStatus) -> int:
        """Canary replicas to run now: for the weight the current step is about to set, or
        all of them once the steps are done (promotion needs full capacity)."""
        assert status.canary is not None
        spec = self.rollout(status.canary)[0].spec
        blue_green = spec.strategy.blue_green
        if blue_green is not None and status.stable is not None:
            if status.promote_requested and status.preview_since is not None:
                return spec.replicas
            return blue_green.preview_replica_count or spec.replicas
        steps = self._steps(status)
        if status.step >= len(steps):
            return spec.replicas
        upcoming = steps[status.step].set_weight
        return (
            max(canary_replicas(status, spec), canary_replicas(status, spec, upcoming))
            if upcoming is not None
            else canary_replicas(status, spec)
        )

    def _expire_warm(self, status: RolloutStatus) -> bool:
        now = self.clock()
        # the previous stable is kept while the new one is verified: a failure switches back
        expired = [w for w in status.warm if now >= w.until and w.revision != status.verifying]
        for warm in expired:
            status.warm.remove(warm)
            self._retire_later(status, warm.revision)
        return bool(expired)

    async def _progress(self, status: RolloutStatus) -> bool:
        """Move the rollout forward; ``True`` when the status changed."""
        number = status.canary
        if number is None and status.verifying is not None:
            return await self._verify(status)
        if number is None:
            if status.stable is not None and status.phase == Phase.PROGRESSING:
                status.phase = Phase.HEALTHY
                status.message = ""
                return True
            return False
        if status.aborted:
            return False
        health = self.backend.health(self.app, number)
        rollout, version = self.rollout(number)
        now = self.clock()
        if health.crash_loop:
            last = health.last_logs[-1] if health.last_logs else "no output"
            return self._abort(
                status,
                "crash loop",
                f"revision {number} ({version}) is crash-looping; last log line: {last}",
            )
        progressed = max(status.canary_started or now, status.step_started or 0.0)
        deadline = rollout.spec.progress_deadline_seconds
        if status.pause_reason is None and now - progressed > deadline:
            return self._abort(
                status,
                "deployment timeout",
                f"revision {number} ({version}) made no progress for {format_duration(deadline)} "
                "(progressDeadlineSeconds)",
            )
        if health.ready == 0:
            message = f"waiting for revision {number}: {health.ready}/{health.desired} ready"
            if message != status.message:
                status.message = message
                return True
            return False
        blue_green = rollout.spec.strategy.blue_green
        if blue_green is not None and status.stable is not None:
            return await self._progress_blue_green(status, number, rollout, health, now)
        if status.manual_weight is not None:
            needed = canary_replicas(status, rollout.spec, status.manual_weight)
            if health.ready < needed:
                return self._say(
                    status, f"scaling the canary to {needed} for weight {status.manual_weight}"
                )
            status.set_weights(status.manual_weight)
            status.manual_weight = None
            return True
        if not status.skip_steps:
            baseline = self._baseline(status)
            gate = self.checks.before_traffic(
                status, "preTraffic", number, rollout, health, baseline
            )
            if gate.state == "wait":
                return self._say(status, gate.detail)
            if gate.state == "fail":
                return self._abort(status, gate.reason, gate.detail)
            failing = self.monitor.failing_since(status.canary_started or now)
            if failing is not None:
                return self._abort(status, SMOKE_FAILURE, self._failing(failing))
        steps = self._steps(status)
        settings = rollout.spec.strategy.analysis_settings
        stable = status.stable

        async def judge(step: AnalysisStep, index: int, since: float) -> Verdict:
            return await self.analyses.judge(
                f"{number}/step{index}", f"step {index}", settings, step, number, stable, since
            )

        canary = CanaryPass(
            status=status,
            spec=rollout.spec,
            steps=steps,
            health=health,
            now=now,
            emit=lambda kind, message, data: self._emit(kind, message, number, data),
            judge=judge,
        )
        background_changed = False
        try:
            background_changed = await self._background(status, number, rollout, now)
            result = await canary.run()
        except AnalysisFailure as exc:
            return self._abort(status, "analysis failure", str(exc))
        if background_changed:
            canary.changed = True
        if result != "promote":
            return canary.changed
        if health.ready < rollout.spec.replicas:
            message = (
                f"scaling revision {number} to {rollout.spec.replicas} ready replicas "
                f"({health.ready} now) before it takes all traffic"
            )
            if message != status.message:
                status.message = message
                return True
            return canary.changed
        self._complete(status, number, version, now)
        return True

    async def _background(
        self, status: RolloutStatus, number: int, rollout: Rollout, now: float
    ) -> bool:
        """Background analysis from ``analysis.startingStep`` to promotion: only a failure
        acts (the rollout aborts); ``True`` when it started (the status changed)."""
        settings = rollout.spec.strategy.analysis_settings
        start = settings.starting_step
        if start is None or status.skip_steps or status.step < start or status.stable is None:
            return False
        changed = False
        if status.background_since is None:
            status.background_since = now
            self._emit("AnalysisStarted", f"background analysis from step {start}", number)
            changed = True
        verdict = await self.analyses.judge(
            f"{number}/background",
            "background",
            settings,
            BACKGROUND,
            number,
            status.stable,
            status.background_since,
        )
        if verdict.outcome == "fail":
            self._emit(
                "AnalysisFailed",
                f"background analysis: {verdict.detail}",
                number,
                verdict.as_json(),
            )
            raise AnalysisFailure(verdict.detail)
        return changed

    async def smoke(self, revision: int | None = None, url: str | None = None) -> SmokeTestSuite:
        """``rollwise smoke``: the spec's smoke tests now, against ``url``, each replica of
        ``revision``, or (neither given) the public listener. Changes nothing."""
        status = self.status()
        number = revision if revision is not None else status.stable
        if number is None:
            raise ConflictError(f"app {self.app} has no stable revision; name one with --revision")
        rollout, _ = self.rollout(number)
        if not rollout.spec.smoke_tests:
            raise UsageError(f"app {self.app} declares no smokeTests; add some to its spec")
        health = self.backend.health(self.app, number) if revision is not None else None
        if url is None and health is not None and health.ready == 0:
            raise ConflictError(
                f"revision {number} of {self.app} has no ready replica to test; "
                "deploy or undo to it first, or pass --url"
            )
        return await self.checks.smoke_now(number, rollout, health, url)

    async def cards(self) -> list[dict[str, Any]]:
        """Each revision's agent card as it served it (kept at its card check), with its
        version; a running revision not checked yet is asked now (and kept)."""
        status = self.status()
        await self.checks.fetch_missing_cards(
            {n: self.rollout(n)[0] for n in status.revisions()},
            {n: self.backend.health(self.app, n) for n in status.revisions()},
        )
        versions = {r.number: r.version for r in self.store.revisions(self.app)}
        return [
            {
                "revision": number,
                "version": versions.get(number, "?"),
                "stable": number == status.stable,
                "canary": number == status.canary,
                "card": card,
            }
            for number, card in self.store.cards(self.app).items()
        ]

    @staticmethod
    def _failing(result: TestResult) -> str:
        return (
            f"scheduled smoke test {result.test_name} failed on {result.target} during the "
            f"rollout: {result.message}"
        )

    def _baseline(self, status: RolloutStatus) -> tuple[int, Rollout, RevisionHealth] | None:
        """The revision a candidate must keep the clients of: the stable one."""
        if status.stable is None or status.stable == status.canary:
            return None
        rollout, _ = self.rollout(status.stable)
        return status.stable, rollout, self.backend.health(self.app, status.stable)

    def _complete(self, status: RolloutStatus, number: int, version: str, now: float) -> None:
        """The new revision takes every new request; the old stable stays warm. With smoke
        tests, it is verified on the live listener first (``_verify``): a failure switches
        back to the old stable."""
        rollout, _ = self.rollout(number)
        old = status.stable
        if rollout.spec.smoke_tests and old is not None and old != number:
            self._replace_stable(status, number, now)
            self._settle(status, f"post-promotion smoke tests of revision {number}")
            status.phase = Phase.PROGRESSING
            status.verifying = old
            status.step_started = now
            return
        started = status.canary_started or now
        self._replace_stable(status, number, now)
        self._settle(status, "")
        self.store.finish_revision(self.app, number, "promoted", "")
        self._emit(
            "RolloutCompleted",
            f"revision {number} ({version}) serves 100% of requests"
            + (f"; revision {old} stays warm, then drains" if old not in (None, number) else ""),
            number,
            {"duration_s": round(now - started, 3)},
        )

    async def _progress_blue_green(
        self,
        status: RolloutStatus,
        number: int,
        rollout: Rollout,
        health: RevisionHealth,
        now: float,
    ) -> bool:
        """Preview ready → pre-promotion analysis → (auto)promotion → full capacity → swap →
        post-promotion analysis (see ``_verify``)."""
        blue_green = rollout.spec.strategy.blue_green
        assert blue_green is not None
        changed = False
        preview = blue_green.preview_replica_count or rollout.spec.replicas
        if status.preview_since is None:
            if health.ready < preview:
                return self._say(status, f"starting the preview: {health.ready}/{preview} ready")
            status.preview_since = now
            status.step_started = now
            where = blue_green.preview_listen or "the override header"
            self._emit("PreviewReady", f"revision {number} is ready on {where}", number)
            changed = True
        if not status.skip_steps:
            baseline = self._baseline(status)
            gate = self.checks.before_traffic(status, "preview", number, rollout, health, baseline)
            if gate.state == "wait":
                return self._say(status, gate.detail) or changed
            if gate.state == "fail":
                return self._abort(status, gate.reason, gate.detail)
        analysis = blue_green.pre_promotion_analysis
        if analysis is not None and not status.skip_steps and status.pause_reason is None:
            since = status.preview_since
            verdict = await self.analyses.judge(
                f"{number}/prePromotion",
                "prePromotion",
                blue_green.analysis,
                analysis,
                number,
                status.stable,
                since,
            )
            data = verdict.as_json()
            if verdict.outcome == "fail":
                self._emit(
                    "AnalysisFailed", f"pre-promotion analysis: {verdict.detail}", number, data
                )
                return self._abort(status, "analysis failure", verdict.detail)
            if verdict.outcome == "wait" or (
                verdict.outcome == "inconclusive" and blue_green.analysis.on_inconclusive == "wait"
            ):
                return self._say(status, f"pre-promotion analysis: {verdict.detail}") or changed
            if verdict.outcome == "inconclusive":
                status.pause_reason = "inconclusive"
                status.phase = Phase.PAUSED
                status.message = f"AnalysisInconclusive: {verdict.detail}; promote or abort"
                self._emit("AnalysisInconclusive", status.message, number, data)
                return True
            self._emit("AnalysisPassed", f"pre-promotion analysis: {verdict.detail}", number, data)
            status.skip_steps = True  # passed: not again
            changed = True
        if status.pause_reason is not None:
            return changed
        if not status.promote_requested:
            if not blue_green.auto_promotion_enabled:
                status.pause_reason = "BlueGreenPause"
                status.phase = Phase.PAUSED
                status.message = "BlueGreenPause: the preview waits for `rollwise promote`"
                self._emit("RolloutPaused", status.message, number)
                return True
            wait = blue_green.auto_promotion_seconds or 0.0
            if now - status.preview_since < wait:
                return self._say(status, f"auto-promotion in {wait:g}s") or changed
            status.promote_requested = True
            changed = True
        if health.ready < rollout.spec.replicas:
            return (
                self._say(
                    status,
                    f"scaling revision {number} to {rollout.spec.replicas} ready replicas "
                    f"({health.ready} now) before the swap",
                )
                or changed
            )
        old = status.stable
        version = self.store.revision(self.app, number).version
        if old is not None and (
            blue_green.post_promotion_analysis is not None or rollout.spec.smoke_tests
        ):
            self._replace_stable(status, number, now)
            self._settle(status, f"post-promotion analysis of revision {number}")
            status.phase = Phase.PROGRESSING
            status.verifying = old
            status.step_started = now
            self._emit("ActiveSwitched", f"revision {number} ({version}) is active", number)
            return True
        self._complete(status, number, version, now)
        return True

    async def _verify(self, status: RolloutStatus) -> bool:
        """Blue-green post-promotion analysis on the new active revision."""
        number = status.stable
        assert number is not None
        assert status.verifying is not None
        rollout, version = self.rollout(number)
        analysis = (
            rollout.spec.strategy.blue_green.post_promotion_analysis
            if (rollout.spec.strategy.blue_green is not None)
            else None
        )
        now = self.clock()
        since = status.step_started or now
        failing = self.monitor.failing_since(since)
        if failing is not None:
            self._switch_back(status, SMOKE_FAILURE, self._failing(failing))
            return True
        gate = self.checks.after_promotion(status, number, rollout)
        if gate.state == "wait":
            return self._say(status, gate.detail)
        if gate.state == "fail":
            self._switch_back(status, gate.reason, gate.detail)
            return True
        if analysis is None:
            status.verifying = None
            self._settle(status, "")
            self.store.finish_revision(self.app, number, "promoted", "")
            self._emit(
                "RolloutCompleted",
                f"revision {number} ({version}) serves 100% of requests",
                number,
                {"duration_s": round(now - since, 3)},
            )
            return True
        # after the swap the old revision serves nothing: no concurrent baseline, so only
        # the guardrails judge (an inconclusive end still completes the promotion)
        verdict = await self.analyses.judge(
            f"{number}/postPromotion",
            "postPromotion",
            rollout.spec.strategy.analysis_settings,
            analysis,
            number,
            None,
            since,
            judges=False,
        )
        data = verdict.as_json()
        if verdict.outcome == "fail":
            self._emit("AnalysisFailed", f"post-promotion analysis: {verdict.detail}", number, data)
            self._switch_back(status, "analysis failure", verdict.detail)
            return True
        if verdict.outcome == "wait":
            return self._say(status, f"post-promotion analysis: {verdict.detail}")
        self._emit(
            "AnalysisPassed" if verdict.outcome == "pass" else "AnalysisInconclusive",
            f"post-promotion analysis: {verdict.detail}",
            number,
            data,
        )
        status.verifying = None
        self._settle(status, "")
        self.store.finish_revision(self.app, number, "promoted", "")
        self._emit("RolloutCompleted", f"revision {number} ({version}) is active", number)
        return True

    def _switch_back(self, status: RolloutStatus, reason: str, message: str) -> None:
        """Post-promotion failure: the previous active revision (warm) takes traffic again."""
        failed = status.stable
        previous = status.verifying
        assert failed is not None
        assert previous is not None
        status.warm = [w for w in status.warm if w.revision != previous]
        status.stable = previous
        status.weights = {previous: 100}
        status.verifying = None
        self._retire_later(status, failed)
        self.store.finish_revision(self.app, failed, "aborted", reason)
        self.store.finish_revision(self.app, previous, "promoted", "switched back")
        status.phase = Phase.DEGRADED
        status.message = f"RolloutAborted: {message}; revision {previous} is active again"
        self._emit("RolloutAborted", status.message, failed, {"reason": reason})

    def _say(self, status: RolloutStatus, message: str) -> bool:
        if status.message == message:
            return False
        status.message = message
        return True

    async def _retire(self, status: RolloutStatus) -> bool:
        """Stop revisions whose replicas have drained (or whose grace period ended)."""
        if not status.retiring:
            return False
        now = self.clock()
        in_flight = await self.in_flight()
        done: list[Retiring] = []
        for item in status.retiring:
            if now - item.since < DRAIN_MIN_S:
                continue
            busy = sum(in_flight.get(a, 0) for a in self.backend.addresses(self.app, item.revision))
            if busy and now < item.deadline:
                continue
            await self.backend.stop(self.app, item.revision)
            done.append(item)
            self._emit("RevisionStopped", f"revision {item.revision} stopped", item.revision)
        if not done:
            return False
        status.retiring = [r for r in status.retiring if r not in done]
        self._prune_history(status)
        return True

    def _prune_history(self, status: RolloutStatus) -> None:
        """Keep ``revisionHistoryLimit`` stopped revisions; forget older ones and their logs."""
        spec_json, _ = self.store.get_app(self.app)
        limit = spec_from_dict(spec_json, file=f"app {self.app}").spec.revision_history_limit
        running = status.revisions()
        old = [r.number for r in self.store.revisions(self.app) if r.number not in running]
        for number in sorted(old)[: max(0, len(old) - limit)]:
            self.store.delete_revision(self.app, number)
            self.store.delete_analyses(self.app, number)
            self.store.delete_card(self.app, number)
            self._delete_logs(number)
            self._emit("RevisionPruned", f"revision {number} left the history", number)

    def _listen_error(self) -> str:
        reason = self.routes.dataplane.listen_errors.get(self.app)
        return f"the proxy cannot serve this app: {reason}" if reason else ""

    def view(self) -> dict[str, Any]:
        """Everything ``rollwise get`` shows, as JSON."""
        status = self.status()
        spec_json, _ = self.store.get_app(self.app)
        revisions = []
        for n in sorted(status.revisions()):
            row = self.store.revision(self.app, n)
            labels = (["stable"] if n == status.stable else []) + (
                ["canary"] if n == status.canary else []
            )
            if status.strategy == "blueGreen" and labels:
                labels.append("active" if n == status.stable else "preview")
            if n == status.canary and status.aborted:
                labels.append("aborted")
            if any(w.revision == n for w in status.warm):
                labels.append("warm")
            if any(r.revision == n for r in status.retiring):
                labels.append("retiring")
            revisions.append(
                {
                    "number": n,
                    "version": row.version,
                    "labels": labels,
                    "weight": status.weights.get(n, 0),
                    "health": self.backend.health(self.app, n).as_json(),
                }
            )
        spec = spec_from_dict(spec_json, file=f"app {self.app}")
        return {
            "name": self.app,
            "phase": status.phase.value,
            "message": status.message,
            "strategy": status.strategy,
            "step": status.step,
            "step_count": status.step_count,
            "pause_reason": status.pause_reason,
            "aborted": status.aborted,
            "header_routes": [r.model_dump() for r in status.header_routes],
            "listen": spec.spec.listen,
            "replicas": spec.spec.replicas,
            "stable": status.stable,
            "canary": status.canary,
            "set_weight": status.weights.get(status.canary, 0)
            if status.canary is not None
            else 100,
            "weights": {str(k): v for k, v in status.weights.items()},
            "revisions": revisions,
            "updated": status.updated,
            "reconcile_errors": self.errors,
            "error": self._listen_error() or self.last_error,
            "analysis": [row.as_json() for row in self.store.analyses(self.app, limit=3)],
        }
