"""``rollwise slo`` and ``rollwise alerts``: whether what was released keeps its promises.

``slo [APP]`` shows each SLO's objective, its SLI over the window, the error budget left and
the burn rate over each alert window, with each alert's state (Pyrra's list, in a
terminal); ``slo rules APP`` writes the Prometheus rules for a team's own Prometheus;
``alerts [APP]`` lists firing and resolved burn-rate alerts with their numbers and runbooks.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from rollwise.cli.common import Output, OutputOpt, StateDir, client, err, out, print_json
from rollwise.errors import UsageError

__all__ = ["alerts", "slo", "slo_table"]


def _pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slo_table(reports: list[dict[str, Any]]) -> Group:
    """One line per SLO, then one per alert window of each."""
    table = Table(title="SLOs", title_justify="left", expand=False)
    for column in ("APP", "SLO", "OBJECTIVE", "WINDOW", "SLI", "REQUESTS", "BUDGET LEFT", "BURN"):
        table.add_column(column)
    table.add_column("RUNBOOK", overflow="fold")
    alerts = Table(title="Burn-rate alerts", title_justify="left", expand=False)
    for column in ("APP", "SLO", "SEVERITY", "WINDOWS", "BURN (LONG / SHORT)", "ALERT AT", "STATE"):
        alerts.add_column(column)
    for r in reports:
        objective = f"{_pct(r['target'], 3)} {r['indicator']}"
        if r["threshold"] is not None:
            objective += f" ≤ {r['threshold'] * 1000:g} ms"
        left = r["budgetRemaining"]
        style = "red" if left <= 0 else "yellow" if left < 0.25 else "green"
        table.add_row(
            r["app"],
            r["slo"],
            objective,
            r["window"],
            _pct(r["sli"], 3),
            str(r["requests"]),
            Text(_pct(left, 1), style=style),
            f"{r['currentBurnRate']:.2f}x",
            r.get("runbook") or "-",
        )
        for a in r["alerts"]:
            state = a.get("state", "inactive")
            colour = {"firing": "red", "pending": "yellow"}.get(state, "dim")
            alerts.add_row(
                r["app"],
                r["slo"],
                a["severity"],
                a["window"],
                f"{a['longBurnRate']:.2f}x / {a['shortBurnRate']:.2f}x",
                f"{a['burnRate']:g}x",
                Text(state + (f" since {_when(a['since'])}" if a.get("since") else ""), colour),
            )
    return Group(table, alerts)


def slo(
    name: Annotated[
        str | None,
        typer.Argument(help="The app (all when omitted), or `rules` followed by the app."),
    ] = None,
    rules_app: Annotated[
        str | None, typer.Argument(help="With `rules`: the app.", show_default=False)
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Redraw every 2 seconds.")] = False,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="With `rules`: write them here.")
    ] = None,
    alerts_only: Annotated[
        bool,
        typer.Option("--alerts-only", help="With `rules`: only the alerting rules."),
    ] = False,
    output: OutputOpt = Output.TEXT,
    state_dir: StateDir = None,
) -> None:
    """Show each SLO: its SLI over the window, the error budget left, the burn rates, the
    alerts. `rollwise slo rules APP [-f FILE] [--alerts-only]` writes Prometheus rules."""
    with client(state_dir) as admin:
        if name == "rules":
            if rules_app is None:
                raise UsageError("rollwise slo rules needs the app, e.g. rollwise slo rules my-app")
            params = {"alertsOnly": "1"} if alerts_only else {}
            text: str = admin.request("GET", f"/apps/{rules_app}/slos/rules", params=params)
            if file is None:
                out.print(text, markup=False, highlight=False, soft_wrap=True, end="")
            else:
                file.write_text(text)
                err.print(f"rules for {rules_app} written to {file}")
            return
        if rules_app is not None:
            raise UsageError(f"rollwise slo takes one app; {rules_app!r} is one too many")
        path = f"/apps/{name}/slos" if name else "/slos"
        reports: list[dict[str, Any]] = admin.request("GET", path)
        if output == Output.JSON:
            print_json(reports)
            return
        if not reports:
            err.print("no SLOs yet: add slos to an app's spec (docs/operations.md)")
            return
        if not watch:
            out.print(slo_table(reports))
            return
        with Live(slo_table(reports), console=out, refresh_per_second=2) as live:
            while True:
                time.sleep(2.0)
                live.update(slo_table(admin.request("GET", path)))


def alerts(
    name: Annotated[str | None, typer.Argument(help="The app (all when omitted).")] = None,
    active: Annotated[
        bool, typer.Option("--active", help="Only pending and firing alerts.")
    ] = False,
    output: OutputOpt = Output.TEXT,
    state_dir: StateDir = None,
) -> None:
    """List burn-rate alerts, newest first: firing, pending and resolved, with their numbers
    and runbooks."""
    params: dict[str, str] = {"active": "1"} if active else {}
    if name:
        params["app"] = name
    with client(state_dir) as admin:
        rows: list[dict[str, Any]] = admin.request("GET", "/alerts", params=params)
    if output == Output.JSON:
        print_json(rows)
        return
    if not rows:
        err.print("no alerts")
        return
    table = Table(expand=False)
    for column in ("APP", "SLO", "SEVERITY", "WINDOWS", "STATE", "SINCE", "RESOLVED", "BURN"):
        table.add_column(column)
    table.add_column("RUNBOOK", overflow="fold")
    for row in rows:
        n = row["numbers"]
        colour = {"firing": "red", "pending": "yellow"}.get(row["state"], "green")
        table.add_row(
            row["app"],
            row["slo"],
            row["severity"],
            row["window"],
            Text(row["state"], colour),
            _when(row["since"]),
            _when(row["resolvedAt"]),
            f"{n.get('longBurnRate', 0):.2f}x / {n.get('shortBurnRate', 0):.2f}x "
            f"(at {n.get('burnRate', 0):g}x)",
            row.get("runbook") or "-",
        )
    out.print(table)
