"""What people read about one app: ``rollwise get`` (``view``), its agent cards, and the
smoke tests run on demand. Reading changes nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rollwise.analysis.source import MetricSource
from rollwise.controller.context import PassContext
from rollwise.controller.flags import AppFlags
from rollwise.controller.release_gates import opened_points
from rollwise.controller.scaling import capacity
from rollwise.errors import ConflictError, DataPlaneError, UsageError
from rollwise.routing.base import TrafficRouter
from rollwise.smoke import SmokeTestSuite
from rollwise.spec.models import RolloutSpec

__all__ = ["OUTCOME_WINDOW_S", "app_view", "cards", "runbooks", "smoke", "traffic"]

OUTCOME_WINDOW_S = 60


def app_view(ctx: PassContext, reconcile_errors: int, error: str) -> dict[str, Any]:
    """Everything ``rollwise get`` shows, as JSON."""
    status = ctx.status
    revisions = []
    for n in sorted(status.revisions()):
        labels = (["stable"] if n == status.stable else []) + (
            ["canary"] if n == status.canary else []
        )
        if status.strategy == "blueGreen" and labels:
            labels.append("active" if n == status.stable else "preview")
        if n == status.canary and status.aborted:
            labels.append("aborted")
        if any(w.revision == n for w in status.warm):
            labels.append("warm")
        if any(r.revision == n for r in status.retiring):
            labels.append("retiring")
        info = ctx.revision(n)
        image = info.spec.template.image
        revisions.append(
            {
                "number": n,
                "version": info.version,
                # a cluster's pods run it (the local backend runs the command line)
                "image": image.replace("{version}", info.version) if image else None,
                "labels": labels,
                "weight": status.weights.get(n, 0),
                "health": ctx.health(n).as_json(),
            }
        )
    spec = ctx.spec
    return {
        "name": ctx.app,
        "phase": status.phase.value,
        "message": status.message,
        "strategy": status.strategy,
        "step": status.step,
        "step_count": status.step_count,
        "pause_reason": status.pause_reason,
        "aborted": status.aborted,
        "header_routes": [r.model_dump() for r in status.header_routes],
        "listen": spec.listen,
        "backend": {"kind": spec.backend.kind, "namespace": spec.backend.namespace},
        "replicas": capacity(status, spec),
        "autoscaling": spec.autoscaling.model_dump(mode="json", by_alias=True)
        if spec.autoscaling is not None
        else None,
        "stable": status.stable,
        "canary": status.canary,
        "set_weight": status.weights.get(status.canary, 0) if status.canary is not None else 100,
        "weights": {str(k): v for k, v in status.weights.items()},
        "revisions": revisions,
        "updated": status.updated,
        "phase_since": status.phase_since or status.updated,
        "reconcile_errors": reconcile_errors,
        "error": error,
        "analysis": [row.as_json() for row in ctx.store.analyses(ctx.app, limit=3)],
        "runbooks": runbooks(ctx, since=status.phase_since or status.updated),
        "gates": gates(ctx),
    }


async def traffic(
    ctx: PassContext, router: TrafficRouter, metrics: MetricSource
) -> dict[int, dict[str, Any]]:
    """What the data plane says of each running revision of an A2A app now: its exchanges
    that did not end plainly over the last ``OUTCOME_WINDOW_S`` (``a2a``: ``"<method>
    <outcome>"`` → count) and, while it drains, the conversations it still holds
    (``conversations``). A data plane that does not answer leaves them out."""
    if not ctx.spec.speaks_a2a:
        return {}
    try:
        series = await metrics.seconds(ctx.app, int(ctx.now - OUTCOME_WINDOW_S))
        replicas = await router.replicas()
    except DataPlaneError:
        return {}
    out: dict[int, dict[str, Any]] = {}
    for number in ctx.status.revisions():
        outcomes: Counter[str] = Counter()
        for counts in series.get(number, {}).values():
            outcomes.update(counts.outcomes)
        addresses = ctx.backend.addresses(ctx.app, number, ready=False)
        out[number] = {
            "a2a": dict(outcomes.most_common()),
            "conversations": sum(replicas[a].conversations for a in addresses if a in replicas),
        }
    return out


def flags(app_flags: AppFlags, spec: RolloutSpec) -> list[dict[str, Any]]:
    """The app's flags in brief: default variant, targeted or not, where from, who set it."""
    return [
        {
            "key": key,
            "default": flag["definition"].get("defaultVariant"),
            "state": flag["definition"].get("state", "ENABLED"),
            "targeting": bool(flag["definition"].get("targeting")),
            "source": flag["source"],
            "by": flag["by"],
        }
        for key, flag in sorted(app_flags.effective(spec).items())
    ]


def gates(ctx: PassContext) -> list[dict[str, Any]]:
    """The release gates of the rollout in progress (none without one): each gate's kind,
    hook or manual, and whether it is open, waiting or not reached yet, with its approvals."""
    status = ctx.status
    if status.canary is None or status.aborted:
        return []
    revision = ctx.revision(status.canary)
    if not revision.spec.gates:
        return []
    approvals = ctx.store.approvals(ctx.app, revision.number)
    shown = []
    for gate in revision.spec.gates:
        opened = opened_points(status, gate)
        if gate.name in status.waiting_gates:
            state = "waiting"
        elif opened:
            state = "open"
        else:
            state = "skipped" if status.skip_gates else "not reached"
        shown.append(
            {
                "name": gate.name,
                "type": gate.type,
                "url": gate.url,
                "state": state,
                "opened": opened,
                "approvals": [a.as_json() for a in approvals if a.gate == gate.name],
            }
        )
    return shown


def runbooks(
    ctx: PassContext, since: float | None = None, kind: str | None = None
) -> list[dict[str, Any]]:
    """The spec's runbooks (or the one for ``kind``) with when their event last happened,
    newest first; with ``since``, only those whose event happened since then."""
    books = ctx.spec.runbooks
    if kind is not None and kind not in books:
        have = ", ".join(sorted(books)) or "none (add runbooks: to the spec)"
        raise UsageError(f"app {ctx.app} has no runbook for {kind}; it has {have}")
    wanted = [kind] if kind is not None else sorted(books)
    last = ctx.store.last_events(ctx.app, wanted) if wanted else {}
    shown = []
    for name in wanted:
        row = last.get(name)
        if since is not None and (row is None or row.ts < since):
            continue
        shown.append(
            {
                "kind": name,
                **books[name].as_json(),
                "last_seen": row.ts if row else None,
                "revision": row.revision if row else None,
                "message": row.message if row else None,
            }
        )
    return sorted(shown, key=lambda b: -(b["last_seen"] or 0.0))


async def cards(ctx: PassContext) -> list[dict[str, Any]]:
    """Each revision's agent card as it served it (kept at its card check), with its
    version; a running revision not checked yet is asked now (and kept)."""
    status = ctx.status
    running = sorted(status.revisions())
    await ctx.checks.fetch_missing_cards(
        [ctx.revision(n) for n in running], {n: ctx.health(n) for n in running}
    )
    versions = {r.number: r.version for r in ctx.store.revisions(ctx.app)}
    return [
        {
            "revision": number,
            "version": versions.get(number, "?"),
            "stable": number == status.stable,
            "canary": number == status.canary,
            "card": card,
        }
        for number, card in ctx.store.cards(ctx.app).items()
    ]


async def smoke(ctx: PassContext, revision: int | None, url: str | None) -> SmokeTestSuite:
    """``rollwise smoke``: the spec's smoke tests now, against ``url``, each replica of
    ``revision``, or (neither given) the public listener."""
    number = revision if revision is not None else ctx.status.stable
    if number is None:
        raise ConflictError(f"app {ctx.app} has no stable revision; name one with --revision")
    info = ctx.revision(number)
    if not info.spec.smoke_tests:
        raise UsageError(f"app {ctx.app} declares no smokeTests; add some to its spec")
    health = ctx.health(number) if revision is not None else None
    if url is None and health is not None and health.ready == 0:
        raise ConflictError(
            f"revision {number} of {ctx.app} has no ready replica to test; "
            "deploy or undo to it first, or pass --url"
        )
    return await ctx.checks.smoke_now(info, health, url)
