"""rich views of the controller's JSON: what ``get``, ``list`` and ``history`` print."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from rollwise.a2a.labels import told

if TYPE_CHECKING:
    from rollwise.analysis.replay import Replay

__all__ = ["ICONS", "analysis_table", "app_view", "history_table", "list_table", "replay_view"]

ICONS = {
    "Healthy": ("✔", "green"),
    "Progressing": ("◌", "yellow"),
    "Paused": ("॥", "cyan"),
    "Degraded": ("✖", "red"),
}
STATE_ICONS = {
    "ready": ("✔", "green"),
    "starting": ("◌", "yellow"),
    "pending": ("◌", "yellow"),
    "crashed": ("✖", "red"),
}


def _phase(phase: str) -> Text:
    icon, color = ICONS.get(phase, ("?", "white"))
    return Text(f"{icon} {phase}", style=color)


def _age(ts: float | None) -> str:
    if not ts:
        return "-"
    seconds = max(0, int(time.time() - ts))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _replica_info(rep: dict[str, Any]) -> str:
    """A replica's process or pod, restarts, last exit, CPU share and why it does not start."""
    name = rep.get("name")  # a cluster's pod (older controllers send none)
    parts = [f"pid {rep['pid']}" if rep["pid"] else f"pod {name}" if name else "not running"]
    if rep["restarts"]:
        parts.append(f"restarts {rep['restarts']}")
    if rep["last_exit"] is not None:
        parts.append(f"last exit {rep['last_exit']}")
    if rep.get("cpu") is not None:  # a cluster pod's share of its CPU request
        parts.append(f"cpu {rep['cpu']:.0%}")
    if rep.get("reason"):
        parts.append(rep["reason"])
    return ", ".join(parts)


def app_view(data: dict[str, Any]) -> Group:
    parts: list[Any] = [_head(data), Text(""), _tree(data)]
    if data.get("analysis"):
        parts += [Text(""), analysis_table(data["analysis"])]
    for rev in data["revisions"]:
        if rev["health"]["crash_loop"] and rev["health"]["last_logs"]:
            parts.append(Text(f"\nlast log lines of revision {rev['number']}:", style="bold red"))
            parts.extend(Text("  " + line) for line in rev["health"]["last_logs"])
    parts += _operations(data)
    for book in data.get("runbooks") or []:
        parts += [Text(""), *runbook_lines(book)]
    return Group(*parts)


def _head(data: dict[str, Any]) -> Table:
    """Argo's summary: status, strategy, step and weights, where traffic enters, replicas."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("Name:", data["name"])
    head.add_row("Status:", _phase(data["phase"]))
    head.add_row("Message:", data.get("message") or "")
    if data.get("error"):
        head.add_row("Error:", Text(data["error"], style="red"))
    head.add_row("Strategy:", data["strategy"])
    head.add_row("  Step:", f"{data['step']}/{data['step_count']}")
    head.add_row("  SetWeight:", str(data["set_weight"]))
    actual = data.get("actual_weights") or {}
    canary = data.get("canary")
    shown = actual.get(str(canary), 0) if canary is not None else sum(actual.values())
    head.add_row("  ActualWeight:", str(shown))
    backend = data.get("backend") or {}
    cluster = backend.get("kind") == "kubernetes"
    if cluster:  # its traffic enters through the cluster's router, not a local listener
        head.add_row("Namespace:", backend.get("namespace", ""))
    else:
        head.add_row("Listen:", f"http://{data['listen']}")
    labels = []
    for rev in data["revisions"]:
        shown = rev.get("image") if cluster and rev.get("image") else rev["version"]
        labels.append(f"{shown} (r{rev['number']}: {', '.join(rev['labels']) or '-'})")
    head.add_row("Images:" if cluster else "Versions:", "\n".join(labels) or "-")
    ready = sum(r["health"]["ready"] for r in data["revisions"] if "stable" in r["labels"])
    scaling = data.get("autoscaling")
    bounds = f"  Autoscaling: {scaling['minReplicas']}..{scaling['maxReplicas']}" if scaling else ""
    head.add_row("Replicas:", f"Desired: {data['replicas']}  Ready: {ready}{bounds}")
    return head


def _tree(data: dict[str, Any]) -> Table:
    """The rollout's revisions and their replicas, as ``kubectl argo rollouts get`` draws."""
    tree = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("NAME", "KIND", "STATUS", "WEIGHT", "INFO"):
        tree.add_column(col)
    tree.add_row(data["name"], "Rollout", _phase(data["phase"]), "", "")
    for rev in data["revisions"]:
        health = rev["health"]
        state = "crash loop" if health["crash_loop"] else f"{health['ready']}/{health['desired']}"
        color = "red" if health["crash_loop"] else "green"
        info = f"{rev['version']} {','.join(rev['labels'])}"
        if rev.get("conversations"):  # an A2A revision draining: follow-ups still reach it
            info += f"; holds {rev['conversations']} conversation(s)"
        row = (f"├──# revision:{rev['number']}", "Revision", Text(state, style=color))
        tree.add_row(*row, str(rev["weight"]), info)
        for rep in health["replicas"]:
            icon, rc = STATE_ICONS.get(rep["state"], ("?", "white"))
            info = _replica_info(rep)
            tree.add_row(
                f"│  └──□ {rep['address']}",
                "Replica",
                Text(f"{icon} {rep['state']}", style=rc),
                "",
                info,
            )
        if rev.get("a2a"):  # what an A2A revision answered, other than plain success
            tree.add_row("│  └──≡ A2A, last minute", "Outcomes", "", "", told(rev["a2a"]))
    return tree


def _operations(data: dict[str, Any]) -> list[Any]:
    """The rollout's gates and the app's flags, when it has any."""
    parts: list[Any] = []
    if data.get("gates"):
        parts += [Text(""), gates_table(data["gates"])]
    if data.get("flags"):
        flags = [
            f"{f['key']}={f['default'] or '-'}"
            + (" (targeted)" if f["targeting"] else "")
            + (" (disabled)" if f["state"] == "DISABLED" else "")
            + (f" set by {f['by']}" if f["by"] else "")
            for f in data["flags"]
        ]
        parts += [Text(""), Text("Flags: ", style="bold") + Text(", ".join(flags))]
    return parts


def _opens_by(gate: dict[str, Any]) -> str:
    if gate["url"] is None:
        return "approval"
    return "hook or approval" if gate["type"].startswith("confirm-") else "hook"


GATE_STYLES = {"open": "green", "waiting": "yellow", "skipped": "dim", "not reached": "dim"}


def gates_table(gates: list[dict[str, Any]]) -> Table:
    """The rollout's release gates: kind, how each opens, where it stands, who approved."""
    table = Table(box=None, pad_edge=False, header_style="bold", title_justify="left")
    table.title = "Gates"
    for col in ("GATE", "TYPE", "OPENS BY", "STATE", "APPROVED"):
        table.add_column(col)
    for gate in gates:
        approved = ", ".join(
            f"{a['by']}" + (f" ({a['point']})" if a["point"] != "*" else "")
            for a in gate["approvals"]
        )
        table.add_row(
            gate["name"],
            gate["type"],
            _opens_by(gate),
            Text(gate["state"], style=GATE_STYLES.get(gate["state"], "")),
            approved or "-",
        )
    return table


def runbook_lines(book: dict[str, Any]) -> list[Text]:
    """A runbook as ``rollwise get`` and ``rollwise runbook`` show it: its event, when it last
    happened, the numbered steps, the link."""
    head = Text(f"Runbook for {book['kind']}", style="bold")
    if book.get("last_seen"):
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(book["last_seen"]))
        revision = f" (revision {book['revision']})" if book.get("revision") is not None else ""
        head.append(f": last at {when}{revision}: {book.get('message') or ''}", style="")
    else:
        head.append(": has not happened", style="dim")
    lines = [head]
    lines += [Text(f"  {n}. {step}") for n, step in enumerate(book["steps"], 1)]
    if book.get("link"):
        lines.append(Text(f"  {book['link']}", style="cyan"))
    return lines


def _entry(app: dict[str, Any]) -> str:
    """Where the app's traffic enters: its listener, or a cluster app's namespace."""
    backend = app.get("backend") or {}
    if backend.get("kind") == "kubernetes":
        return f"namespace {backend.get('namespace', '')}"
    return str(app["listen"])


def list_table(apps: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("NAME", "STRATEGY", "STATUS", "STEP", "SET-WEIGHT", "READY", "DESIRED", "LISTEN"):
        table.add_column(col)
    for app in apps:
        stable = [r for r in app["revisions"] if "stable" in r["labels"]]
        ready = stable[0]["health"]["ready"] if stable else 0
        table.add_row(
            app["name"],
            app["strategy"],
            _phase(app["phase"]),
            f"{app['step']}/{app['step_count']}",
            str(app["set_weight"]),
            str(ready),
            str(app["replicas"]),
            _entry(app),
        )
    return table


def history_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in (
        "REVISION",
        "VERSION",
        "STRATEGY",
        "OUTCOME",
        "REASON",
        "CAUSE",
        "BY",
        "AGE",
        "TOOK",
    ):
        table.add_column(col)
    for row in rows:
        took = "-"
        if row.get("finished_at"):
            took = f"{row['finished_at'] - row['created_at']:.1f}s"
        table.add_row(
            str(row["revision"]),
            row["version"],
            row["strategy"],
            row["outcome"],
            row["reason"] or "",
            row["cause"],
            row["created_by"],
            _age(row["created_at"]),
            took,
        )
    return table


VERDICT_STYLES = {"pass": "green", "fail": "red", "wait": "yellow", "inconclusive": "cyan"}


def analysis_table(runs: list[dict[str, Any]]) -> Table:
    """Analysis runs: which revision against which, the verdict and each judge's evidence."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("ANALYSIS", "REVISION", "VERDICT", "AGE", "EVIDENCE"):
        table.add_column(col)
    for run in runs:
        verdict = run["verdict"]
        judges = verdict.get("judges", [])
        evidence = "\n".join(
            f"{j['name']}: {j['outcome']}{' (dry run)' if j['dry_run'] else ''} — {j['summary']}"
            for j in judges
        )
        against = f" vs r{run['baseline']}" if run.get("baseline") is not None else ""
        table.add_row(
            run["kind"],
            f"r{run['revision']}{against}",
            Text(run["outcome"], style=VERDICT_STYLES.get(run["outcome"], "white")),
            _age(run["updated"]),
            evidence or verdict.get("detail", ""),
        )
    return table


def replay_view(result: Replay) -> Group:
    """``rollwise analysis replay``: each change of a judge's outcome, then the verdict."""
    head = Text(
        f"app {result.app}: canary r{result.canary} ({result.requests[result.canary]} requests) "
        f"vs baseline r{result.baseline} ({result.requests[result.baseline]}), "
        f"{result.seconds} s judged"
    )
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("AT", "JUDGE", "OUTCOME", "EVIDENCE"):
        table.add_column(col)
    for entry in result.timeline:
        table.add_row(
            f"+{entry.elapsed:.0f}s",
            entry.judge,
            Text(entry.outcome, style=VERDICT_STYLES.get(entry.outcome, "white")),
            entry.summary,
        )
    verdict, end = result.verdict, result.end
    line = Text(f"verdict: {verdict.outcome}", style=VERDICT_STYLES.get(verdict.outcome, "white"))
    if result.decided_at is not None:
        acts = "advance" if verdict.outcome == "pass" else "abort"
        line.append(f" at +{result.decided_at:.0f}s (a live step would {acts} here)")
    line.append(f" — {verdict.detail}", style="default")
    lines: list[RenderableType] = [head, Text(""), table, Text(""), line]
    if end is not verdict:
        rest = Text("then, by the end of the log: ")
        rest.append(end.outcome, style=VERDICT_STYLES.get(end.outcome, "white"))
        rest.append(f" — {end.detail}", style="default")
        lines.append(rest)
    return Group(*lines)


SMOKE_STYLE = {"passed": "green", "failed": "red", "error": "red", "skipped": "dim"}


def smoke_table(suite: dict[str, Any]) -> Group:
    """One row per test and target, then the verdict line."""
    table = Table(box=None, header_style="bold")
    for col in ("TEST", "KIND", "SEVERITY", "TARGET", "STATUS", "TOOK", "MESSAGE"):
        table.add_column(col, overflow="fold")
    for r in suite["test_results"]:
        table.add_row(
            r["test_name"],
            r["kind"],
            r["severity"],
            r["target"],
            Text(r["status"], style=SMOKE_STYLE.get(r["status"], "")),
            f"{r['duration'] * 1000:.0f}ms",
            r["message"],
        )
    verdict = (
        Text("PASSED", style="bold green") if suite["success"] else Text("FAILED", style="bold red")
    )
    counts = f" {suite['passed']}/{suite['total_tests']} passed"
    if suite["failed"]:
        counts += f", {suite['failed']} failed"
    if suite["skipped"]:
        counts += f", {suite['skipped']} skipped"
    return Group(table, Text.assemble("\n", verdict, counts))
