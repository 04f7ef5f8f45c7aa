"""The local backend: a revision's replicas are OS processes on this machine.

The backend owns the processes; the controller owns the decisions. ``ensure`` states how many
replicas a revision should have, and the supervision loop makes it so: it starts, probes,
restarts with exponential backoff, and reports a crash loop with the last log lines. Each
replica's (pid, start time, port) is written to the store before anything else relies on it,
so that a restarted controller adopts what still runs instead of starting duplicates.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import structlog

from rollwise.backends.ports import free_port
from rollwise.backends.process import ManagedProcess, rotate_log, tail
from rollwise.errors import ReplicaStartError
from rollwise.spec.duration import format_duration
from rollwise.spec.models import Template
from rollwise.store import ReplicaRow, Store

__all__ = ["LocalBackend", "ReplicaState", "RevisionHealth"]

# In a replica's environment: the state directory of the controller that started it. Not
# ROLLWISE_STATE_DIR, which users set for the CLI and every child would inherit.
REPLICA_MARKER = "ROLLWISE_REPLICA_OF"

log = structlog.get_logger("rollwise.backend")

BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
CRASH_LOOP_RESTARTS = 3
STABLE_AFTER_S = 10.0


@dataclass
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
    next_probe: float = 0.0
    ready_since: float = 0.0
    restarts: int = 0
    next_restart: float = 0.0
    last_exit: int | None = None
    probing: bool = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def state(self) -> str:
        if self.process is None:
            return "crashed" if self.restarts else "pending"
        return "ready" if self.ready else "starting"


@dataclass
class RevisionSet:
    app: str
    revision: int
    version: str
    template: Template
    base_dir: str
    desired: int
    replicas: dict[int, Replica] = field(default_factory=dict)
    crash_loop: bool = False
    stopping: bool = False


@dataclass(frozen=True)
class ReplicaState:
    index: int
    address: str
    pid: int | None
    state: str
    restarts: int
    last_exit: int | None


@dataclass(frozen=True)
class RevisionHealth:
    desired: int
    running: int
    ready: int
    crash_loop: bool
    replicas: list[ReplicaState]
    last_logs: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "desired": self.desired,
            "running": self.running,
            "ready": self.ready,
            "crash_loop": self.crash_loop,
            "replicas": [r.__dict__ for r in self.replicas],
            "last_logs": self.last_logs,
        }


class LocalBackend:
    """Replicas as processes; one supervision loop for all apps."""

    def __init__(
        self,
        store: Store,
        state_dir: Path,
        clock: Callable[[], float] = time.monotonic,
        on_event: Callable[[str, int, str, str], None] | None = None,
    ) -> None:
        self.store = store
        self.state_dir = state_dir
        self.clock = clock
        self.sets: dict[tuple[str, int], RevisionSet] = {}
        self.on_event = on_event or (lambda app, rev, kind, msg: None)
        self._http = httpx.AsyncClient(trust_env=False)
        self._wake = asyncio.Event()

    async def aclose(self) -> None:
        await self._http.aclose()

    # what the controller asks for

    def ensure(
        self,
        app: str,
        revision: int,
        version: str,
        template: Template,
        base_dir: str,
        replicas: int,
    ) -> None:
        """Declare that ``revision`` of ``app`` should run ``replicas`` ready processes."""
        key = (app, revision)
        rs = self.sets.get(key)
        if rs is None:
            rs = self.sets[key] = RevisionSet(app, revision, version, template, base_dir, replicas)
        rs.desired = replicas
        rs.stopping = False
        self._wake.set()

    def health(self, app: str, revision: int) -> RevisionHealth:
        rs = self.sets.get((app, revision))
        if rs is None:
            return RevisionHealth(0, 0, 0, False, [], [])
        states = [
            ReplicaState(
                r.index,
                r.address,
                r.process.pid if r.process else None,
                r.state(),
                r.restarts,
                r.last_exit,
            )
            for r in sorted(rs.replicas.values(), key=lambda r: r.index)
        ]
        logs: list[str] = []
        if rs.crash_loop and rs.replicas:
            worst = max(rs.replicas.values(), key=lambda r: r.restarts)
            logs = tail(worst.log_path, 10)
        return RevisionHealth(
            desired=rs.desired,
            running=sum(1 for r in rs.replicas.values() if r.process is not None),
            ready=sum(1 for r in rs.replicas.values() if r.ready),
            crash_loop=rs.crash_loop,
            replicas=states,
            last_logs=logs,
        )

    def ready_addresses(self, app: str, revision: int) -> list[str]:
        rs = self.sets.get((app, revision))
        if rs is None:
            return []
        return [r.address for r in sorted(rs.replicas.values(), key=lambda r: r.index) if r.ready]

    def addresses(self, app: str, revision: int) -> list[str]:
        rs = self.sets.get((app, revision))
        return [] if rs is None else [r.address for r in rs.replicas.values()]

    def owner(self, address: str) -> tuple[str, int] | None:
        """The app and revision whose replica listens on ``address``."""
        for (app, revision), rs in self.sets.items():
            if any(r.address == address for r in rs.replicas.values()):
                return app, revision
        return None

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

    def adopt(self, versions: dict[tuple[str, int], tuple[str, Template, str]]) -> int:
        """Take over the replicas a previous controller started; forget the dead ones.

        A replica is adopted only if its pid still has the recorded start time and listens on
        the recorded port; anything else is removed from the store (and killed if it is ours
        but no longer matches), so nothing runs twice.
        """
        adopted = 0
        for row in self.store.replicas():
            info = versions.get((row.app, row.revision))
            proc = ManagedProcess.adopt(row.pid, row.start_time)
            if info is None or proc is None or not proc.listens_on(row.port):
                if proc is not None:
                    proc.signal(9)
                self.store.delete_replica(row.app, row.revision, row.index)
                continue
            version, template, base_dir = info
            key = (row.app, row.revision)
            rs = self.sets.get(key)
            if rs is None:
                rs = self.sets[key] = RevisionSet(
                    row.app, row.revision, version, template, base_dir, 0
                )
            now = self.clock()
            rs.replicas[row.index] = Replica(
                app=row.app,
                revision=row.revision,
                index=row.index,
                port=row.port,
                log_path=Path(row.log_path),
                process=proc,
                started_at=now,
                ready=False,
            )
            rs.desired = max(rs.desired, len(rs.replicas))
            adopted += 1
        self._kill_unrecorded()
        return adopted

    def _kill_unrecorded(self) -> None:
        """Kill replicas of this state directory that the store does not record: a
        controller killed between starting a replica and recording it left them behind.
        They carry ``ROLLWISE_REPLICA_OF`` (the state directory) in their environment."""
        mine = {
            r.process.pid for rs in self.sets.values() for r in rs.replicas.values() if r.process
        }
        marker = str(self.state_dir)
        for proc in psutil.process_iter(["pid"]):
            if proc.pid in mine or proc.pid == os.getpid():
                continue
            try:
                if proc.environ().get(REPLICA_MARKER) != marker:
                    continue
                log.warning("killing an unrecorded replica", pid=proc.pid)
                proc.kill()
            except psutil.Error:
                continue

    # supervision

    async def run(self) -> None:
        """Supervise forever: start what is missing, probe, restart, rotate logs."""
        last_rotate = 0.0
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("backend supervision pass failed; retrying")
            now = self.clock()
            if now - last_rotate > 5.0:
                last_rotate = now
                for rs in self.sets.values():
                    for r in rs.replicas.values():
                        rotate_log(r.log_path)
            self._wake.clear()
            try:
                async with asyncio.timeout(0.1):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def tick(self) -> None:
        now = self.clock()
        probes = []
        for rs in list(self.sets.values()):
            if rs.stopping:
                continue
            for index in range(rs.desired):
                if index not in rs.replicas:
                    rs.replicas[index] = self._new_replica(rs, index)
            for index in [i for i in rs.replicas if i >= rs.desired]:
                await self._stop_replica(rs, rs.replicas[index])
            for r in list(rs.replicas.values()):
                if r.process is None:
                    if now >= r.next_restart:
                        self._start(rs, r)
                    continue
                if not r.process.alive():
                    self._crashed(rs, r, now)
                    continue
                if r.ready and now - r.ready_since > STABLE_AFTER_S and r.restarts:
                    r.restarts = 0
                    rs.crash_loop = False
                if not r.probing and now >= r.next_probe:
                    r.probing = True
                    probes.append(self._probe(rs, r))
        if probes:
            await asyncio.gather(*probes)

    def _new_replica(self, rs: RevisionSet, index: int) -> Replica:
        log_path = self.state_dir / "logs" / rs.app / f"r{rs.revision}-{index}.log"
        return Replica(rs.app, rs.revision, index, 0, log_path)

    def _start(self, rs: RevisionSet, r: Replica) -> None:
        r.port = free_port()
        fields = {
            "port": str(r.port),
            "version": rs.version,
            "replica": str(r.index),
            "python": sys.executable,
            "app": rs.app,
            "revision": str(rs.revision),
        }
        argv = [a.format_map(fields) for a in rs.template.command]
        env = dict(os.environ)
        env.update({k: v.format_map(fields) for k, v in rs.template.env.items()})
        env.update(
            {
                "ROLLWISE_APP": rs.app,
                "ROLLWISE_REVISION": str(rs.revision),
                "ROLLWISE_VERSION": rs.version,
                "ROLLWISE_REPLICA": str(r.index),
                REPLICA_MARKER: str(self.state_dir),
                "PORT": str(r.port),
            }
        )
        cwd = rs.template.cwd or rs.base_dir
        if not os.path.isabs(cwd):
            cwd = os.path.join(rs.base_dir, cwd)
        try:
            r.process = ManagedProcess.start(argv, env, cwd, r.log_path)
        except OSError as exc:
            r.last_exit = None
            error = ReplicaStartError(
                f"app {rs.app} revision {rs.revision} replica {r.index}: cannot start "
                f"{argv[0]!r}: {exc.strerror or exc}; check spec.template.command and cwd"
            )
            self._lost(rs, r, self.clock(), str(error))
            return
        now = self.clock()
        r.started_at = now
        r.next_probe = now + rs.template.readiness.initial_delay
        r.ready = False
        r.successes = r.failures = 0
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

    def _backoff(self, r: Replica) -> float:
        return float(min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, r.restarts - 1)))

    def _crashed(self, rs: RevisionSet, r: Replica, now: float) -> None:
        assert r.process is not None
        r.last_exit = r.process.exit_code
        self._lost(rs, r, now, f"replica {r.index} exited with {r.last_exit}")

    def _lost(self, rs: RevisionSet, r: Replica, now: float, message: str) -> None:
        """A replica is gone (exited, never started, never ready): schedule its restart."""
        r.process = None
        r.ready = False
        r.restarts += 1
        r.next_restart = now + self._backoff(r)
        self.store.delete_replica(rs.app, rs.revision, r.index)
        message = f"{message}; restart #{r.restarts} in {r.next_restart - now:.1f}s"
        log.warning("replica crashed", app=rs.app, revision=rs.revision, detail=message)
        self.on_event(rs.app, rs.revision, "ReplicaCrashed", message)
        if r.restarts >= CRASH_LOOP_RESTARTS and not rs.crash_loop:
            rs.crash_loop = True
            self.on_event(
                rs.app,
                rs.revision,
                "CrashLoop",
                f"revision {rs.revision} is crash-looping: replica {r.index} restarted "
                f"{r.restarts} times without staying ready; see `rollwise logs {rs.app} "
                f"--revision {rs.revision}`",
            )

    async def _probe(self, rs: RevisionSet, r: Replica) -> None:
        spec = rs.template.readiness
        try:
            ok = False
            try:
                resp = await self._http.get(f"http://{r.address}{spec.path}", timeout=spec.timeout)
                ok = resp.status_code < 400
            except httpx.HTTPError:
                ok = False
            now = self.clock()
            r.next_probe = now + spec.interval
            if r.process is None:
                return
            if ok:
                r.successes += 1
                r.failures = 0
                if not r.ready and r.successes >= spec.success_threshold:
                    r.ready = True
                    r.ready_since = now
                    log.info("replica ready", app=rs.app, revision=rs.revision, replica=r.index)
            else:
                r.failures += 1
                r.successes = 0
                if r.ready and r.failures >= spec.failure_threshold:
                    r.ready = False
                    log.warning("replica unready", app=rs.app, revision=rs.revision)
                if not r.ready and now - r.started_at > spec.start_timeout:
                    proc = r.process
                    waited = format_duration(spec.start_timeout)
                    self._lost(rs, r, now, f"replica {r.index} not ready after {waited}")
                    await proc.stop(1.0)
        finally:
            r.probing = False

    async def _stop_replica(self, rs: RevisionSet, r: Replica) -> None:
        proc = r.process
        r.process = None
        r.ready = False
        rs.replicas.pop(r.index, None)
        if proc is not None:
            await proc.stop(rs.template.stop_grace_period)
        self.store.delete_replica(rs.app, rs.revision, r.index)
