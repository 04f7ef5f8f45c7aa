"""Routing tables: what each app's status means for the proxy, and pushing it once changed.

The controller owns the generation number. It is written to the store before a push, so that
a restarted controller never reuses one; on start it continues from the higher of the stored
and the applied generation (what the proxy reports), as Argo's VerifyWeight reads back.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rollwise.backends.local import LocalBackend
from rollwise.controller.dataplane import DataPlane
from rollwise.controller.status import RolloutStatus
from rollwise.spec import RolloutSpec
from rollwise.store import Store

__all__ = ["RouteSync", "app_section"]

LISTEN_RETRY_S = 5.0


def app_section(
    app: str,
    spec: RolloutSpec,
    status: RolloutStatus,
    versions: dict[int, str],
    backend: LocalBackend,
) -> dict[str, Any]:
    """One app's part of the table: weighted revisions with their ready replicas; warm ones
    (weight 0, ready for an instant undo); retiring ones whose replicas are draining (no new
    requests, in-flight ones finish); the canary's header routes."""
    revisions: list[dict[str, Any]] = []
    for number, weight in sorted(status.weights.items()):
        labels = []
        if number == status.stable:
            labels.append("stable")
        if number == status.canary:
            labels.append("canary")
        revisions.append(
            {
                "name": str(number),
                "version": versions.get(number, ""),
                "labels": labels,
                "weight": weight,
                "replicas": [{"address": a} for a in backend.ready_addresses(app, number)],
            }
        )
    listed = set(status.weights)
    canary = status.canary
    if canary is not None and canary not in listed and not status.aborted:
        listed.add(canary)  # weight 0 until a setWeight, but header routes may reach it
        revisions.append(
            {
                "name": str(canary),
                "version": versions.get(canary, ""),
                "labels": ["canary"],
                "weight": 0,
                "replicas": [{"address": a} for a in backend.ready_addresses(app, canary)],
            }
        )
    for warm in status.warm:
        if warm.revision in listed:
            continue
        listed.add(warm.revision)
        revisions.append(
            {
                "name": str(warm.revision),
                "version": versions.get(warm.revision, ""),
                "labels": [],
                "weight": 0,
                "replicas": [{"address": a} for a in backend.ready_addresses(app, warm.revision)],
            }
        )
    for retiring in status.retiring:
        if retiring.revision in listed:
            continue
        revisions.append(
            {
                "name": str(retiring.revision),
                "version": versions.get(retiring.revision, ""),
                "labels": [],
                "weight": 0,
                "replicas": [
                    {"address": a, "draining": True}
                    for a in backend.addresses(app, retiring.revision)
                ],
            }
        )
    traffic = spec.traffic
    section: dict[str, Any] = {
        "listen": spec.listen,
        "revisions": revisions,
        "overrideHeader": traffic.override_header,
        "loadBalancer": traffic.load_balancer,
        "failureStatus": list(traffic.failure_status),
    }
    optional = {
        "overrideCookie": traffic.override_cookie,
        "stickyHeader": traffic.sticky_header,
        "stickyCookie": traffic.sticky_cookie,
    }
    section.update({k: v for k, v in optional.items() if v})
    if status.header_routes and status.canary is not None and not status.aborted:
        section["headerRoutes"] = [
            {
                "revision": str(status.canary),
                "match": [{"headerName": n, "headerValue": v} for n, v in route.match],
            }
            for route in status.header_routes
        ]
    return section


class RouteSync:
    """Holds each app's desired section and pushes the whole table when any changes."""

    def __init__(self, store: Store, dataplane: DataPlane) -> None:
        self.store = store
        self.dataplane = dataplane
        self.sections: dict[str, dict[str, Any]] = {}
        self.generation = int(self.store.get_kv("generation") or 0)
        self._lock = asyncio.Lock()
        self._listen_retry = 0.0

    async def resume(self) -> dict[str, Any]:
        """Read back what the proxy runs and continue numbering after it."""
        applied = await self.dataplane.routes()
        self.generation = max(self.generation, int(applied["generation"]))
        table = applied.get("table") or {}
        self.sections = dict(table.get("apps", {}))
        self.dataplane.applied = table if table.get("apps") else None
        return applied

    async def update(self, app: str, section: dict[str, Any] | None) -> bool:
        """Set an app's section (``None`` removes it); push if the table changed."""
        async with self._lock:
            # A new mapping each time: the applied table must never alias the desired one.
            sections = {k: v for k, v in self.sections.items() if k != app}
            if section is not None:
                sections[app] = section
            self.sections = sections
            applied = self.dataplane.applied
            unchanged = applied is not None and applied.get("apps") == self.sections
            if unchanged and not self._retry_listen(app):
                return False
            await self._push()
            return True

    async def repush(self) -> None:
        """After a proxy restart: the new process has no table at all."""
        async with self._lock:
            await self._push()

    def _retry_listen(self, app: str) -> bool:
        """Push again now and then while the proxy could not open ``app``'s listener."""
        if app not in self.dataplane.listen_errors:
            return False
        now = time.monotonic()
        if now - self._listen_retry < LISTEN_RETRY_S:
            return False
        self._listen_retry = now
        return True

    async def _push(self) -> None:
        self.generation += 1
        self.store.put_kv("generation", self.generation)
        await self.dataplane.push({"generation": self.generation, "apps": self.sections})
