"""The autoscaler of every app with ``spec.autoscaling``: measure each second, decide every
``interval``, as the HPA controller does.

Measured per replica of the revisions that take traffic (stable, and the canary while it
runs): requests in flight, as the data plane counts them, and CPU, as a share of one core
(psutil on the replicas' processes: the local backend's; a cluster's pods' as the backend
reads them from the metrics API, as a share of their CPU request, as an HPA measures);
and the app's p95 latency over the interval, from its metric source (the proxy's counts).
The decision is ``rollwise.autoscaling.ScalePolicy``'s; a change is a command
(``Commands.scale``): stored in the status, an event with its numbers, and the replicas
follow in the next pass (a scale-down drains first, ``controller/scaling.py``).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import psutil
import structlog
from prometheus_client import CollectorRegistry, Gauge

from rollwise.analysis.source import MetricSource, SecondCounts
from rollwise.autoscaling import ScalePolicy
from rollwise.controller.scaling import capacity
from rollwise.routing.base import ReplicaTraffic, TrafficRouter
from rollwise.routing.proxy.stats import quantile
from rollwise.spec.autoscaling import Autoscaling

if TYPE_CHECKING:
    from rollwise.controller.worker import AppWorker

__all__ = ["Autoscalers"]

log = structlog.get_logger("rollwise.autoscaler")

SAMPLE_S = 1.0


class Autoscalers:
    def __init__(
        self,
        workers: Callable[[], dict[str, AppWorker]],
        router: TrafficRouter,
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
        metrics: MetricSource | None = None,
    ) -> None:
        self.workers = workers
        self.router = router
        self.metrics = metrics
        self.clock = clock
        self._policies: dict[str, tuple[Autoscaling, ScalePolicy]] = {}
        self._samples: dict[str, deque[tuple[float, dict[str, float]]]] = {}
        self._decided: dict[str, float] = {}
        self._processes: dict[int, psutil.Process] = {}
        self._seen: set[int] = set()  # the replicas sampled in this tick
        registry = registry or CollectorRegistry()
        self.measured = Gauge(
            "rollwise_autoscaler_metric",
            "What the autoscaler measured per replica (in_flight, cpu), averaged over its interval",
            ["app", "metric"],
            registry=registry,
        )
        self.desired = Gauge(
            "rollwise_autoscaler_desired_replicas",
            "The replica count the autoscaler decided",
            ["app"],
            registry=registry,
        )

    async def run(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_S)
            try:
                await self.tick()
            except Exception:
                log.exception("autoscaler tick failed; trying again")

    async def tick(self) -> None:
        now = self.clock()
        apps = {
            app: worker
            for app, worker in list(self.workers().items())
            if worker.state.spec.spec.autoscaling is not None
        }
        for app in set(self._policies) - set(apps):
            self._forget(app)
        if not apps:
            return
        traffic = await self.router.replicas()
        self._seen = set()
        for app, worker in apps.items():
            spec = worker.state.spec.spec
            scaling = spec.autoscaling
            assert scaling is not None
            kept = self._policies.get(app)
            if kept is None or kept[0] != scaling:
                self._policies[app] = (scaling, ScalePolicy(scaling))
                self._samples[app] = deque()
                self._decided.setdefault(app, now)
            sample = self._sample(worker, traffic)
            if sample is None:
                continue
            samples = self._samples[app]
            samples.append((now, sample))
            while samples and samples[0][0] < now - scaling.interval:
                samples.popleft()
            if now - self._decided[app] < scaling.interval:
                continue
            self._decided[app] = now
            measured = await self._measured(app, scaling, samples, now)
            if not measured:
                continue  # nothing was measured: no decision on numbers that were not taken
            for name, value in measured.items():
                self.measured.labels(app, name).set(value)
            current = capacity(worker.state.current, spec)
            decision = self._policies[app][1].decide(current, measured, now)
            self.desired.labels(app).set(decision.replicas)
            if decision.replicas != current:
                await worker.commands.scale(decision.replicas, decision.why)
        for pid in set(self._processes) - self._seen:  # replicas that stopped
            del self._processes[pid]

    def _sample(
        self, worker: AppWorker, traffic: dict[str, ReplicaTraffic]
    ) -> dict[str, float] | None:
        status = worker.state.current
        numbers = [status.stable]
        if status.canary is not None and not status.aborted:
            numbers.append(status.canary)
        ready = [
            r
            for n in numbers
            if n is not None
            for r in worker.backend.health(worker.app, n).replicas
            if r.state == "ready"
        ]
        if not ready:
            return None
        sample: dict[str, float] = {}
        counted = [traffic[r.address].in_flight for r in ready if r.address in traffic]
        if counted:  # a data plane that counts nothing per replica says nothing (not 0)
            sample["in_flight"] = sum(counted) / len(ready)
        self._seen.update(r.pid for r in ready if r.pid is not None)
        cpus = [c for r in ready if (c := self._cpu(r.pid) if r.pid else r.cpu) is not None]
        if cpus:
            sample["cpu"] = statistics.fmean(cpus)
        return sample

    async def _measured(
        self,
        app: str,
        scaling: Autoscaling,
        samples: deque[tuple[float, dict[str, float]]],
        now: float,
    ) -> dict[str, float]:
        """The interval's means of what was sampled, and its p95 latency when targeted."""
        names = {name for _, sample in samples for name in sample}
        measured = {
            name: statistics.fmean(s[name] for _, s in samples if name in s) for name in names
        }
        if scaling.target.p95_latency is not None:
            latency = await self._p95(app, now - scaling.interval)
            if latency is not None:
                measured["p95_latency"] = latency
        return measured

    async def _p95(self, app: str, since: float) -> float | None:
        """The p95 latency, in seconds, of the app's live requests over the last interval
        (whole seconds only: the source's ``settle_s`` later)."""
        if self.metrics is None:
            return None
        start = int(since - self.metrics.settle_s)
        series = await self.metrics.seconds(app, start, preview=False)
        last = int(self.clock() - self.metrics.settle_s)
        whole = [c for seconds in series.values() for t, c in seconds.items() if t < last]
        return quantile(dict(sum(whole, SecondCounts()).hist), 0.95)

    def _cpu(self, pid: int) -> float | None:
        """The process's CPU since the last sample, as a share of one core."""
        process = self._processes.get(pid)
        try:
            if process is None:
                process = self._processes[pid] = psutil.Process(pid)
                process.cpu_percent(None)  # the first call starts the measure
                return None
            return process.cpu_percent(None) / 100.0
        except psutil.Error:
            self._processes.pop(pid, None)
            return None

    def _forget(self, app: str) -> None:
        self._policies.pop(app, None)
        self._samples.pop(app, None)
        self._decided.pop(app, None)
