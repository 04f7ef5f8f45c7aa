"""The built-in router: rollwise's own proxy as the data plane.

Holds every app's desired ``AppTable`` and pushes the whole table when any changes, under a
generation number the controller owns. The number is written to the store before a push, so
that a restarted controller never reuses one; on start it continues from the higher of the
stored and the applied generation (what the proxy reports), as Argo's VerifyWeight reads
back. A dead proxy is restarted at once (its pidfd) and given the table again; a listener that
could not be opened (port taken) is tried again every ``LISTEN_RETRY_S``; the proxy's passive
health (ejections) is read every ``EJECTIONS_S`` and reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from rollwise.routing.base import ReplicaTraffic, ReplicaWatcher
from rollwise.routing.dataplane import DataPlane
from rollwise.routing.options import ProxyOptions
from rollwise.routing.table import AppTable, Table
from rollwise.store import Store

__all__ = ["ProxyRouter"]

log = structlog.get_logger("rollwise.dataplane")

LISTEN_RETRY_S = 5.0
EJECTIONS_S = 1.0


class ProxyRouter:
    def __init__(
        self,
        store: Store,
        state_dir: Path,
        options: ProxyOptions | None = None,
        on_ejection: ReplicaWatcher | None = None,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self._wake = asyncio.Event()
        self.dataplane = DataPlane(store, state_dir, options, on_exit=self._wake.set)
        self.on_ejection = on_ejection or (lambda address, ejected: None)
        self.on_restart = on_restart or (lambda: None)
        self.sections: dict[str, AppTable] = {}
        self._generation = int(store.get_kv("generation") or 0)
        self._lock = asyncio.Lock()
        self._ejected: set[str] = set()

    @property
    def generation(self) -> int:
        return self._generation

    async def start(self) -> bool:
        fresh = await self.dataplane.ensure()
        applied = await self.dataplane.routes()
        self._generation = max(self._generation, int(applied.get("generation", 0)))
        table = Table.from_json(applied.get("table") or {"generation": 0, "apps": {}})
        self.sections = dict(table.apps)
        self.dataplane.applied = table if table.apps else None
        if self.dataplane.outdated:  # another build's proxy, or other options: replace it
            async with self._lock:
                await self.dataplane.replace(self._next_table())
        return fresh

    async def set_routes(self, app: str, routes: AppTable | None) -> bool:
        async with self._lock:
            current = self.sections.get(app)
            if current == routes and (routes is None or self._applied(app) == routes):
                return False
            if routes is None:
                self.sections.pop(app, None)
            else:
                self.sections[app] = routes
            await self._push([app])
            return True

    def _applied(self, app: str) -> AppTable | None:
        applied = self.dataplane.applied
        return applied.apps.get(app) if applied is not None else None

    def problem(self, app: str) -> str:
        reason = self.dataplane.listen_errors.get(app)
        return f"the proxy cannot serve this app: {reason}" if reason else ""

    async def applied(self) -> Table:
        answer = await self.dataplane.routes()
        return Table.from_json(answer.get("table") or {"generation": 0, "apps": {}})

    async def replicas(self) -> dict[str, ReplicaTraffic]:
        answer = await self.dataplane.replicas()
        return {
            address: ReplicaTraffic(
                int(r.get("in_flight", 0)),
                bool(r.get("ejected", False)),
                int(r.get("conversations", 0)),
            )
            for address, r in answer.items()
        }

    async def run(self) -> None:
        """Restart a dead proxy and re-apply; retry listeners; report ejections."""
        last_retry = last_ejections = time.monotonic()
        while True:
            self._wake.clear()
            try:
                if not self.dataplane.alive():
                    await self._restart()
                now = time.monotonic()
                if self.dataplane.listen_errors and now - last_retry >= LISTEN_RETRY_S:
                    last_retry = now
                    async with self._lock:
                        await self._push()
                if now - last_ejections >= EJECTIONS_S:
                    last_ejections = now
                    self._report(await self.replicas())
            except Exception:
                log.exception("data plane supervision failed; retrying")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(EJECTIONS_S):
                    await self._wake.wait()

    async def _restart(self) -> None:
        if await self.dataplane.ensure():
            async with self._lock:
                await self._push()
            self.on_restart()

    def _report(self, replicas: dict[str, ReplicaTraffic]) -> None:
        ejected = {a for a, r in replicas.items() if r.ejected}
        for address in ejected ^ self._ejected:
            self.on_ejection(address, address in ejected)
        self._ejected = ejected

    async def _push(self, changed: list[str] | None = None) -> None:
        """The table at a new generation: whole, or the ``changed`` apps' part of it."""
        table = self._next_table()
        if changed is None:
            await self.dataplane.push(table)
        else:
            await self.dataplane.change(table, changed)

    def _next_table(self) -> Table:
        """The table at a new generation, written to the store before it is sent."""
        self._generation += 1
        self.store.put_kv("generation", self._generation)
        return Table(self._generation, dict(self.sections))

    async def stop(self) -> None:
        await self.dataplane.stop()

    async def aclose(self) -> None:
        await self.dataplane.aclose()
