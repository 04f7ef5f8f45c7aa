"""Synthetic monitoring: smoke tests with a ``schedule`` run continuously where an app's live
traffic enters (the proxy's listener, a cluster's stable Service), whatever it is doing.

Every run is counted in Prometheus (``rollwise_smoke_checks_total{app,test,status}``,
``rollwise_smoke_check_up`` 1/0, ``rollwise_smoke_check_duration_seconds``); a check that
starts failing, or recovers, is an event (``SmokeCheckFailed``, ``SmokeCheckRecovered``),
not every run. During a rollout a critical check that fails counts as a failed verdict: the
worker asks ``failing_since`` and aborts (or switches back).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from rollwise.backends.base import DIRECT, Reach
from rollwise.smoke import Target, TestResult, run_test
from rollwise.spec import RolloutSpec
from rollwise.spec.smoke import SmokeTest
from rollwise.words import EventKind

__all__ = ["SmokeMetrics", "SyntheticMonitor"]

Emit = Callable[[EventKind, str, int | None, dict[str, Any] | None], None]


class SmokeMetrics:
    """The controller's smoke-check series (one registry, shared by every app)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter(
            "rollwise_smoke_checks",
            "Scheduled smoke checks run, by outcome",
            ["app", "test", "status"],
            registry=registry,
        )
        self.up = Gauge(
            "rollwise_smoke_check_up",
            "1 when the last scheduled run of a smoke check passed, else 0",
            ["app", "test"],
            registry=registry,
        )
        self.duration = Gauge(
            "rollwise_smoke_check_duration_seconds",
            "How long the last scheduled run of a smoke check took",
            ["app", "test"],
            registry=registry,
        )


class SyntheticMonitor:
    def __init__(
        self,
        app: str,
        metrics: SmokeMetrics,
        emit: Emit,
        wake: Callable[[], None],
        clock: Callable[[], float] = time.time,
        reach: Reach = DIRECT,
    ) -> None:
        self.app = app
        self.reach = reach
        self.metrics = metrics
        self.emit = emit
        self.wake = wake
        self.clock = clock
        self.due: dict[str, float] = {}
        self.last: dict[str, tuple[float, TestResult]] = {}
        self._running: dict[str, asyncio.Task[None]] = {}

    def tick(self, spec: RolloutSpec, revision: int | None) -> float:
        """Start each scheduled test that is due (one run of a test at a time); when the
        next one is due (``inf``: none is scheduled). A run that ends wakes the pass."""
        now = self.clock()
        scheduled = {t.name: t for t in spec.smoke_tests if t.schedule is not None}
        for name in [n for n in self.due if n not in scheduled]:  # removed from the spec
            self.due.pop(name)
            self.last.pop(name, None)
        for name, test in scheduled.items():
            if name in self._running or now < self.due.get(name, 0.0):
                continue
            assert test.schedule is not None
            self.due[name] = now + test.schedule
            url, label = self.reach.entry(self.app, spec)
            target = Target(
                url,
                self.app,
                revision,
                card_path=spec.a2a.card if spec.a2a is not None else "/.well-known/agent-card.json",
                label=label,
            )
            task = asyncio.create_task(self._run(test, target, revision), name=f"monitor {name}")
            self._running[name] = task
            task.add_done_callback(self._finished)
        waiting = [due for name, due in self.due.items() if name not in self._running]
        return min(waiting, default=math.inf)

    def _finished(self, task: asyncio.Task[None]) -> None:
        for name, running in list(self._running.items()):
            if running is task:
                del self._running[name]
        self.wake()  # the next run of this test is due from now on

    async def _run(self, test: SmokeTest, target: Target, revision: int | None) -> None:
        async with self.reach.client(None) as client:  # the test's timeout bounds it
            result = await run_test(test, target, client)
        previous = self.last.get(test.name)
        self.last[test.name] = (self.clock(), result)
        self.metrics.runs.labels(self.app, test.name, result.status.value).inc()
        self.metrics.up.labels(self.app, test.name).set(1 if result.ok else 0)
        self.metrics.duration.labels(self.app, test.name).set(result.duration)
        was_ok = previous is None or previous[1].ok
        if was_ok and not result.ok:
            self.emit(
                EventKind.SMOKE_CHECK_FAILED,
                f"scheduled smoke test {test.name} failed on {target.name}: {result.message}",
                revision,
                result.as_json(),
            )
        elif not was_ok and result.ok:
            message = f"scheduled smoke test {test.name} passes again"
            self.emit(EventKind.SMOKE_CHECK_RECOVERED, message, revision, None)

    def failing_since(self, since: float) -> TestResult | None:
        """A critical scheduled test whose last run, after ``since``, did not pass."""
        for at, result in self.last.values():
            if at >= since and result.blocking:
                return result
        return None

    def close(self) -> None:
        for task in self._running.values():
            task.cancel()
        self._running.clear()
