"""One app's worker on a real store, with the fakes of ``tests/fakes.py`` and a hand-set clock.

``settle`` runs passes until one asks for nothing sooner than a later time (the worker's own
rule: a pass that changed the status is followed by another at once); ``later`` moves the
clock to the next time a pass asked for, as the worker's loop would sleep until it;
``restart`` drops the worker and builds a new one from the store, as a controller killed with
-9 and started again would (the fakes keep running, as the proxy and the replicas do).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from rollwise.controller.commands import Commands
from rollwise.controller.events import Events
from rollwise.controller.status import RolloutStatus
from rollwise.controller.worker import AppWorker
from rollwise.store import Store

from ..fakes import FakeBackend, FakeClock, FakeMetrics, FakeRouter

APP = "app"
REPLICAS = 4


def rollout(strategy: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    """A spec of ``REPLICAS`` replicas with this strategy (a canary without steps if none)."""
    body: dict[str, Any] = {
        "replicas": REPLICAS,
        "listen": "127.0.0.1:9",
        "template": {"command": ["server", "{port}"]},
        "strategy": strategy or {"canary": {"steps": []}},
    }
    body.update(spec)
    return {"apiVersion": "rollwise/v1", "kind": "Rollout", "metadata": {"name": APP}, "spec": body}


def canary(*steps: dict[str, Any], **settings: Any) -> dict[str, Any]:
    """A canary strategy with these steps; the error-rate judge only, unless told."""
    settings.setdefault("analysis", {"latency": None})
    return {"canary": {"steps": list(steps), **settings}}


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = FakeClock()
        self.backend = FakeBackend()
        self.router = FakeRouter()
        self.metrics = FakeMetrics()
        self.store = Store(tmp_path / "state.db")
        self.events = Events(self.store, CollectorRegistry())
        self.store.put_app(APP, rollout(), str(tmp_path))
        self.worker = self._new_worker()

    def _new_worker(self) -> AppWorker:
        worker = AppWorker(
            APP, self.store, self.backend, self.router, self.metrics, self.events, self.clock
        )
        self.backend.on_change = lambda app, revision: worker.wake.set()
        return worker

    # what a test does

    def apply(self, strategy: dict[str, Any] | None = None, **spec: Any) -> None:
        self.store.put_app(APP, rollout(strategy, **spec), self.worker.state.base_dir)
        self.worker.state.spec_applied()

    @property
    def commands(self) -> Commands:
        return self.worker.commands

    async def release(self, version: str = "1.0.0") -> int:
        """Deploy ``version`` and settle."""
        number = await self.commands.deploy(version, [], "deploy")
        await self.settle()
        return number

    async def settle(self, limit: int = 200) -> float:
        """Passes until one asks for no pass before a later time; that time."""
        for _ in range(limit):
            wake_at = await self.worker.reconcile()
            if wake_at > self.clock.now:
                return wake_at
        raise AssertionError(f"no settled state after {limit} passes: {self.status}")

    async def later(self, seconds: float | None = None) -> None:
        """Move the clock (by ``seconds``, else to the next pass asked for) and settle."""
        wake_at = await self.settle()
        if seconds is None:
            assert not math.isinf(wake_at), "no pass is due: nothing would happen"
            self.clock.now = wake_at
        else:
            self.clock.advance(seconds)
        await self.settle()

    async def until(
        self, done: Callable[[Harness], bool], every: float = 1.0, limit_s: float = 3600
    ) -> float:
        """Advance the clock ``every`` seconds, settling each time, until ``done``; how
        long it took on the clock."""
        start = self.clock.now
        await self.settle()
        while not done(self):
            if self.clock.now - start > limit_s:
                raise AssertionError(f"not done within {limit_s}s: {self.status}")
            self.serve_second()
            self.clock.advance(every)
            await self.settle()
        return self.clock.now - start

    def serve_second(self) -> None:
        """Hook for traffic: tests set ``traffic`` to feed the metric source each second."""
        if self.traffic is not None:
            self.traffic(int(self.clock.now))

    traffic: Callable[[int], None] | None = None

    def restart(self) -> None:
        """A controller killed and started again: only the store is read back."""
        self.worker.close()
        self.worker = self._new_worker()

    # what a test reads

    @property
    def status(self) -> RolloutStatus:
        return self.worker.state.current

    def weights(self, app: str = APP) -> dict[str, int]:
        return self.router.weights(app)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.store.events(APP, limit=1000)]

    def messages(self, kind: str) -> list[str]:
        return [e.message for e in self.store.events(APP, limit=1000) if e.kind == kind]

    def outcome(self, number: int) -> tuple[str, str]:
        row = self.store.revision(APP, number)
        return row.outcome, row.reason

    def desired(self, number: int) -> int:
        run = self.backend.runs.get((APP, number))
        return run.desired if run is not None else 0
