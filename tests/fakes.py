"""In-memory implementations of the controller's three protocols, and a clock to set by hand.

They keep the protocols' contracts (``backends/base.py``, ``routing/base.py``,
``analysis/source.py``) without processes, sockets or time: a unit test of a reconcile pass
says which replicas are ready, what traffic the data plane saw and what time it is, runs a
pass, and reads what the controller decided. The real implementations are exercised by the
end-to-end tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rollwise.analysis.series import bucket_of
from rollwise.analysis.source import SecondCounts, Series
from rollwise.backends.base import (
    DIRECT,
    HealthListener,
    Reach,
    ReplicaState,
    RevisionHealth,
    Workload,
)
from rollwise.routing.base import ReplicaTraffic
from rollwise.routing.table import AppTable, Table

__all__ = ["FakeBackend", "FakeClock", "FakeMetrics", "FakeRouter"]


class FakeClock:
    """Wall-clock seconds that move only when told."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeRevision:
    workload: Workload
    desired: int
    ready: int = 0
    crash_loop: bool = False
    stuck: str = ""  # why its replicas do not start, as a cluster would say


@dataclass
class FakeBackend:
    """Replicas that become ready when the test says (``auto_ready``: at once)."""

    auto_ready: bool = True
    on_change: HealthListener = lambda app, revision: None
    runs: dict[tuple[str, int], FakeRevision] = field(default_factory=dict)
    stopped: list[tuple[str, int]] = field(default_factory=list)
    suspects: list[str] = field(default_factory=list)
    reach: Reach = DIRECT
    pids: bool = True  # False: replicas with no local process (a cluster's pods)
    cpu: float | None = None  # what the platform measured per replica (a cluster's metrics)

    def ensure(self, workload: Workload, replicas: int) -> None:
        key = (workload.app, workload.revision)
        run = self.runs.get(key)
        if run is None:
            run = self.runs[key] = FakeRevision(workload, replicas)
        run.desired = replicas
        if self.auto_ready and not run.crash_loop:
            run.ready = replicas
        run.ready = min(run.ready, replicas)

    def set_ready(self, app: str, revision: int, ready: int) -> None:
        self.runs[(app, revision)].ready = ready
        self.on_change(app, revision)

    def crash_loop(self, app: str, revision: int) -> None:
        run = self.runs[(app, revision)]
        run.crash_loop, run.ready = True, 0
        self.on_change(app, revision)

    def health(self, app: str, revision: int) -> RevisionHealth:
        run = self.runs.get((app, revision))
        if run is None:
            return RevisionHealth.none()
        replicas = tuple(
            ReplicaState(
                i,
                _address(revision, i),
                1000 + i if self.pids else None,
                "ready" if i < run.ready else "starting",
                0,
                None,
                reason="" if i < run.ready else run.stuck,
                cpu=self.cpu,
            )
            for i in range(run.desired)
        )
        logs = ("boom: crashing at start",) if run.crash_loop else ()
        return RevisionHealth(run.desired, run.desired, run.ready, run.crash_loop, replicas, logs)

    def addresses(self, app: str, revision: int, *, ready: bool = True) -> list[str]:
        run = self.runs.get((app, revision))
        if run is None:
            return []
        return [_address(revision, i) for i in range(run.ready if ready else run.desired)]

    async def stop(self, app: str, revision: int) -> None:
        if self.runs.pop((app, revision), None) is not None:
            self.stopped.append((app, revision))

    async def adopt(self, running: Mapping[tuple[str, int], Workload]) -> int:
        for key in [k for k in self.runs if k not in running]:
            del self.runs[key]
        return len(self.runs)

    def suspect(self, address: str) -> None:
        self.suspects.append(address)

    def owner(self, address: str) -> tuple[str, int] | None:
        for (app, revision), run in self.runs.items():
            if address in {_address(revision, i) for i in range(run.desired)}:
                return app, revision
        return None

    def log_paths(self, app: str, revision: int | None = None) -> list[Path]:
        return []

    async def run(self) -> None:
        return None

    async def stop_all(self) -> None:
        for app, revision in list(self.runs):
            await self.stop(app, revision)

    async def aclose(self) -> None:
        return None


def _address(revision: int, index: int) -> str:
    return f"10.0.{revision}.{index}:80"


@dataclass
class FakeRouter:
    """A data plane that applies whatever it is given, and counts in-flight requests as
    the test sets them."""

    tables: dict[str, AppTable] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    pushes: int = 0

    @property
    def generation(self) -> int:
        return self.pushes

    async def start(self) -> bool:
        return False

    async def set_routes(self, app: str, routes: AppTable | None) -> bool:
        if self.tables.get(app) == routes:
            return False
        if routes is None:
            del self.tables[app]
        else:
            self.tables[app] = routes
        self.pushes += 1
        return True

    def problem(self, app: str) -> str:
        return self.problems.get(app, "")

    async def applied(self) -> Table:
        return Table(self.pushes, dict(self.tables))

    async def replicas(self) -> dict[str, ReplicaTraffic]:
        return {a: ReplicaTraffic(n, False) for a, n in self.in_flight.items()}

    def weights(self, app: str) -> dict[str, int]:
        table = self.tables.get(app)
        return table.weights() if table is not None else {}

    async def run(self) -> None:
        return None

    async def stop(self) -> None:
        self.tables.clear()

    async def aclose(self) -> None:
        return None


@dataclass
class FakeMetrics:
    """Per-second counts the test writes, as the proxy would have counted them."""

    settle_s: float = 1.25
    series: Series = field(default_factory=dict)

    def serve(
        self, revision: int, second: int, requests: int, failures: int = 0, latency_s: float = 0.01
    ) -> None:
        hist = {bucket_of(latency_s): requests} if requests else {}
        counts = SecondCounts(requests, failures, hist)
        seconds = self.series.setdefault(revision, {})
        seconds[second] = seconds[second] + counts if second in seconds else counts

    async def seconds(self, app: str, since: int, *, preview: bool = True) -> Series:
        return {
            revision: {s: c for s, c in seconds.items() if s >= since}
            for revision, seconds in self.series.items()
        }
