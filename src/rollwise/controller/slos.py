"""What keeps watch after a release: each app's SLOs, their error budgets and burn-rate alerts.

Every ``resolution`` (at most every 10 s) the keeper reads the whole seconds of an app's live
listener from its metric source, adds them to the store's SLI rows (``store/slo.py``) in one
transaction with the second it folded up to, evaluates each SLO's windows from the rows
(``slo/budget.py``), and moves each burn-rate alert: pending (while its ``for`` runs),
firing, resolved. A change is an event (``AlertFiring``, ``AlertResolved``: the app's
webhooks get them once) and goes to the Alertmanager of ``spec.alerting`` when one is set
(resent while firing, as Prometheus does). Apps without SLOs cost nothing.

The error-budget policy reads the same rows: ``deploy`` asks ``refusal`` before it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter

from rollwise.analysis.source import MetricSource
from rollwise.controller.events import Events
from rollwise.errors import RollwiseError
from rollwise.slo.alertmanager import Alertmanager, alert_payload
from rollwise.slo.budget import AlertCheck, SloReport, prometheus_duration
from rollwise.slo.sli import fold_seconds
from rollwise.spec import RolloutSpec
from rollwise.spec.slo import BurnWindow, Objective
from rollwise.store import AlertRow, SliRow, Store
from rollwise.words import EventKind

__all__ = ["SloKeeper"]

log = structlog.get_logger("rollwise.slo")

MAX_INTERVAL_S = 10.0
PROXY_KEEPS_S = 900  # the built-in proxy's statistics reach back this far
LONG_WINDOW_S = 3600.0
LONG_EVERY_S = 60.0


class SloKeeper:
    def __init__(
        self,
        store: Store,
        metrics: MetricSource,
        events: Events,
        registry: CollectorRegistry,
        clock: Callable[[], float],
        spec_of: Callable[[str], RolloutSpec | None],
        apps: Callable[[], list[str]],
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.events = events
        self.clock = clock
        self.spec_of = spec_of
        self.apps = apps
        self.reports: dict[str, dict[str, SloReport]] = {}
        self.active = {_key(row): row for row in store.alerts(active_only=True, limit=10_000)}
        self.sent: dict[tuple[str, str, str], float] = {}  # alert -> last sent to Alertmanager
        self.due: dict[str, float] = {}
        self.names: dict[str, tuple[str, ...]] = {}
        self.long_sums: dict[tuple[str, str], tuple[float, list[tuple[int, int]]]] = {}
        self.alertmanager = Alertmanager()
        self.deliveries: set[asyncio.Task[bool]] = set()
        self.requests = Counter(
            "rollwise_slo_requests",
            "Requests on an app's live listener counted for an SLO",
            ["app", "slo"],
            registry=registry,
        )
        self.bad = Counter(
            "rollwise_slo_bad_requests",
            "Requests that were not good for an SLO (failed, or slower than its threshold)",
            ["app", "slo"],
            registry=registry,
        )

    async def run(self) -> None:
        while True:
            now = self.clock()
            for app in self.apps():
                spec = self.spec_of(app)
                if spec is None or not spec.slos or now < self.due.get(app, 0.0):
                    continue
                self.due[app] = now + min(MAX_INTERVAL_S, *(o.resolution for o in spec.slos))
                try:
                    await self.tick(app, spec)
                except RollwiseError as exc:  # the store or the proxy: next time
                    log.warning("SLO evaluation failed", app=app, error=str(exc))
            wake = min(self.due.values(), default=now + MAX_INTERVAL_S)
            await asyncio.sleep(min(max(wake - self.clock(), 0.05), MAX_INTERVAL_S))

    async def tick(self, app: str, spec: RolloutSpec) -> None:
        """Fold what is new, evaluate every SLO, move the alerts."""
        end = await self._fold(app, spec)
        reports = {o.name: self.evaluate(app, o, spec, end) for o in spec.slos}
        self.reports[app] = reports
        for objective in spec.slos:
            report = reports[objective.name]
            for check in report.checks:
                self._move(app, spec, report, check)
        self._resend(app, spec)

    async def _fold(self, app: str, spec: RolloutSpec) -> int:
        """Add the whole seconds not folded yet to the store; the second folded up to."""
        end = int(self.clock() - self.metrics.settle_s)  # seconds before this one are whole
        key = f"sli_folded:{app}"
        folded = self.store.get_kv(key)  # none yet: what the source still holds counts too
        first = max(int(folded) if folded is not None else 0, end - PROXY_KEEPS_S)
        if first >= end:
            return end
        series = await self.metrics.seconds(app, first, preview=False)
        names = tuple(o.name for o in spec.slos)
        with self.store.transaction():
            for objective in spec.slos:
                rows = fold_seconds(objective, series, first, end)
                self.store.add_sli(
                    app,
                    (SliRow(objective.name, s, r, g, t) for (s, r), (g, t) in rows.items()),
                )
                keep_from = end - _retention(objective, spec.alerting.windows)
                self.store.prune_sli(app, objective.name, keep_from)
                total = sum(t for _, t in rows.values())
                bad = total - sum(g for g, _ in rows.values())
                if total:
                    self.requests.labels(app, objective.name).inc(total)
                if bad:
                    self.bad.labels(app, objective.name).inc(bad)
            if self.names.get(app) != names:
                self.store.forget_slis(app, names)
                self.names[app] = names
            self.store.put_kv(key, end)
        return end

    def evaluate(
        self, app: str, objective: Objective, spec: RolloutSpec, at: float, *, fresh: bool = False
    ) -> SloReport:
        """``objective`` at ``at``; windows longer than an hour are read again once a minute
        (a 28-day window scans 40,000 rows; a minute moves it by 0.002 %), unless ``fresh``."""

        def sums(starts: list[int]) -> list[tuple[int, int]]:
            long = [s for s in starts if at - s > LONG_WINDOW_S + objective.resolution]
            key = (app, objective.name)
            cached = self.long_sums.get(key)
            stale = cached is None or at - cached[0] >= LONG_EVERY_S
            if fresh or stale or cached is None or len(cached[1]) != len(long):
                cached = (at, self.store.sli_sums(app, objective.name, long))
                self.long_sums[key] = cached
            short = self.store.sli_sums(app, objective.name, starts[: len(starts) - len(long)])
            return short + cached[1]  # starts come shortest window first

        return SloReport.evaluate(app, objective, spec.alerting.windows, at, sums)

    def report(self, app: str, spec: RolloutSpec) -> list[SloReport]:
        """Each SLO of ``app`` now, from the stored rows."""
        at = int(self.clock() - self.metrics.settle_s)
        return [self.evaluate(app, o, spec, at, fresh=True) for o in spec.slos]

    def burn_rates(self, app: str) -> dict[str, tuple[float, float]]:
        """Each SLO's burn rate over its shortest alert window, as last evaluated: SLO →
        (burn rate, window in seconds)."""
        return {
            name: (report.current_burn_rate, min(report.figures))
            for name, report in self.reports.get(app, {}).items()
        }

    def refusal(self, app: str, spec: RolloutSpec) -> str | None:
        """Why the error-budget policy refuses a deploy of ``app`` now, or ``None``."""
        policy = spec.error_budget_policy
        if policy is None:
            return None
        gated = set(policy.slos) or {o.name for o in spec.slos}
        for report in self.report(app, spec):
            objective = report.objective
            if objective.name not in gated or not report.period.total:
                continue
            if report.budget_remaining <= policy.block_deploys_below:
                return (
                    f"app {app}: the error budget of SLO {objective.name} is spent "
                    f"({_pct(report.budget_remaining)} left of "
                    f"{prometheus_duration(objective.window)}, at or below the policy's "
                    f"{_pct(policy.block_deploys_below)}; SLI {_pct(report.sli or 0.0, 3)} "
                    f"against a target of {_pct(objective.target, 3)}), so errorBudgetPolicy "
                    "refuses a new version; undo, abort and rollbacks stay allowed; to deploy "
                    'anyway, add --override-budget "reason"'
                )
        return None

    # alerts

    def _move(self, app: str, spec: RolloutSpec, report: SloReport, check: AlertCheck) -> None:
        objective = report.objective
        window = check.window
        key = (app, objective.name, window.name)
        row = self.active.get(key)
        now = self.clock()
        numbers = {
            **check.numbers(),
            "target": objective.target,
            "budgetRemaining": round(report.budget_remaining, 6),
        }
        if check.active:
            if row is None:
                state = "firing" if window.for_ <= 0 else "pending"
                row = AlertRow(
                    id=0,
                    app=app,
                    slo=objective.name,
                    severity=window.severity,
                    windows=window.name,
                    state=state,
                    since=now,
                    updated=now,
                    resolved_at=None,
                    numbers=numbers,
                )
                row = replace(row, id=self.store.put_alert(row))
                self.active[key] = row
                if state == "firing":
                    self._tell(spec, objective, row, EventKind.ALERT_FIRING)
                return
            state = row.state
            if state == "pending" and now - row.since >= window.for_:
                state = "firing"
            changed = state != row.state
            row = replace(row, state=state, updated=now, numbers=numbers)
            self.store.put_alert(row)
            self.active[key] = row
            if changed:
                self._tell(spec, objective, row, EventKind.ALERT_FIRING)
        elif row is not None:
            del self.active[key]
            if row.state == "pending":
                self.store.delete_alert(row.id)
                return
            row = replace(row, state="resolved", updated=now, resolved_at=now, numbers=numbers)
            with self.store.transaction():
                self.store.put_alert(row)
                self.store.prune_alerts(app)
            self._tell(spec, objective, row, EventKind.ALERT_RESOLVED)

    def _tell(
        self, spec: RolloutSpec, objective: Objective, row: AlertRow, kind: EventKind
    ) -> None:
        """One event (hence the webhooks, once) and the Alertmanager."""
        summary = _summary(row, objective, kind)
        data = {
            "slo": row.slo,
            "severity": row.severity,
            "window": row.windows,
            "runbook": objective.runbook,
            **row.numbers,
        }
        self.events.emit(row.app, kind, summary, None, data)
        self._deliver(spec, objective, [row])

    def _resend(self, app: str, spec: RolloutSpec) -> None:
        """Firing alerts again every ``resendInterval`` (a restarted controller: at once)."""
        now = self.clock()
        due = [
            row
            for key, row in self.active.items()
            if key[0] == app
            and row.state == "firing"
            and now - self.sent.get(key, 0.0) >= spec.alerting.resend_interval
        ]
        by_name = {o.name: o for o in spec.slos}
        for row in due:
            objective = by_name.get(row.slo)
            if objective is not None:
                self._deliver(spec, objective, [row])

    def _deliver(self, spec: RolloutSpec, objective: Objective, rows: list[AlertRow]) -> None:
        url = spec.alerting.alertmanager
        if url is None:
            return
        now = self.clock()
        kind = EventKind.ALERT_RESOLVED
        alerts = []
        for row in rows:
            self.sent[_key(row)] = now
            state_kind = kind if row.state == "resolved" else EventKind.ALERT_FIRING
            summary = _summary(row, objective, state_kind)
            payload = alert_payload(
                row, summary, objective.runbook, now, spec.alerting.resend_interval
            )
            book = spec.runbooks.get(EventKind.ALERT_FIRING)
            if book is not None:  # the spec's runbook for a firing alert, beside the SLO's link
                payload["annotations"]["runbook_steps"] = book.line()
            alerts.append(payload)
        task = asyncio.create_task(self.alertmanager.send(url, alerts))
        self.deliveries.add(task)
        task.add_done_callback(self.deliveries.discard)

    def alerts(self, app: str | None, active_only: bool = False) -> list[dict[str, Any]]:
        """Alerts, newest first, each with its SLO's runbook."""
        out = []
        for row in self.store.alerts(app, active_only=active_only):
            spec = self.spec_of(row.app)
            runbooks = {o.name: o.runbook for o in spec.slos} if spec is not None else {}
            out.append({**row.as_json(), "runbook": runbooks.get(row.slo)})
        return out

    async def aclose(self) -> None:
        if self.deliveries:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*self.deliveries, return_exceptions=True), 2.0
                )
        await self.alertmanager.aclose()


def _key(row: AlertRow) -> tuple[str, str, str]:
    return (row.app, row.slo, row.windows)


def _retention(objective: Objective, windows: list[BurnWindow]) -> int:
    longest = max([objective.window, *(w.long for w in windows)])
    return int(longest + 2 * objective.resolution)


def _pct(value: float, digits: int = 1) -> str:
    return f"{value * 100:.{digits}f}%"


def _summary(row: AlertRow, objective: Objective, kind: EventKind) -> str:
    n = row.numbers
    if kind == EventKind.ALERT_RESOLVED:
        text = (
            f"{row.severity} alert {row.windows} of SLO {row.slo} resolved: the error budget "
            f"burns {n['longBurnRate']:g}x over {n['longWindow']} and {n['shortBurnRate']:g}x "
            f"over {n['shortWindow']} (alert at {n['burnRate']:g}x)"
        )
    else:
        text = (
            f"{row.severity}: SLO {row.slo} burns its error budget {n['longBurnRate']:g}x over "
            f"{n['longWindow']} and {n['shortBurnRate']:g}x over {n['shortWindow']} (alert at "
            f"{n['burnRate']:g}x); {_pct(n['budgetRemaining'])} of the "
            f"{prometheus_duration(objective.window)} budget left"
        )
    if objective.runbook:
        text += f"; runbook: {objective.runbook}"
    return text
