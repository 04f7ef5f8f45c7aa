"""``rollwise approve`` (open a release gate by hand; who approved is recorded),
``rollwise checklist`` (the release checklist, ✔ / ✗ / – with a fix for each ✗) and
``rollwise tasks`` (the maintenance tasks and their runs)."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.text import Text

from rollwise.cli.common import Output, OutputOpt, StateDir, client, out, print_json

__all__ = ["approve", "checklist", "tasks"]

STYLES = {"pass": "green", "fail": "red", "info": "dim"}


def approve(
    name: Annotated[str, typer.Argument(help="The app.")],
    gate: Annotated[
        str | None,
        typer.Option("--gate", help="The gate to open (default: the one that holds the rollout)."),
    ] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Who approves (default: your user name).")
    ] = None,
    message: Annotated[str, typer.Option("--message", "-m", help="Why, for the record.")] = "",
    state_dir: StateDir = None,
) -> None:
    """Approve a confirm-rollout, confirm-traffic-increase or confirm-promotion gate of the
    rollout in progress: the one holding it now, or one it has not reached yet."""
    body = {"gate": gate, "by": by or getpass.getuser(), "note": message}
    with client(state_dir) as admin:
        view = admin.request("POST", f"/apps/{name}/approve", json=body)
    approvals = [(a["at"], g["name"], a) for g in view.get("gates") or [] for a in g["approvals"]]
    if not approvals:  # the rollout ended meanwhile
        out.print(f"app {name}: approved; {view['phase']}")
        return
    _, gate_name, newest = max(approvals, key=lambda t: t[0])
    where = f" at {newest['point']}" if newest["point"] != "*" else ""
    out.print(f"app {name}: gate {gate_name} approved by {newest['by']}{where}")


def checklist(
    name: Annotated[str, typer.Argument(help="The app.")],
    output: OutputOpt = Output.TEXT,
    state_dir: StateDir = None,
) -> None:
    """The release checklist of an app, from its spec and live state: smoke tests, analysis,
    error budget, backup, release window, gates, rollback target, agent card. Exit code 1
    when an item fails (what `deploy --require-checklist` refuses on)."""
    from rollwise.checklist import MARKS, ChecklistItem

    with client(state_dir) as admin:
        rows = admin.request("GET", f"/apps/{name}/checklist")
    items = [ChecklistItem.from_json(row) for row in rows]
    if output == Output.JSON:
        print_json(rows)
    else:
        for item in items:
            line = Text(f"{MARKS[item.state]} ", style=STYLES[item.state])
            line.append(f"{item.item}: ", style="bold")
            line.append(item.detail)
            if item.fix and item.state != "pass":
                line.append(
                    f"\n    fix: {item.fix}", style="yellow" if item.state == "fail" else "dim"
                )
            out.print(line, highlight=False)
    if any(item.state == "fail" for item in items):
        raise typer.Exit(1)


def tasks(
    name: Annotated[str, typer.Argument(help="The app.")],
    output: OutputOpt = Output.TEXT,
    state_dir: StateDir = None,
) -> None:
    """The app's maintenance tasks: kind, plan, last run and its outcome, next run, runs.
    Exit code 1 when a task's last run failed or timed out."""
    import time

    from rich.table import Table

    with client(state_dir) as admin:
        rows = admin.request("GET", f"/apps/{name}/tasks")
    if output == Output.JSON:
        print_json(rows)
    else:

        def when(ts: float | None) -> str:
            return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) if ts else "-"

        table = Table(box=None, header_style="bold", title_justify="left")
        for col in ("TASK", "KIND", "PLAN", "LAST RUN (UTC)", "OUTCOME", "NEXT RUN", "RUNS"):
            table.add_column(col)
        for row in rows:
            outcome = "running" if row["running"] else row.get("outcome") or "-"
            style = {"ok": "green", "failed": "red", "timeout": "red"}.get(outcome, "")
            table.add_row(
                row["name"],
                row["kind"],
                row["plan"],
                when(row["lastRun"]),
                Text(outcome, style=style),
                when(row["nextRun"]),
                str(row["runs"]),
            )
        out.print(table if rows else f"app {name} has no maintenance tasks")
        for row in rows:
            if row.get("detail") and row.get("outcome") not in ("ok", "running"):
                out.print(f"{row['name']}: {row['detail']}", highlight=False)
    if any(row.get("outcome") in ("failed", "timeout") for row in rows):
        raise typer.Exit(1)
