"""What an app's status means for the data plane: its routing table, and its preview's.

Weighted revisions with their ready replicas (those a scale-down removes draining); warm
ones at weight 0 (ready for an instant undo); retiring ones whose replicas drain (no new
request, in-flight ones finish); the
canary's header routes; a blue-green preview on its own listener while there is one.
"""

from __future__ import annotations

from rollwise.controller.context import PassContext
from rollwise.routing.table import (
    A2ARouting,
    AppTable,
    HeaderRouteEntry,
    RevisionEntry,
    revision_entry,
)
from rollwise.spec.models import RolloutSpec

__all__ = ["a2a_routing", "app_routes", "preview_routes"]


def a2a_routing(spec: RolloutSpec) -> A2ARouting | None:
    """How the proxy reads an A2A app's exchanges; ``None`` for a plain HTTP app."""
    if not spec.speaks_a2a:
        return None
    traffic = spec.traffic
    affinity = traffic.affinity
    return A2ARouting(
        failure_outcomes=tuple(traffic.failure_outcomes),
        max_conversations=affinity.max_conversations if affinity.enabled else 0,
        ttl_s=round(affinity.ttl),
        idle_s=affinity.idle,
    )


def app_routes(ctx: PassContext) -> AppTable:
    status = ctx.status
    addresses = ctx.backend.addresses
    app = ctx.app

    def entry(number: int, labels: list[str], weight: int) -> RevisionEntry:
        version = ctx.revision(number).version
        leaving = ctx.draining.get(number, set())
        return revision_entry(
            number, version, labels, weight, addresses(app, number), draining_addresses=leaving
        )

    revisions: list[RevisionEntry] = []
    for number, weight in sorted(status.weights.items()):
        roles = (("stable", status.stable), ("canary", status.canary))
        labels = [label for label, n in roles if n == number]
        revisions.append(entry(number, labels, weight))
    listed = set(status.weights)
    canary = status.canary
    if canary is not None and canary not in listed and not status.aborted:
        listed.add(canary)  # weight 0 until a setWeight, but header routes may reach it
        revisions.append(entry(canary, ["canary"], 0))
    for warm in status.warm:
        if warm.revision not in listed:
            listed.add(warm.revision)
            revisions.append(entry(warm.revision, [], 0))
    for retiring in status.retiring:
        if retiring.revision not in listed:
            number = retiring.revision
            revisions.append(
                revision_entry(
                    number,
                    ctx.revision(number).version,
                    [],
                    0,
                    addresses(app, number, ready=False),
                    draining=True,
                )
            )
    header_routes: tuple[HeaderRouteEntry, ...] = ()
    if status.header_routes and canary is not None and not status.aborted:
        header_routes = tuple(
            HeaderRouteEntry(str(canary), tuple(route.match)) for route in status.header_routes
        )
    traffic = ctx.spec.traffic
    return AppTable(
        listen=ctx.spec.listen,
        revisions=tuple(revisions),
        override_header=traffic.override_header,
        load_balancer=traffic.load_balancer,
        failure_status=tuple(traffic.failure_status),
        override_cookie=traffic.override_cookie,
        sticky_header=traffic.sticky_header,
        sticky_cookie=traffic.sticky_cookie,
        header_routes=header_routes,
        a2a=a2a_routing(ctx.spec),
    )


def preview_routes(ctx: PassContext) -> AppTable | None:
    """A blue-green preview's own listener, while there is a preview to show."""
    status = ctx.status
    number = status.canary
    if number is None or status.aborted or status.stable is None:
        return None
    revision = ctx.revision(number)
    blue_green = revision.spec.strategy.blue_green
    if blue_green is None or blue_green.preview_listen is None:
        return None
    entry = revision_entry(
        number,
        revision.version,
        ["preview", "canary"],
        100,
        ctx.backend.addresses(ctx.app, number),
    )
    traffic = ctx.spec.traffic
    return AppTable(
        listen=blue_green.preview_listen,
        revisions=(entry,),
        failure_status=tuple(traffic.failure_status),  # the preview's requests are judged too
        a2a=a2a_routing(ctx.spec),
    )
