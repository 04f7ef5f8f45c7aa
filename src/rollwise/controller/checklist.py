"""An app's release checklist, derived from its spec and its live state.

Each item says where the app stands before the next deploy: ✔ it holds, ✗ it does not (and
how to fix it), – it does not apply or is only worth knowing. ``deploy --require-checklist``
refuses while an item is ✗. The items are the mission's checklist made checkable: automated
tests (smoke tests defined and passing, analysis configured), the rollback plan (a revision
to undo to, a recent backup), the agent card kept, and what the spec's operations sections
say now (error budget left, release window open, gates).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rollwise.a2a.diff import extensions
from rollwise.checklist import ChecklistItem
from rollwise.controller.context import PassContext
from rollwise.errors import RollwiseError
from rollwise.slo.budget import SloReport
from rollwise.spec.duration import format_duration
from rollwise.spec.models import RolloutSpec
from rollwise.store.backup import inspect_backup, newest_first
from rollwise.words import EventKind

__all__ = ["checklist"]

SMOKE_KINDS = (
    EventKind.SMOKE_TESTS_PASSED,
    EventKind.SMOKE_TESTS_FAILED,
    EventKind.SMOKE_CHECK_FAILED,
    EventKind.SMOKE_CHECK_RECOVERED,
)
BACKUP_MAX_AGE_S = 24 * 3600.0


def checklist(ctx: PassContext, reports: list[SloReport], backups: Path) -> list[ChecklistItem]:
    spec = ctx.spec
    items = [
        _rollout(ctx),
        _smoke(ctx, spec),
        _analysis(spec),
        _budget(spec, reports),
        _backup(spec, backups, ctx.now),
        _window(spec, ctx.now),
        _gates(spec),
        _rollback_target(ctx),
    ]
    card = _card(ctx, spec)
    if card is not None:
        items.append(card)
    return items


def _rollout(ctx: PassContext) -> ChecklistItem:
    status = ctx.status
    if status.canary is None:
        return ChecklistItem("no rollout in progress", "pass", f"{status.phase.value}")
    if status.aborted:
        return ChecklistItem(
            "no rollout in progress",
            "fail",
            f"the rollout of revision {status.canary} was aborted: {status.message}",
            f"read it with `rollwise get {ctx.app}`, then `rollwise retry {ctx.app}` or deploy "
            "a fix",
        )
    return ChecklistItem(
        "no rollout in progress",
        "fail",
        f"revision {status.canary} is rolling out ({status.phase.value}); a deploy would "
        "supersede it",
        f"let it finish (`rollwise status {ctx.app}`) or `rollwise abort {ctx.app}`",
    )


def _smoke(ctx: PassContext, spec: RolloutSpec) -> ChecklistItem:
    tests = spec.smoke_tests
    if not tests:
        return ChecklistItem(
            "smoke tests",
            "fail",
            "none defined: a revision takes traffic without a single check",
            "add smokeTests to the spec (an a2aMessage test for an agent)",
        )
    last = ctx.store.last_events(ctx.app, SMOKE_KINDS)
    if not last:
        return ChecklistItem(
            "smoke tests", "pass", f"{len(tests)} defined; not run yet (they run before traffic)"
        )
    newest = max(last.values(), key=lambda e: e.id)
    when = _ago(ctx.now - newest.ts)
    if newest.kind in (EventKind.SMOKE_TESTS_FAILED, EventKind.SMOKE_CHECK_FAILED):
        return ChecklistItem(
            "smoke tests",
            "fail",
            f"{len(tests)} defined; the last run failed {when}: {newest.message}",
            f"run them now with `rollwise smoke {ctx.app}` and fix what fails",
        )
    return ChecklistItem("smoke tests", "pass", f"{len(tests)} defined; last passed {when}")


def _analysis(spec: RolloutSpec) -> ChecklistItem:
    strategy = spec.strategy
    where: list[str] = []
    if strategy.canary is not None:
        where += [f"step {i + 1}" for i, s in enumerate(strategy.canary.steps) if s.analysis]
        if strategy.canary.analysis.starting_step is not None:
            where.append(f"background from step {strategy.canary.analysis.starting_step}")
    if strategy.blue_green is not None:
        if strategy.blue_green.pre_promotion_analysis is not None:
            where.append("pre-promotion")
        if strategy.blue_green.post_promotion_analysis is not None:
            where.append("post-promotion")
    if not where:
        return ChecklistItem(
            "analysis",
            "fail",
            "none configured: canary and stable are never compared",
            "add an analysis step (e.g. {analysis: {until: pass}}) after a setWeight",
        )
    settings = spec.analysis_settings
    judges = [
        n for n, j in (("errorRate", settings.error_rate), ("latency", settings.latency)) if j
    ]
    judges += [f"agent {m.name}" for m in settings.agent_metrics]
    return ChecklistItem("analysis", "pass", f"{', '.join(where)}; judges: {', '.join(judges)}")


def _budget(spec: RolloutSpec, reports: list[SloReport]) -> ChecklistItem:
    if not spec.slos:
        return ChecklistItem(
            "error budget", "info", "no SLOs", "add slos to the spec to watch an error budget"
        )
    floor = spec.error_budget_policy.block_deploys_below if spec.error_budget_policy else 0.0
    shown, spent = [], []
    for report in reports:
        name = report.objective.name
        if not report.period.total:
            shown.append(f"{name}: no requests yet")
            continue
        left = report.budget_remaining
        shown.append(f"{name}: {left:.0%} left")
        if left <= floor:
            spent.append(name)
    if spent:
        return ChecklistItem(
            "error budget",
            "fail",
            "; ".join(shown),
            "let the budget recover, undo the release that burns it, or deploy with "
            '--override-budget "why"',
        )
    return ChecklistItem("error budget", "pass", "; ".join(shown))


def _backup(spec: RolloutSpec, backups: Path, now: float) -> ChecklistItem:
    found = newest_first(backups)
    scheduled = spec.backup.schedule if spec.backup is not None else None
    max_age = max(BACKUP_MAX_AGE_S, 2 * scheduled) if scheduled else BACKUP_MAX_AGE_S
    fix = "`rollwise backup` now" + ("" if scheduled else ", and spec.backup.schedule for more")
    if not found:
        return ChecklistItem("backup", "fail", "no backup of the store", fix)
    newest = found[0]
    age = now - newest.stat().st_mtime
    try:
        inspect_backup(newest)
    except (RollwiseError, sqlite3.Error, OSError) as exc:
        return ChecklistItem("backup", "fail", f"{newest.name} is damaged: {exc}", fix)
    detail = f"{newest.name}, {_ago(age)}"
    if age > max_age:
        return ChecklistItem("backup", "fail", f"the newest is old: {detail}", fix)
    return ChecklistItem("backup", "pass", detail)


def _window(spec: RolloutSpec, now: float) -> ChecklistItem:
    windows = spec.release_windows
    if windows is None:
        return ChecklistItem("release window", "info", "no release windows: any time")
    check = windows.check(now)
    if check.open:
        return ChecklistItem("release window", "pass", check.why)
    return ChecklistItem(
        "release window", "fail", check.why, 'wait, or deploy with --override-window "why"'
    )


def _gates(spec: RolloutSpec) -> ChecklistItem:
    if not spec.gates:
        return ChecklistItem(
            "gates",
            "info",
            "none: a rollout needs nobody's yes",
            "add gates (e.g. a confirm-promotion approval) for a second pair of eyes",
        )
    shown = [f"{g.name} ({g.type}, {'approval' if g.manual else 'hook'})" for g in spec.gates]
    return ChecklistItem("gates", "pass", ", ".join(shown))


def _rollback_target(ctx: PassContext) -> ChecklistItem:
    stable = ctx.status.stable
    if stable is None:
        return ChecklistItem("rollback target", "info", "first release: nothing to go back to")
    version = ctx.revision(stable).version
    return ChecklistItem(
        "rollback target",
        "pass",
        f"`rollwise undo {ctx.app}` returns to revision {stable} ({version})",
    )


def _card(ctx: PassContext, spec: RolloutSpec) -> ChecklistItem | None:
    stable = ctx.status.stable
    if spec.a2a is None or stable is None:
        return None
    card = ctx.store.card(ctx.app, stable)
    if card is None:
        return ChecklistItem(
            "agent card",
            "fail",
            f"no card of revision {stable} kept: the next release's card has nothing to be "
            "compared with",
            f"`rollwise a2a extensions {ctx.app}` fetches and keeps it",
        )
    skills = len(card.get("skills") or [])
    listed = ", ".join(extensions(card)) or "none"
    return ChecklistItem(
        "agent card",
        "pass",
        f"revision {stable}: {card.get('name', '?')}, {skills} skill{'' if skills == 1 else 's'}, "
        f"extensions: {listed}",
    )


def _ago(seconds: float) -> str:
    return f"{format_duration(max(0, round(seconds)))} ago"
