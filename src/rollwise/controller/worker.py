"""One app's reconcile loop: read status, decide, persist, then act.

A pass is a list of ordered steps that may end it early (the shape of Argo Rollouts'
rollout/canary.go). Every change of status is written to the store before the outside world
is touched, so a controller killed at any point resumes from a consistent status.
This issue's strategy is a plain cut-over: the new revision takes all traffic once all its
replicas are ready; the strategies issue adds canary steps and blue-green here.
"""

from __future__ import annotations

import asyncio
import getpass
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from rollwise.backends.local import LocalBackend
from rollwise.controller.events import Events
from rollwise.controller.routes import RouteSync, app_section
from rollwise.controller.status import Phase, Retiring, RolloutStatus
from rollwise.errors import RollwiseError
from rollwise.spec import Rollout, RolloutSpec, apply_overrides, spec_from_dict
from rollwise.store import Store

__all__ = ["AppWorker"]

log = structlog.get_logger("rollwise.controller")

DRAIN_MIN_S = 0.3


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

    # commands

    async def deploy(self, version: str, sets: list[str], cause: str) -> int:
        """Create a revision from the app's spec (plus ``--set``) and start rolling it out."""
        async with self.lock:
            spec_json, _ = self.store.get_app(self.app)
            spec = spec_from_dict(spec_json, file=f"app {self.app}")
            if sets:
                spec = apply_overrides(spec, sets)
            number = self.store.add_revision(
                self.app, version, spec.model_dump(by_alias=True), getpass.getuser(), cause
            )
            status = self.status()
            now = self.clock()
            if status.canary is not None:
                superseded = status.canary
                self.store.finish_revision(
                    self.app, superseded, "superseded", f"replaced by revision {number}"
                )
                status.weights.pop(superseded, None)
                status.retiring.append(Retiring(revision=superseded, since=now, deadline=now))
                self.events.emit(
                    self.app,
                    "RolloutSuperseded",
                    f"revision {superseded} superseded by revision {number}",
                    superseded,
                )
            status.canary = number
            status.canary_started = now
            status.strategy = spec.spec.strategy.name
            status.phase = Phase.PROGRESSING
            status.message = f"starting revision {number} ({version})"
            self.save(status)
            self.events.emit(
                self.app,
                "RolloutStarted",
                f"rollout of revision {number} ({version}) started",
                number,
                {"version": version},
            )
        self.wake.set()
        return number

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
                self.log.warning("reconcile pass failed", error=str(exc), retry_in=backoff)
                delay, backoff = backoff, min(backoff * 2, 10.0)
            except Exception as exc:
                self.errors += 1
                self.last_error = f"internal error ({type(exc).__name__}); see the controller log"
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
        self._ensure_replicas(status, base_dir)
        if self._progress(status):
            self.save(status)
        await self._push_routes(status, spec)
        if await self._retire(status):
            self.save(status)
            await self._push_routes(status, spec)

    async def _push_routes(self, status: RolloutStatus, spec: RolloutSpec) -> None:
        section = app_section(self.app, spec, status, self.versions(status), self.backend)
        await self.routes.update(self.app, section)

    def _ensure_replicas(self, status: RolloutStatus, base_dir: str) -> None:
        for number in (status.stable, status.canary):
            if number is None:
                continue
            rollout, version = self.rollout(number)
            self.backend.ensure(
                self.app, number, version, rollout.spec.template, base_dir, rollout.spec.replicas
            )

    def _progress(self, status: RolloutStatus) -> bool:
        """Move the new revision forward; ``True`` when the status changed."""
        number = status.canary
        if number is None:
            if status.stable is not None and status.phase == Phase.PROGRESSING:
                status.phase = Phase.HEALTHY
                status.message = ""
                return True
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
        started = status.canary_started or now
        if now - started > rollout.spec.progress_deadline_seconds:
            return self._abort(
                status,
                "deployment timeout",
                f"revision {number} ({version}) not ready after "
                f"{rollout.spec.progress_deadline_seconds:.0f}s (progressDeadlineSeconds)",
            )
        if health.ready < health.desired or health.desired == 0:
            message = f"waiting for revision {number}: {health.ready}/{health.desired} ready"
            if message != status.message:
                status.message = message
                return True
            return False
        old = status.stable
        status.stable = number
        status.canary = None
        status.canary_started = None
        status.weights = {number: 100}
        if old is not None and old != number:
            grace = rollout.spec.template.stop_grace_period
            status.retiring.append(Retiring(revision=old, since=now, deadline=now + grace))
            self.store.finish_revision(self.app, old, "replaced", f"replaced by revision {number}")
        status.phase = Phase.HEALTHY
        status.message = ""
        self.store.finish_revision(self.app, number, "promoted", "")
        self.events.emit(
            self.app,
            "RolloutCompleted",
            f"revision {number} ({version}) serves 100% of requests"
            + (f"; revision {old} drains" if old is not None and old != number else ""),
            number,
            {"duration_s": round(now - started, 3)},
        )
        return True

    def _abort(self, status: RolloutStatus, reason: str, message: str) -> bool:
        number = status.canary
        assert number is not None
        now = self.clock()
        status.canary = None
        status.canary_started = None
        status.weights.pop(number, None)
        status.retiring.append(Retiring(revision=number, since=now, deadline=now))
        status.phase = Phase.DEGRADED
        status.message = f"RolloutAborted: {message}"
        self.store.finish_revision(self.app, number, "aborted", reason)
        self.events.emit(self.app, "RolloutAborted", message, number, {"reason": reason})
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
            self.events.emit(
                self.app, "RevisionStopped", f"revision {item.revision} stopped", item.revision
            )
        if not done:
            return False
        status.retiring = [r for r in status.retiring if r not in done]
        return True

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
        }
