"""One app's reconcile loop: a pass runs when something can change its outcome, and reads as
the rollout's story, top to bottom.

A pass builds one context, then: warm revisions whose delay ended start retiring; the
rollout progresses (its guards, then its strategy's step, then what the strategy decided);
the status is saved **before** the outside world is touched; the backend is told how many
replicas each revision needs; the routes follow; drained revisions stop. A controller killed
between any two of these resumes from a consistent status.

Nothing polls. A pass is woken by a command, a change of a revision's health (the backend's
listener), a gate or a scheduled check that finished, or a time the pass itself asked for
(``PassContext.wake_by``: the end of a pause, a progress deadline, the next whole second of
an analysis, a warm revision's expiry, a drain). An idle app does no work at all.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter

from rollwise.analysis.source import MetricSource
from rollwise.backends.base import Backend
from rollwise.controller import transitions, views
from rollwise.controller.checks import ReleaseChecks
from rollwise.controller.commands import Commands
from rollwise.controller.context import PassContext
from rollwise.controller.decisions import Abort, Complete, Decision, Promote, SwitchBack, Wait
from rollwise.controller.events import Events
from rollwise.controller.flags import AppFlags
from rollwise.controller.judging import AppAnalyses
from rollwise.controller.monitor import SmokeMetrics, SyntheticMonitor
from rollwise.controller.ofrep import replica_url
from rollwise.controller.release_gates import ReleaseGates, gates_apply
from rollwise.controller.retirement import (
    conversation_drain,
    expire_warm,
    prune_history,
    stop_drained,
)
from rollwise.controller.routes import app_routes, preview_routes
from rollwise.controller.scaling import Shrinks, capacity
from rollwise.controller.state import AppState, RevisionInfo
from rollwise.controller.strategies import needs_verification, strategy_for, verify
from rollwise.errors import RollwiseError
from rollwise.routing.base import TrafficRouter
from rollwise.smoke import SmokeTestSuite
from rollwise.spec.duration import format_duration
from rollwise.store import Store
from rollwise.words import EventKind, Outcome, Phase, Reason, preview_app

__all__ = ["AppWorker", "ReconcileMetrics"]

log = structlog.get_logger("rollwise.controller")
TRAFFIC_EVERY_S = 2.0

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 10.0


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
    """One app: its state in memory, its commands, and the loop of its reconcile passes."""

    def __init__(
        self,
        app: str,
        store: Store,
        backend: Backend,
        router: TrafficRouter,
        metrics: MetricSource,
        events: Events,
        clock: Callable[[], float] = time.time,
        smoke_metrics: SmokeMetrics | None = None,
        reconcile_metrics: ReconcileMetrics | None = None,
        ofrep_url: str | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.backend = backend
        self.router = router
        self.events = events
        self.clock = clock
        self.state = AppState(app, store)
        self.lock = asyncio.Lock()
        self.wake = asyncio.Event()
        self.errors = 0
        self.last_error = ""
        self.passes = 0
        self.log = log.bind(app=app)
        self.analyses = AppAnalyses(app, store, metrics, clock)
        hooks = ReleaseGates(app, self.wake.set, clock)
        self.checks = ReleaseChecks(app, store, self._emit, self.wake.set, hooks, backend.reach)
        self.monitor = SyntheticMonitor(
            app,
            smoke_metrics or SmokeMetrics(CollectorRegistry()),
            self._emit,
            self.wake.set,
            clock,
            backend.reach,
        )
        self.flags = AppFlags(app, store, self._emit, clock)
        self.shrinks = Shrinks(app, backend)
        self._traffic: tuple[float, dict[int, dict[str, Any]]] = (-TRAFFIC_EVERY_S, {})
        self.ofrep_url = ofrep_url
        self.failures = (reconcile_metrics or ReconcileMetrics(CollectorRegistry())).failures
        self.commands = Commands(
            app, self.lock, self.context, self._save, self.wake.set, self.checks
        )

    def _emit(
        self, kind: EventKind, message: str, revision: int | None, data: dict[str, Any] | None
    ) -> None:
        self.events.emit(self.app, kind, message, revision, data)

    def context(self, *, read_only: bool = False) -> PassContext:
        """A context for one pass or command (``read_only``: for views, no copy)."""
        return PassContext(
            app=self.app,
            status=self.state.current if read_only else self.state.status(),
            state=self.state,
            backend=self.backend,
            store=self.store,
            now=self.clock(),
            checks=self.checks,
            analyses=self.analyses,
            monitor=self.monitor,
        )

    def _save(self, ctx: PassContext) -> None:
        """The status, the history outcomes and the events of a pass or a command, in one
        transaction (one fsync); the events are published once it is committed."""
        try:
            with self.store.transaction():
                for number, outcome, reason in ctx.finished:
                    self.store.finish_revision(self.app, number, outcome, reason)
                stored = self.events.record(self.app, ctx.events)
                self.state.save(ctx.status, ctx.now)
        except BaseException:
            self.state.reload()
            raise
        for number, outcome, _ in ctx.finished:
            if outcome in (Outcome.PROMOTED, Outcome.ABORTED):
                self.checks.hooks.post_rollout(ctx.revision(number), outcome, self._emit)
        ctx.events.clear()
        ctx.finished.clear()
        self.events.publish(self.app, stored)

    def close(self) -> None:
        self.checks.close()
        self.monitor.close()

    # the loop

    async def run(self) -> None:
        backoff = BACKOFF_MIN_S
        while True:
            self.wake.clear()
            try:
                async with self.lock:
                    wake_at = await self.reconcile()
                self.errors = 0
                self.last_error = ""
                backoff = BACKOFF_MIN_S
                delay = wake_at - self.clock()
            except RollwiseError as exc:
                self.errors += 1
                self.last_error = str(exc)
                self.failures.labels(self.app, "failed").inc()
                self.log.warning("reconcile pass failed", error=str(exc), retry_in=backoff)
                delay, backoff = backoff, min(backoff * 2, BACKOFF_MAX_S)
            except Exception as exc:
                self.errors += 1
                self.last_error = f"internal error ({type(exc).__name__}); see the controller log"
                self.failures.labels(self.app, "crashed").inc()
                self.log.exception("reconcile pass crashed", retry_in=backoff)
                delay, backoff = backoff, min(backoff * 2, BACKOFF_MAX_S)
            if delay <= 0:
                continue
            try:
                async with asyncio.timeout(None if math.isinf(delay) else delay):
                    await self.wake.wait()
            except TimeoutError:
                pass

    async def reconcile(self) -> float:
        """One pass; when the next one is due if nothing wakes it first (``inf``: never).
        A pass that changed the status is followed by another at once, until one changes
        nothing: each step then sees what the previous ones decided."""
        self.passes += 1
        ctx = self.context()
        expire_warm(ctx)
        if ctx.status.stable is not None:
            ctx.wake_by(self.monitor.tick(ctx.spec, ctx.status.stable))
        await self._progress(ctx)
        if ctx.changed or ctx.events or ctx.finished:
            self._save(ctx)
        self._declare(ctx)
        await self._route(ctx)
        if await stop_drained(ctx, self.router):
            prune_history(ctx)
            self._save(ctx)
            await self._route(ctx)
        again = await self.shrinks.finish(self.router, ctx.now, conversation_drain(ctx))
        if again is not None:
            ctx.wake_by(again)
        return ctx.now if ctx.changed else ctx.wake_at

    # the steps of a pass

    async def _progress(self, ctx: PassContext) -> None:
        status = ctx.status
        if status.canary is None:
            if status.verifying is not None and status.stable is not None:
                revision = ctx.revision(status.stable)
                self._act(ctx, revision, await verify(ctx, revision))
            elif status.stable is not None and status.phase == Phase.PROGRESSING:
                status.phase = Phase.HEALTHY
                ctx.say("")
                ctx.mark()
            return
        if status.aborted:
            return
        revision = ctx.revision(status.canary)
        gated = gates_apply(status)
        hooks = ctx.checks.hooks
        decision = hooks.recheck(ctx, revision) if gated else None
        if decision is None and gated:
            decision = hooks.confirm(ctx, revision, "confirm-rollout")
        if decision is None:
            decision = self._guard(ctx, revision)
        if decision is None and gated:
            decision = hooks.rollback(ctx, revision)
        if decision is None:
            decision = await strategy_for(ctx, revision).step(ctx, revision)
        if isinstance(decision, Promote) and gated:
            decision = hooks.confirm(ctx, revision, "confirm-promotion") or decision
        self._act(ctx, revision, decision)

    def _guard(self, ctx: PassContext, revision: RevisionInfo) -> Decision | None:
        """What ends or holds any rollout: a crash loop, no progress for
        ``progressDeadlineSeconds``, no ready replica yet."""
        status = ctx.status
        number, version = revision.number, revision.version
        health = ctx.health(number)
        if health.crash_loop:
            last = health.last_logs[-1] if health.last_logs else "no output"
            return Abort(
                Reason.CRASH_LOOP,
                f"revision {number} ({version}) is crash-looping; last log line: {last}",
            )
        if status.pause_reason is None:
            progressed = max(status.canary_started or ctx.now, status.step_started or 0.0)
            deadline = revision.spec.progress_deadline_seconds
            if ctx.now > progressed + deadline:
                stuck = health.stuck()
                return Abort(
                    Reason.DEADLINE,
                    f"revision {number} ({version}) made no progress for "
                    f"{format_duration(deadline)} (progressDeadlineSeconds)"
                    + (f"; {stuck}" if stuck else ""),
                )
            ctx.wake_by(progressed + deadline + 0.001)
        if health.ready == 0:
            stuck = health.stuck()
            ctx.say(
                f"waiting for revision {number}: {health.ready}/{health.desired} ready"
                + (f"; {stuck}" if stuck else "")
            )
            return Wait()
        return None

    def _act(self, ctx: PassContext, revision: RevisionInfo, decision: Decision) -> None:
        """Carry out what the strategy decided."""
        number = revision.number
        if isinstance(decision, Abort):
            transitions.abort(ctx, decision.reason, decision.message)
        elif isinstance(decision, SwitchBack):
            transitions.switch_back(ctx, decision.reason, decision.message)
        elif isinstance(decision, Complete):
            transitions.complete(ctx, number, ctx.status.step_started or ctx.now)
        elif isinstance(decision, Promote):
            ready, wanted = ctx.health(number).ready, capacity(ctx.status, revision.spec)
            if ready < wanted:
                ctx.say(
                    f"scaling revision {number} to {wanted} ready replicas ({ready} now) "
                    "before it takes all traffic"
                )
                return
            transitions.promote(
                ctx, number, verify=needs_verification(revision), switched=revision.blue_green
            )

    def _declare(self, ctx: PassContext) -> None:
        """Tell the backend how many replicas each running revision needs now."""
        status = ctx.status
        wanted: dict[int, int] = {}
        for number in [status.stable, *(w.revision for w in status.warm)]:
            if number is not None:
                wanted[number] = capacity(status, ctx.revision(number).spec)
        if status.canary is not None and not status.aborted:
            revision = ctx.revision(status.canary)
            held = ctx.checks.hooks.holds_start(status, revision)
            wanted[status.canary] = (
                0 if held else strategy_for(ctx, revision).replicas(ctx, revision)
            )
            backend = ctx.spec.backend
            split = 0 < status.canary_weight() < 100
            if backend.kind == "kubernetes" and backend.router == "replicas" and split:
                # no router splits traffic: the pods' ratio is the split (Argo's basic canary)
                stable = status.stable
                if stable is not None and stable in wanted:
                    wanted[stable] = max(1, wanted[stable] - wanted[status.canary])
        for number, replicas in wanted.items():
            env: tuple[tuple[str, str], ...] = ()
            if self.ofrep_url is not None:
                env = (("ROLLWISE_OFREP_URL", replica_url(self.ofrep_url, self.app, number)),)
            workload = ctx.revision(number).workload(self.app, ctx.base_dir, env)
            self.shrinks.want(workload, replicas, ctx.now)
        for number in [n for n in self.shrinks.pending if n not in wanted]:
            self.shrinks.forget(number)
        ctx.draining = {n: self.shrinks.draining(n) for n in self.shrinks.pending}

    async def _route(self, ctx: PassContext) -> None:
        await self.router.set_routes(self.app, app_routes(ctx))
        await self.router.set_routes(preview_app(self.app), preview_routes(ctx))

    # reads

    def view(self) -> dict[str, Any]:
        """Everything ``rollwise get`` shows, as JSON."""
        unserved = self.router.problem(self.app)
        ctx = self.context(read_only=True)
        view = views.app_view(ctx, self.errors, unserved or self.last_error)
        if unserved and view["phase"] == "Healthy":  # its revisions are fine; nobody reaches them
            view["phase"], view["message"] = "Degraded", unserved
        view["flags"] = views.flags(self.flags, ctx.spec)
        return view

    async def traffic(self, view: dict[str, Any]) -> dict[str, Any]:
        """``view`` with each revision's A2A outcomes and draining conversations added, as
        read at most ``TRAFFIC_EVERY_S`` ago (views are polled; reading costs the proxy)."""
        now = time.monotonic()
        read, known = self._traffic
        if now - read >= TRAFFIC_EVERY_S:
            ctx = self.context(read_only=True)
            known = await views.traffic(ctx, self.router, self.analyses.metrics)
            self._traffic = (now, known)
        for rev in view["revisions"]:
            rev.update(known.get(rev["number"], {}))
        return view

    async def cards(self) -> list[dict[str, Any]]:
        return await views.cards(self.context(read_only=True))

    def runbooks(self, kind: str | None = None) -> list[dict[str, Any]]:
        return views.runbooks(self.context(read_only=True), kind=kind)

    async def smoke(self, revision: int | None = None, url: str | None = None) -> SmokeTestSuite:
        return await views.smoke(self.context(read_only=True), revision, url)
