"""What the dashboard's pages show, read from the controller's memory and store.

The apps page needs one line per app from the state each worker holds in memory (no spec is
parsed, one indexed read of the newest event per app), so that 200 apps render in
milliseconds. The app page adds the steps of the revision in progress, history, events,
analysis runs, gates and SLOs.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rollwise.spec.duration import format_duration
from rollwise.words import EventKind

if TYPE_CHECKING:
    from rollwise.controller.controller import Controller

__all__ = ["GATE_KINDS", "PHASE_ICONS", "app_page", "apps_rows", "log_lines", "waiting"]

GATE_KINDS = frozenset(
    {
        EventKind.SMOKE_TESTS_PASSED,
        EventKind.SMOKE_TESTS_FAILED,
        EventKind.SMOKE_CHECK_FAILED,
        EventKind.SMOKE_CHECK_RECOVERED,
        EventKind.AGENT_CARD_CHANGED,
        EventKind.AGENT_CARD_UNAVAILABLE,
        EventKind.BREAKING_CHANGE_BLOCKED,
        EventKind.GATE_WAITING,
        EventKind.GATE_OPENED,
        EventKind.GATE_APPROVED,
        EventKind.GATE_FAILED,
        EventKind.ROLLBACK_REQUESTED,
    }
)
PHASE_ICONS = {"Progressing": "⟳", "Paused": "⏸", "Healthy": "✔", "Degraded": "✖"}


def waiting(view: dict[str, Any]) -> bool:
    """Whether a person has to act: a pause that only promote (or abort) ends."""
    return view["phase"] == "Paused" or view.get("pause_reason") == "inconclusive"


def _since(ts: float | None) -> str:
    return format_duration(max(0, int(time.time() - ts))) if ts else "-"


def _versions(view: dict[str, Any]) -> str:
    parts = []
    for rev in view["revisions"]:
        labels = [x for x in rev["labels"] if x in ("stable", "canary", "active", "preview")]
        if labels:
            parts.append(f"{'/'.join(labels)} {rev['version']} (#{rev['number']})")
    return ", ".join(parts) or "-"


def _replicas(view: dict[str, Any]) -> tuple[int, int]:
    ready = sum(int(r["health"].get("ready", 0)) for r in view["revisions"])
    desired = sum(int(r["health"].get("desired", 0)) for r in view["revisions"])
    return ready, desired


def _row(controller: Controller, app: str) -> dict[str, Any]:
    view = controller.worker(app).view()
    events = controller.store.events(app, limit=1)
    ready, desired = _replicas(view)
    canary = view["canary"]
    return {
        "name": app,
        "phase": view["phase"],
        "icon": PHASE_ICONS.get(view["phase"], "?"),
        "waiting": waiting(view),
        "message": view["message"],
        "strategy": view["strategy"] or "-",
        "step": f"{view['step']}/{view['step_count']}" if canary is not None else "-",
        "set_weight": view["set_weight"],
        "actual_weight": view["weights"].get(str(canary), 0) if canary is not None else 100,
        "versions": _versions(view),
        "ready": ready,
        "desired": desired,
        "last_event": f"{events[-1].kind}: {events[-1].message}" if events else "-",
        "in_phase": _since(view["phase_since"]),
    }


def apps_rows(controller: Controller, phase: str = "", name: str = "") -> list[dict[str, Any]]:
    """One row per app, those waiting for a person first, then by name."""
    rows = [_row(controller, app) for app in controller.store.app_names()]
    rows = [
        r for r in rows if (not phase or r["phase"] == phase) and (not name or name in r["name"])
    ]
    return sorted(rows, key=lambda r: (not r["waiting"], r["name"]))


def _steps(controller: Controller, app: str, view: dict[str, Any]) -> list[dict[str, Any]]:
    number = view["canary"]
    if number is None:
        return []
    state = controller.worker(app).state
    spec = state.revision(number).spec
    steps = spec.strategy.canary.steps if spec.strategy.canary else []
    out = []
    for i, step in enumerate(steps, start=1):
        detail = ""
        if step.set_weight is not None:
            detail = f"{step.set_weight} %"
        elif step.pause is not None:
            detail = (
                format_duration(step.pause.duration) if step.pause.duration else "until promoted"
            )
        elif step.analysis is not None:
            detail = f"until {step.analysis.until}"
        state_word = "done" if i <= view["step"] else "current" if i == view["step"] + 1 else ""
        out.append({"index": i, "kind": step.kind, "detail": detail, "state": state_word})
    return out


async def app_page(controller: Controller, app: str) -> dict[str, Any]:
    """Everything the app page shows."""
    worker = controller.worker(app)
    view = await worker.traffic(worker.view())
    table = await controller.router.applied()
    applied = table.apps.get(app)
    actual = applied.weights() if applied is not None else {}
    revisions = []
    for rev in view["revisions"]:
        health = rev["health"]
        revisions.append(
            {
                **rev,
                "actual": actual.get(str(rev["number"]), 0),
                "replicas": health.get("replicas", []),
                "ready": health.get("ready", 0),
                "desired": health.get("desired", 0),
            }
        )
    history = []
    for row in controller.store.revisions(app):
        took = (row.finished_at - row.created_at) if row.finished_at else None
        history.append(
            {
                "number": row.number,
                "version": row.version,
                "outcome": row.outcome,
                "reason": row.reason,
                "cause": row.cause,
                "by": row.created_by,
                "created": row.created_at,
                "took": format_duration(round(took)) if took is not None else "-",
            }
        )
    events = controller.store.events(app, limit=200)
    gates = [e.__dict__ for e in events if e.kind in GATE_KINDS][-10:]
    events = events[-50:]
    spec = worker.state.spec.spec
    slos = [r.as_json() for r in controller.slos.report(app, spec)] if spec.slos else []
    return {
        "view": view,
        "row": _row(controller, app),
        "steps": _steps(controller, app, view),
        "revisions": revisions,
        "history": list(reversed(history)),
        "events": list(reversed([e.__dict__ for e in events])),
        "analyses": [row.as_json() for row in controller.store.analyses(app, limit=10)],
        "gates": list(reversed(gates)),
        "slos": slos,
        "undo_targets": [h["number"] for h in history if h["number"] != view["stable"]],
    }


async def log_lines(
    controller: Controller,
    app: str,
    revision: int,
    offsets: dict[str, int],
    since: dict[str, str],
) -> list[str]:
    """New lines of a revision's replica logs since ``offsets`` (path → bytes read) or, for
    a cluster's pods, ``since`` (pod → newest stamp shown), both updated; each line prefixed
    with its replica or pod, secret values masked. A first call gives the last 50 lines of
    each."""
    from pathlib import Path

    from rollwise.backends.base import PodLogs
    from rollwise.backends.kubernetes_logs import follow
    from rollwise.backends.process import read_new, tail
    from rollwise.redact import SECRETS

    out = []
    backend = controller.backend
    if isinstance(backend, PodLogs):
        found = await backend.pod_logs(app, revision, 50, since)
        out = [f"[{pod}] {line}" for pod, line in follow(since, ((p, ls) for p, _, ls in found))]
    for path in map(Path, controller.backend.log_paths(app, revision)):
        key = str(path)
        if key not in offsets:
            if not path.exists():
                continue
            new, offsets[key] = tail(path, 50), path.stat().st_size
        else:
            new, offsets[key] = read_new(path, offsets[key])
        out += [f"[{path.stem}] {line}" for line in new]
    return [SECRETS.text(line) for line in out]
