"""The local backend: a revision's replicas are OS processes on this machine.

The backend owns the processes; the controller owns the decisions. ``ensure`` states how many
replicas a revision should have, and the supervision loop makes it so: it starts, probes,
restarts with exponential backoff, and reports a crash loop with the last log lines. Each
replica's (pid, start time, port) is written to the store before anything else relies on it,
so that a restarted controller adopts what still runs instead of starting duplicates.

Nothing is polled. A process's exit arrives through its pidfd in the event loop's selector;
each replica's next probe and restart is a timer of the loop; ``ensure`` and ``stop`` wake
the loop that matches counts. A ready replica is probed every ``healthInterval`` (5 s), one
that is becoming ready (or just failed a probe) every ``interval``, and one the proxy saw
failing (``suspect``) at once. A change of a revision's health calls the controller's
listener, which wakes that app's reconcile pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from rollwise.backends.base import (
    DIRECT,
    BackendEvents,
    HealthListener,
    Reach,
    ReplicaState,
    RevisionHealth,
    Workload,
)
from rollwise.backends.ports import free_port
from rollwise.backends.probe import probe
from rollwise.backends.process import ManagedProcess, kill_marked, rotate_log, tail
from rollwise.backends.replica import REPLICA_MARKER, replica_command
from rollwise.errors import ReplicaStartError
from rollwise.spec.duration import format_duration
from rollwise.store import ReplicaRow, Store
from rollwise.words import EventKind

__all__ = ["LocalBackend"]

log = structlog.get_logger("rollwise.backend")

BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
CRASH_LOOP_RESTARTS = 3
STABLE_AFTER_S = 10.0
HOUSEKEEPING_S = 5.0
FIRST_PROBE_S = 0.025  # log rotation, and liveness where the kernel has no pidfd


@dataclass(eq=False)
class Replica:
    app: str
    revision: int
    index: int
    port: int
    log_path: Path
    process: ManagedProcess | None = None
    ready: bool = False
    successes: int = 0
    failures: int = 0
    started_at: float = 0.0
    ready_since: float = 0.0
    restarts: int = 0
    last_exit: int | None = None
    timer: asyncio.TimerHandle | None = None
    probing: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def state(self) -> str:
        if self.process is None:
            return "crashed" if self.restarts else "pending"
        return "ready" if self.ready else "starting"

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.probing is not None:
            self.probing.cancel()
            self.probing = None


@dataclass(eq=False)
class RevisionSet:
    workload: Workload
    desired: int
    replicas: dict[int, Replica] = field(default_factory=dict)
    crash_loop: bool = False
    stopping: bool = False

    @property
    def app(self) -> str:
        return self.workload.app

    @property
    def revision(self) -> int:
        return self.workload.revision


class LocalBackend:
    """Replicas as processes; one supervision loop for all apps."""

    reach: Reach = DIRECT  # replicas answer on this machine

    def __init__(
        self,
        store: Store,
        state_dir: Path,
        clock: Callable[[], float] = time.monotonic,
        on_event: BackendEvents | None = None,
        on_change: HealthListener | None = None,
    ) -> None:
        self.store = store
        self.state_dir = state_dir
        self.clock = clock
        self.sets: dict[tuple[str, int], RevisionSet] = {}
        self.on_event = on_event or (lambda app, rev, kind, msg: None)
        self.on_change = on_change or (lambda app, rev: None)
        self._by_address: dict[str, tuple[str, int]] = {}
        self._wake = asyncio.Event()
        self._polled: set[Replica] = set()  # processes without a pidfd

    async def aclose(self) -> None:
        for rs in self.sets.values():
            for r in rs.replicas.values():
                r.cancel()
                if r.process is not None:
                    r.process.unwatch()

    # what the controller asks for

    def ensure(self, workload: Workload, replicas: int) -> None:
        key = (workload.app, workload.revision)
        rs = self.sets.get(key)
        if rs is None:
            rs = self.sets[key] = RevisionSet(workload, replicas)
        elif rs.desired == replicas and not rs.stopping:
            return
        rs.desired = replicas
        rs.stopping = False
        self._wake.set()

    def health(self, app: str, revision: int) -> RevisionHealth:
        rs = self.sets.get((app, revision))
        if rs is None:
            return RevisionHealth.none()
        replicas = sorted(rs.replicas.values(), key=lambda r: r.index)
        states = tuple(
            ReplicaState(
                r.index,
                r.address,
                r.process.pid if r.process else None,
                r.state(),
                r.restarts,
                r.last_exit,
            )
            for r in replicas
        )
        logs: tuple[str, ...] = ()
        if rs.crash_loop and rs.replicas:
            worst = max(rs.replicas.values(), key=lambda r: r.restarts)
            logs = tuple(tail(worst.log_path, 10))
        return RevisionHealth(
            desired=rs.desired,
            running=sum(1 for r in replicas if r.process is not None),
            ready=sum(1 for r in replicas if r.ready),
            crash_loop=rs.crash_loop,
            replicas=states,
            last_logs=logs,
        )

    def addresses(self, app: str, revision: int, *, ready: bool = True) -> list[str]:
        rs = self.sets.get((app, revision))
        if rs is None:
            return []
        replicas = sorted(rs.replicas.values(), key=lambda r: r.index)
        return [r.address for r in replicas if r.ready or not ready]

    def owner(self, address: str) -> tuple[str, int] | None:
        return self._by_address.get(address)

    def suspect(self, address: str) -> None:
        owner = self._by_address.get(address)
        rs = self.sets.get(owner) if owner is not None else None
        if rs is None:
            return
        for r in rs.replicas.values():
            if r.address == address and r.process is not None and r.probing is None:
                self._schedule(r, 0.0, functools.partial(self._probe, rs, r))

    def log_paths(self, app: str, revision: int | None = None) -> list[Path]:
        base = self.state_dir / "logs" / app
        if revision is None:
            return sorted(base.glob("*.log"))
        return sorted(base.glob(f"r{revision}-*.log"))

    async def stop(self, app: str, revision: int) -> None:
        """Stop every replica of a revision (SIGTERM, then SIGKILL after the grace period)."""
        rs = self.sets.get((app, revision))
        if rs is None:
            return
        rs.stopping = True
        rs.desired = 0
        await asyncio.gather(*(self._stop_replica(rs, r) for r in list(rs.replicas.values())))
        self.sets.pop((app, revision), None)

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.stop(app, rev) for app, rev in list(self.sets)))

    # adoption

    async def adopt(self, running: Mapping[tuple[str, int], Workload]) -> int:
        """Take over the replicas a previous controller started; forget the dead ones.

        A replica is adopted only if its pid still has the recorded start time and listens on
        the recorded port; anything else is removed from the store (and killed if it is ours
        but no longer matches), so nothing runs twice. Each adopted replica is probed before
        this returns: the first routes pushed after a restart must list the ready ones.
        """
        adopted = 0
        for row in self.store.replicas():
            workload = running.get((row.app, row.revision))
            proc = ManagedProcess.adopt(row.pid, row.start_time)
            if workload is None or proc is None or not proc.listens_on(row.port):
                if proc is not None:
                    proc.signal(9)
                self.store.delete_replica(row.app, row.revision, row.index)
                continue
            key = (row.app, row.revision)
            rs = self.sets.get(key)
            if rs is None:
                rs = self.sets[key] = RevisionSet(workload, 0)
            r = Replica(
                app=row.app,
                revision=row.revision,
                index=row.index,
                port=row.port,
                log_path=Path(row.log_path),
                process=proc,
                started_at=self.clock(),
            )
            rs.replicas[row.index] = r
            self._by_address[r.address] = key
            rs.desired = max(rs.desired, len(rs.replicas))
            adopted += 1
        # A controller killed between starting a replica and recording it left it behind:
        # it carries the state directory in its environment, and no record.
        mine = {
            r.process.pid for rs in self.sets.values() for r in rs.replicas.values() if r.process
        }
        for pid in kill_marked(REPLICA_MARKER, str(self.state_dir), mine):
            log.warning("killed an unrecorded replica", pid=pid)
        pairs = [(rs, r) for rs in self.sets.values() for r in rs.replicas.values() if r.process]
        await asyncio.gather(*(self._adopted(rs, r) for rs, r in pairs))
        return adopted

    async def _adopted(self, rs: RevisionSet, r: Replica) -> None:
        """An adopted replica was ready before the restart: one good probe says it still is."""
        spec = rs.workload.template.readiness
        r.ready = await probe("127.0.0.1", r.port, spec.path, spec.timeout)
        if r.ready:
            r.ready_since = self.clock()
            r.successes = spec.success_threshold
        self._watch(rs, r)

    # supervision

    async def run(self) -> None:
        """Supervise until cancelled: match counts when woken, keep logs and liveness."""
        last_housekeeping = 0.0
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except Exception:
                log.exception("backend supervision pass failed; retrying")
            now = self.clock()
            if now - last_housekeeping >= HOUSEKEEPING_S:
                last_housekeeping = now
                self._housekeeping(now)
            try:
                async with asyncio.timeout(HOUSEKEEPING_S):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def tick(self) -> None:
        """Start what is missing and watch it; stop what is beyond ``desired``."""
        for rs in list(self.sets.values()):
            if rs.stopping:
                continue
            for index in range(rs.desired):
                if index not in rs.replicas:
                    log_path = self.state_dir / "logs" / rs.app / f"r{rs.revision}-{index}.log"
                    rs.replicas[index] = Replica(rs.app, rs.revision, index, 0, log_path)
            for index in [i for i in rs.replicas if i >= rs.desired]:
                await self._stop_replica(rs, rs.replicas[index])
                self.on_change(rs.app, rs.revision)
            for r in list(rs.replicas.values()):
                if r.process is None and r.timer is None:
                    self._start(rs, r)
                elif r.process is not None and r.timer is None and r.probing is None:
                    self._watch(rs, r)  # its last probe never ended: watch it again

    def _housekeeping(self, now: float) -> None:
        for rs in self.sets.values():
            for r in rs.replicas.values():
                rotate_log(r.log_path)
        for r in list(self._polled):
            owner = self.sets.get((r.app, r.revision))
            if owner is None or r.process is None:
                self._polled.discard(r)
            elif not r.process.alive():
                self._polled.discard(r)
                self._exited(owner, r)

    def _schedule(self, r: Replica, delay: float, action: Callable[[], object]) -> None:
        if r.timer is not None:
            r.timer.cancel()

        def fire() -> None:
            r.timer = None
            action()

        r.timer = asyncio.get_running_loop().call_later(max(0.0, delay), fire)

    def _watch(self, rs: RevisionSet, r: Replica) -> None:
        """Hear of the process's exit, and probe it after the initial delay."""
        assert r.process is not None
        if not r.process.watch(lambda: self._exited(rs, r)):
            self._polled.add(r)
        readiness = rs.workload.template.readiness
        delay = readiness.health_interval if r.ready else readiness.initial_delay
        self._schedule(r, delay, lambda: self._probe(rs, r))

    def _start(self, rs: RevisionSet, r: Replica) -> None:
        r.port = free_port()
        try:
            argv, env, cwd = replica_command(rs.workload, r.index, r.port, self.state_dir)
            r.process = ManagedProcess.start(argv, env, cwd, r.log_path)
        except (ReplicaStartError, OSError) as exc:
            error = (
                exc
                if isinstance(exc, ReplicaStartError)
                else ReplicaStartError(
                    f"app {rs.app} revision {rs.revision} replica {r.index}: cannot start "
                    f"{argv[0]!r}: {exc.strerror or exc}; check spec.template.command and cwd"
                )
            )
            with contextlib.suppress(OSError):  # no process wrote it: the replica's log says why
                r.log_path.parent.mkdir(parents=True, exist_ok=True)
                with r.log_path.open("a") as log_file:
                    print(f"rollwise: {error}", file=log_file)
            r.last_exit = None
            self._lost(rs, r, str(error))
            return
        r.started_at = self.clock()
        r.ready = False
        r.successes = r.failures = 0
        self._by_address[r.address] = (rs.app, rs.revision)
        self.store.put_replica(
            ReplicaRow(
                rs.app,
                rs.revision,
                r.index,
                r.process.pid,
                r.process.start_time,
                r.port,
                str(r.log_path),
            )
        )
        log.info(
            "replica started",
            app=rs.app,
            revision=rs.revision,
            replica=r.index,
            pid=r.process.pid,
            port=r.port,
        )
        self._watch(rs, r)

    def _exited(self, rs: RevisionSet, r: Replica) -> None:
        if r.process is None or rs.stopping or rs.replicas.get(r.index) is not r:
            return
        r.process.alive()  # reaps our child and reads its exit code
        r.last_exit = r.process.exit_code
        self._lost(rs, r, f"replica {r.index} exited with {r.last_exit}")

    def _lost(self, rs: RevisionSet, r: Replica, message: str) -> None:
        """A replica is gone (exited, never started, never ready): schedule its restart."""
        if r.process is not None:
            r.process.unwatch()
        r.cancel()
        self._by_address.pop(r.address, None)
        r.process = None
        r.ready = False
        r.restarts += 1
        backoff = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, r.restarts - 1))
        self.store.delete_replica(rs.app, rs.revision, r.index)
        message = f"{message}; restart #{r.restarts} in {backoff:.1f}s"
        log.warning("replica crashed", app=rs.app, revision=rs.revision, detail=message)
        self.on_event(rs.app, rs.revision, EventKind.REPLICA_CRASHED, message)
        if r.restarts >= CRASH_LOOP_RESTARTS and not rs.crash_loop:
            rs.crash_loop = True
            self.on_event(
                rs.app,
                rs.revision,
                EventKind.CRASH_LOOP,
                f"revision {rs.revision} is crash-looping: replica {r.index} restarted "
                f"{r.restarts} times without staying ready; see `rollwise logs {rs.app} "
                f"--revision {rs.revision}`",
            )
        self.on_change(rs.app, rs.revision)
        self._schedule(r, backoff, lambda: self._restart(rs, r))

    def _restart(self, rs: RevisionSet, r: Replica) -> None:
        if rs.replicas.get(r.index) is r and not rs.stopping and r.process is None:
            self._start(rs, r)

    def _probe(self, rs: RevisionSet, r: Replica) -> None:
        if r.process is None or r.probing is not None:
            return
        r.probing = asyncio.get_running_loop().create_task(self._probe_once(rs, r))

    async def _probe_once(self, rs: RevisionSet, r: Replica) -> None:
        spec = rs.workload.template.readiness
        try:
            ok = await probe("127.0.0.1", r.port, spec.path, spec.timeout)
        finally:
            r.probing = None
        if r.process is None or rs.replicas.get(r.index) is not r:
            return
        now = self.clock()
        was_ready = r.ready
        if ok:
            r.successes += 1
            r.failures = 0
            if not r.ready and r.successes >= spec.success_threshold:
                r.ready = True
                r.ready_since = now
                log.info("replica ready", app=rs.app, revision=rs.revision, replica=r.index)
            if r.ready and r.restarts and now - r.ready_since > STABLE_AFTER_S:
                r.restarts = 0
                rs.crash_loop = False
        else:
            r.failures += 1
            r.successes = 0
            if r.ready and r.failures >= spec.failure_threshold:
                r.ready = False
                log.warning("replica unready", app=rs.app, revision=rs.revision)
            if not r.ready and now - r.started_at > spec.start_timeout:
                proc = r.process
                waited = format_duration(spec.start_timeout)
                self._lost(rs, r, f"replica {r.index} not ready after {waited}")
                await proc.stop(1.0)
                return
        if r.ready != was_ready:
            self.on_change(rs.app, rs.revision)
        # steady checks once ready and passing; the quick interval while it is not, and
        # quicker still while a new process starts: 4 probes 25 ms apart, 4 at 50 ms, ...
        # up to the interval, so that a replica which starts in 0.3 s is routed then, not
        # at the next full interval
        settled = r.ready and ok
        interval = spec.health_interval if settled else spec.interval
        if not r.ready and r.ready_since <= r.started_at:
            interval = min(interval, FIRST_PROBE_S * 2 ** (max(0, r.failures - 1) // 4))
        if r.ready and r.restarts:
            interval = min(interval, STABLE_AFTER_S / 2)  # to see it stay ready
        self._schedule(r, interval, lambda: self._probe(rs, r))

    async def _stop_replica(self, rs: RevisionSet, r: Replica) -> None:
        proc = r.process
        r.cancel()
        self._polled.discard(r)
        self._by_address.pop(r.address, None)
        r.process = None
        r.ready = False
        rs.replicas.pop(r.index, None)
        if proc is not None:
            proc.unwatch()
            await proc.stop(rs.workload.template.stop_grace_period)
        self.store.delete_replica(rs.app, rs.revision, r.index)
