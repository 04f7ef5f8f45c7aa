"""The controller process: supervises the data plane and the backends, runs one reconcile loop
per app, and serves the admin API on a unix socket (mode 0600) that the CLI talks to.

Started by ``rollwise up``. SIGTERM or SIGINT (what ``rollwise down`` sends) stops everything
it started. ``kill -9`` stops only the controller: the proxy and the replicas keep serving, and
the next ``rollwise up`` adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp
from uvicorn import Server

from rollwise.backends.base import Workload
from rollwise.checklist import ChecklistItem
from rollwise.clock import SteadyClock
from rollwise.controller.autoscaler import Autoscalers
from rollwise.controller.checklist import checklist as release_checklist
from rollwise.controller.events import Events
from rollwise.controller.maintenance import Scheduled
from rollwise.controller.metrics_http import serve_metrics
from rollwise.controller.monitor import SmokeMetrics
from rollwise.controller.ofrep import ofrep_app, ofrep_socket
from rollwise.controller.providers import KINDS, Listeners, Setup, kind_of
from rollwise.controller.serving import (
    admin_server,
    admin_socket,
    loopback_server,
    loopback_socket,
    own_port,
    url_host,
)
from rollwise.controller.slos import SloKeeper
from rollwise.controller.traffic_metrics import TrafficSeries
from rollwise.controller.webhooks import Webhooks
from rollwise.controller.worker import AppWorker, ReconcileMetrics
from rollwise.errors import (
    BudgetExhaustedError,
    ChecklistError,
    ConflictError,
    ControllerError,
    NotFoundError,
    WindowClosedError,
)
from rollwise.redact import remember_secrets
from rollwise.routing.options import ProxyOptions
from rollwise.slo.budget import SloReport
from rollwise.slo.prometheus import SloSeries
from rollwise.spec import RolloutSpec, spec_from_dict
from rollwise.state_dir import ensure_state_dir
from rollwise.store import Store
from rollwise.tracing import RolloutTraces
from rollwise.words import EventKind

if TYPE_CHECKING:
    from rollwise.kubernetes.connection import ClusterAccess
    from rollwise.spec.models import Rollout

__all__ = ["AdminApp", "Controller"]

# The admin API, built for a controller (``api/admin.py``; wired by ``rollwise.service``):
# the controller serves it without knowing it.
AdminApp = Callable[["Controller"], ASGIApp]

log = structlog.get_logger("rollwise.controller")


class Controller:
    def __init__(
        self,
        state_dir: Path,
        admin_app: AdminApp,
        metrics_port: int | None = None,
        proxy: ProxyOptions | None = None,
        metrics_host: str = "127.0.0.1",
        handle_signals: bool = True,
        api_listen: tuple[str, int] | None = None,
        loopback_app: AdminApp | None = None,
        clock: Callable[[], float] | None = None,
        otlp_endpoint: str | None = None,
        dashboard: tuple[tuple[str, int], AdminApp] | None = None,
        cluster: ClusterAccess | None = None,
    ) -> None:
        # ``None``: local apps (processes and the proxy); else a cluster's (docs/kubernetes.md)
        self.cluster = cluster
        self.dashboard = dashboard  # (loopback host and port, the web dashboard's app)
        self.otlp_endpoint = otlp_endpoint  # rollouts as traces (``rollwise/tracing.py``)
        self.admin_app = admin_app  # on the unix socket: the kernel says who calls
        self.loopback_app = loopback_app or admin_app  # on ``api_listen``: behind tokens
        self.state_dir = state_dir.resolve()
        self.metrics_port = metrics_port
        self.own_ports: dict[str, tuple[str, int]] = {}  # flag: where it listens, not for apps
        self.metrics_host = metrics_host  # 0.0.0.0 in a pod, for the cluster's Prometheus
        self.proxy_options = proxy or ProxyOptions()
        self.handle_signals = handle_signals  # off when embedded in someone else's program
        self.leaving = False
        self.api_listen = api_listen  # a loopback (host, port) that asks for a bearer token
        self.ofrep_url: str | None = None  # set once its loopback socket is bound (run)
        self.clock = clock or SteadyClock()  # a stepped system clock moves no deadline
        self.registry = CollectorRegistry()
        self.workers: dict[str, AppWorker] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.stopping = asyncio.Event()
        self.started = time.time()
        self._lock_fd: int | None = None

    # lifecycle

    def _take_lock(self) -> None:
        ensure_state_dir(self.state_dir)
        fd = os.open(self.state_dir / "controller.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            try:
                pid = (self.state_dir / "controller.pid").read_text().strip() or "?"
            except OSError:
                pid = "?"
            raise ControllerError(
                f"a controller already runs on {self.state_dir} (pid {pid}); "
                "use it, or stop it with `rollwise down`"
            ) from None
        self._lock_fd = fd
        (self.state_dir / "controller.pid").write_text(f"{os.getpid()}\n")

    async def run(self) -> None:
        self._take_lock()
        # a taken port fails the start before anything else starts
        loopback = []  # (socket, app): the admin API behind tokens, the dashboard, OFREP
        if self.api_listen is not None:
            api_sock = loopback_socket(self.api_listen, "--api-listen")
            loopback.append((api_sock, self.loopback_app))
            self.own_ports["--api-listen"] = api_sock.getsockname()[:2]
        dashboard_sock = None
        if self.dashboard is not None:
            listen, dashboard_app = self.dashboard
            dashboard_sock = loopback_socket(listen, "--dashboard")
            loopback.append((dashboard_sock, dashboard_app))
            self.own_ports["--dashboard"] = dashboard_sock.getsockname()[:2]
        await self._start()
        loopback.append((self._ofrep, lambda c: ofrep_app(c.worker)))

        background = [
            asyncio.create_task(self.backend.run(), name="backend"),
            asyncio.create_task(self.router.run(), name="router"),
            asyncio.create_task(self.scheduled.backups(), name="backups"),
            asyncio.create_task(self.scheduled.tasks(), name="maintenance"),
            asyncio.create_task(self.slos.run(), name="slos"),
            asyncio.create_task(self.autoscalers.run(), name="autoscalers"),
        ]
        server = admin_server(self.admin_app(self))
        serve = asyncio.create_task(server.serve(sockets=[admin_socket(self.state_dir)]))
        servers = [(loopback_server(app(self)), sock) for sock, app in loopback]
        serving = [asyncio.create_task(srv.serve(sockets=[sock])) for srv, sock in servers]
        if dashboard_sock is not None:
            host, port = dashboard_sock.getsockname()[:2]
            self.store.put_kv("dashboard_url", f"http://{url_host(host)}:{port}/")
        if self.metrics_port is not None:
            _, self.metrics_port = serve_metrics(
                self.metrics_host, self.metrics_port, self.registry
            )
            self.store.put_kv("metrics_port", self.metrics_port)
            self.own_ports["--metrics-port"] = (self.metrics_host, self.metrics_port)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT) if self.handle_signals else ():
            loop.add_signal_handler(sig, self.stopping.set)
        if self.handle_signals:
            loop.add_signal_handler(signal.SIGHUP, self.leave)
        try:
            await self.stopping.wait()
        finally:
            await self._stop(
                [*self.tasks.values(), *background], [server, *(s for s, _ in servers)]
            )
            await serve
            for task in serving:
                await task
            await self._close()

    async def _stop(self, tasks: list[asyncio.Task[Any]], servers: list[Server]) -> None:
        """Stop serving and working; stop the proxy and the replicas unless leaving."""
        if self.leaving:
            log.info("controller leaving; the proxy and the replicas keep serving")
        else:
            log.info("controller stopping; stopping replicas and the proxy")
        for srv in servers:
            srv.should_exit = True
        for task in tasks:
            task.cancel()
        for worker in self.workers.values():
            worker.close()
        if not self.leaving:
            await self.backend.stop_all()
            await self.router.stop()

    async def _close(self) -> None:
        await self.backend.aclose()
        await self.router.aclose()
        await self.providers.agent.aclose()
        await self.slos.aclose()
        await self.scheduled.aclose()
        await self.webhooks.aclose()
        if self.events.traces is not None:
            await asyncio.to_thread(self.events.traces.shutdown)
        self.store.close()
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / "controller.pid").unlink()
        log.info("controller stopped")

    async def _start(self) -> None:
        """The store, the event sinks, the providers; adopt what still runs; a worker per
        app."""
        self.store = Store(self.state_dir / "state.db")
        for app in self.store.app_names():  # before anything is logged or shown
            remember_secrets(self.store.get_app(app)[0])
            for row in self.store.revisions(app):
                remember_secrets(row.spec)
        self.webhooks = Webhooks(self.registry)
        self.webhooks.start()
        self.events = Events(self.store, self.registry, self.webhooks, self._spec_of)
        if self.otlp_endpoint:
            self.events.traces = RolloutTraces(self.otlp_endpoint)
        self.smoke_metrics = SmokeMetrics(self.registry)
        self.reconcile_metrics = ReconcileMetrics(self.registry)
        listeners = Listeners(
            health_changed=self._health_changed,
            backend_event=self._backend_event,
            replica_ejected=self._replica_ejected,
            data_plane_restarted=self._data_plane_restarted,
        )
        setup = Setup(
            self.store,
            self.state_dir,
            self.proxy_options,
            listeners,
            self._rollout_of,
            self.cluster,
        )
        self.providers = KINDS[self.kind](setup)
        self.backend = self.providers.backend
        if self.providers.told is not None:  # the platform's own events too
            self.events.sinks.append(self.providers.told)
        self.router = self.providers.router
        fresh = await self.router.start()
        adopted = await self.backend.adopt(self._running_revisions())
        if adopted:
            log.info("replicas adopted", count=adopted)
        log.info(
            "controller started",
            state_dir=str(self.state_dir),
            proxy_new=fresh,
            generation=self.router.generation,
        )
        self.slos = SloKeeper(
            self.store,
            self.providers.metrics,
            self.events,
            self.registry,
            self.clock,
            self._spec_of,
            self._apps,
        )
        self.registry.register(SloSeries(self._slo_reports))
        self.registry.register(
            TrafficSeries(
                self.providers.metrics, self._apps, self.clock, asyncio.get_running_loop()
            )
        )
        self._ofrep, self.ofrep_url = ofrep_socket(self.store)  # before the workers start
        self.scheduled = Scheduled(
            self.store, self.state_dir, self.events, lambda: self.workers, self.clock, self.registry
        )
        self.autoscalers = Autoscalers(
            lambda: self.workers, self.router, self.clock, self.registry, self.providers.metrics
        )
        for app in self.store.app_names():
            self._start_worker(app)

    @property
    def kind(self) -> str:
        """The apps this controller runs: ``local`` or ``kubernetes`` (``providers.KINDS``)."""
        return "local" if self.cluster is None else "kubernetes"

    def leave(self) -> None:
        """Exit and leave the proxy and the replicas serving (SIGHUP, ``rollwise restart``):
        the next controller adopts them, as after a crash, and replaces the proxy if it is
        another build's."""
        self.leaving = True
        self.stopping.set()

    def _apps(self) -> list[str]:
        return list(self.workers)

    def _slo_reports(self) -> list[SloReport]:
        return [r for reports in list(self.slos.reports.values()) for r in reports.values()]

    def _running_revisions(self) -> dict[tuple[str, int], Workload]:
        running: dict[tuple[str, int], Workload] = {}
        for app in self.store.app_names():
            state = self._worker(app).state
            for n in state.current.revisions():
                running[(app, n)] = state.revision(n).workload(app, state.base_dir)
        return running

    # what the providers report

    def _spec_of(self, app: str) -> RolloutSpec | None:
        rollout = self._rollout_of(app)
        return rollout.spec if rollout is not None else None

    def _rollout_of(self, app: str) -> Rollout | None:
        worker = self.workers.get(app)
        return worker.state.spec if worker is not None else None

    def _health_changed(self, app: str, revision: int) -> None:
        worker = self.workers.get(app)
        if worker is not None:
            worker.wake.set()

    def _backend_event(self, app: str, revision: int, kind: EventKind, message: str) -> None:
        self.events.emit(app, kind, message, revision)
        self._health_changed(app, revision)

    def _replica_ejected(self, address: str, ejected: bool) -> None:
        """The proxy's passive health, as events; an ejected replica is probed at once."""
        owner = self.backend.owner(address)
        if owner is None:
            return
        app, revision = owner
        if ejected:
            self.backend.suspect(address)
            message = (
                f"the proxy ejected replica {address} after consecutive connection "
                "failures or 5xx answers; it gets no requests while it backs off"
            )
            self.events.emit(app, EventKind.REPLICA_EJECTED, message, revision)
        else:
            message = f"replica {address} is back"
            self.events.emit(app, EventKind.REPLICA_RESTORED, message, revision)

    def _data_plane_restarted(self) -> None:
        self.events.emit("-", EventKind.PROXY_RESTARTED, "the proxy was restarted")

    # apps

    def _worker(self, app: str) -> AppWorker:
        worker = self.workers.get(app)
        if worker is None:
            worker = AppWorker(
                app,
                self.store,
                self.backend,
                self.router,
                self.providers.metrics,
                self.events,
                self.clock,
                self.smoke_metrics,
                self.reconcile_metrics,
                self.ofrep_url,
            )
            worker.analyses.burn_rates = lambda: self.slos.burn_rates(app)
            worker.analyses.agent = self.providers.agent
            self.workers[app] = worker
        return worker

    def _start_worker(self, app: str) -> AppWorker:
        worker = self._worker(app)
        if app not in self.tasks:
            self.tasks[app] = asyncio.create_task(worker.run(), name=f"reconcile:{app}")
        return worker

    def worker(self, app: str) -> AppWorker:
        if app not in self.store.app_names():
            raise NotFoundError(f"no app named {app!r}; apply its spec with `rollwise apply -f`")
        return self._start_worker(app)

    async def apply(self, spec: dict[str, Any], base_dir: str, version: str | None) -> str:
        rollout = spec_from_dict(spec, file="applied spec")
        kind_of(rollout.spec, self.kind)
        name = rollout.name
        for other in self.store.app_names() if self.kind == "local" else ():  # a cluster: routes
            if other != name and self._worker(other).state.spec.spec.listen == rollout.spec.listen:
                raise ConflictError(
                    f"app {other!r} already listens on {rollout.spec.listen}; "
                    "give spec.listen another port"
                )
        flag = own_port(rollout.spec.listen, self.own_ports) if self.kind == "local" else None
        if flag is not None:
            raise ConflictError(
                f"spec.listen {rollout.spec.listen} of app {name!r} is the controller's "
                f"{flag} port; give spec.listen another port"
            )
        remember_secrets(spec)
        self.store.put_app(name, rollout.model_dump(mode="json", by_alias=True), base_dir)
        worker = self._start_worker(name)
        worker.state.spec_applied()
        self.events.emit(name, EventKind.SPEC_APPLIED, f"spec of {name} applied")
        worker.wake.set()
        self.scheduled.wake.set()
        if version is not None:
            await self.deploy(name, version, [], cause="apply")
        return name

    async def checklist(self, app: str) -> list[ChecklistItem]:
        """The app's release checklist now (``controller/checklist.py``)."""
        ctx = self.worker(app).context(read_only=True)
        reports = self.slos.report(app, ctx.spec) if ctx.spec.slos else []
        return release_checklist(ctx, reports, self.state_dir / "backups")

    async def deploy(
        self,
        app: str,
        version: str,
        sets: list[str],
        cause: str = "deploy",
        override_budget: str | None = None,
        traceparent: str | None = None,
        override_window: str | None = None,
        require_checklist: bool = False,
    ) -> int:
        """Start a rollout of ``version``, unless the error-budget policy, the release windows
        or (``require_checklist``) a failing checklist item refuses it. An override of a
        refusal is recorded with its reason: in the revision's cause and as an event."""
        worker = self.worker(app)
        spec = worker.state.spec.spec
        if require_checklist:
            failing = [i for i in await self.checklist(app) if i.state == "fail"]
            if failing:
                listed = "; ".join(f"{i.item}: {i.detail} (fix: {i.fix})" for i in failing)
                raise ChecklistError(
                    f"app {app}: deploy --require-checklist refused, {len(failing)} item"
                    f"{'s' if len(failing) > 1 else ''} failing: {listed}"
                )
        # (event, what was overridden, over what it deployed, the reason given, the refusal)
        overrides: list[tuple[EventKind, str, str, str, str]] = []
        refusal = self.slos.refusal(app, spec)
        if refusal is not None:
            reason = (override_budget or "").strip()
            if not reason:
                raise BudgetExhaustedError(refusal)
            overrides.append(
                (
                    EventKind.BUDGET_OVERRIDDEN,
                    "error budget",
                    "a spent error budget",
                    reason,
                    refusal,
                )
            )
        window = spec.release_windows.check(self.clock()) if spec.release_windows else None
        if window is not None and not window.open:
            reason = (override_window or "").strip()
            if not reason:
                raise WindowClosedError(
                    f"app {app} may not deploy now: {window.why}; wait, or deploy with "
                    '--override-window "why" (the reason is recorded)'
                )
            overrides.append(
                (
                    EventKind.WINDOW_OVERRIDDEN,
                    "release window",
                    "a closed release window",
                    reason,
                    window.why,
                )
            )
        for _, what, _, reason, _ in overrides:
            cause = f"{cause}; {what} overridden: {reason}"
        number = await worker.commands.deploy(version, sets, cause=cause)
        if self.events.traces is not None:
            self.events.traces.link(app, number, traceparent)
        for kind, _, over, reason, why in overrides:
            message = f"revision {number} ({version}) deployed over {over}: {reason}"
            self.events.emit(app, kind, message, number, {"why": why, "reason": reason})
        return number
