"""The controller's side of the built-in proxy: start or adopt its process, talk to its
admin socket.

The proxy is a separate process in its own session: it keeps serving with the last table when
the controller dies, and a restarted controller adopts it (pid and start time must match and
its admin socket must answer) instead of starting a second one. Its exit reaches the
controller through a pidfd, so a dead proxy is restarted at once, with no polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import structlog

from rollwise.backends.process import ManagedProcess
from rollwise.errors import DataPlaneError, RouteVerifyError
from rollwise.routing.handover import ListenerKeeper, fetch_listeners, handover_path
from rollwise.routing.options import ProxyOptions
from rollwise.routing.table import Table
from rollwise.store import Store

__all__ = ["DataPlane"]

log = structlog.get_logger("rollwise.dataplane")


class DataPlane:
    def __init__(
        self,
        store: Store,
        state_dir: Path,
        options: ProxyOptions | None = None,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.state_dir = state_dir
        self.socket = state_dir / "proxy.sock"
        self.options = options or ProxyOptions()
        self.on_exit = on_exit or (lambda: None)
        self.process: ManagedProcess | None = None
        self.restarts = 0
        self._client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(self.socket)),
            base_url="http://proxy",
            timeout=5.0,
        )
        self.applied: Table | None = None
        self.listen_errors: dict[str, str] = {}
        # the public listeners, kept here so they outlive any proxy (routing/handover.py)
        self.keeper = ListenerKeeper(state_dir / "listeners.sock")

    async def aclose(self) -> None:
        if self.process is not None:
            self.process.unwatch()
        await self._client.aclose()
        self.keeper.close()

    async def _healthy(self) -> bool:
        try:
            return (await self._client.get("/healthz", timeout=1.0)).status_code == 200
        except httpx.HTTPError:
            return False

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    async def ensure(self) -> bool:
        """Make sure a proxy runs; ``True`` when a new one was started (it has no routes)."""
        if self.alive():
            return False
        self.keeper.start()
        if self.process is None:
            info = self.store.get_kv("proxy")
            if info:
                proc = ManagedProcess.adopt(int(info["pid"]), float(info["start_time"]))
                if proc is not None and await self._healthy():
                    self.process = proc
                    self._watch(proc)
                    await self._take_back_listeners()
                    log.info("proxy adopted", pid=proc.pid)
                    return False
                if proc is not None:
                    await proc.stop(2.0)
        else:
            self.process.unwatch()
            self.restarts += 1
            log.warning("proxy died; restarting", restarts=self.restarts)
        argv = [sys.executable, "-m", "rollwise.routing.proxy", "--admin-socket", str(self.socket)]
        argv += ["--listeners", str(self.keeper.path), *self.options.argv()]
        self.process = ManagedProcess.start(
            argv, env=dict(os.environ), cwd=None, log_path=self.state_dir / "logs" / "proxy.log"
        )
        self.store.put_kv("proxy", {"pid": self.process.pid, "start_time": self.process.start_time})
        self.applied = None
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if await self._healthy():
                log.info("proxy started", pid=self.process.pid)
                self._watch(self.process)
                return True
            if not self.process.alive():
                break
            await asyncio.sleep(0.05)
        raise DataPlaneError(
            f"the proxy did not start; see {self.state_dir / 'logs' / 'proxy.log'}"
        )

    async def _take_back_listeners(self) -> None:
        """The listeners a proxy that outlived its controller holds: kept here again, so
        that its next restart refuses no connection either."""
        try:
            got, _ = await asyncio.to_thread(fetch_listeners, handover_path(self.socket), ["*"])
        except OSError as exc:  # an older proxy: it binds its own, as before
            log.warning("the proxy's listeners could not be taken back", error=str(exc))
            return
        self.keeper.adopt(got)

    def _watch(self, proc: ManagedProcess) -> None:
        proc.watch(self.on_exit)  # without a pidfd, the router's loop polls ``alive``

    async def _get(self, path: str, **params: Any) -> dict[str, Any]:
        try:
            resp = await self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise DataPlaneError(f"proxy admin channel {self.socket}: {exc}") from None
        if resp.status_code == 404:
            return {}  # a proxy started by an older rollwise
        return dict(resp.json())

    async def routes(self) -> dict[str, Any]:
        """What the proxy runs: generation, table, replicas, listeners, listen errors."""
        return await self._get("/routes")

    async def replicas(self) -> dict[str, Any]:
        """Per replica address: ``in_flight`` and ``ejected``, all workers added up."""
        return await self._get("/replicas")

    async def stats(self, since: int, apps: list[str] | None = None) -> dict[str, Any]:
        """Per-revision, per-second counters since ``since`` (unix seconds), all workers; of
        the proxy apps named (all without)."""
        params: dict[str, Any] = {"since": since}
        if apps is not None:
            params["app"] = apps
        return await self._get("/stats", **params)

    async def push(self, table: Table) -> None:
        """Apply a whole table and verify that the proxy runs exactly this generation."""
        await self._send("PUT", table.to_json(), table.generation)
        self.applied = table
        self.keeper.retain({app.listen for app in table.apps.values()})

    async def change(self, table: Table, changed: list[str]) -> None:
        """``table`` differs from the applied one in the ``changed`` apps only: send those
        (a proxy that cannot take a part gets the whole table)."""
        if self.applied is None:
            await self.push(table)
            return
        apps = {name: (a.to_json() if (a := table.apps.get(name)) else None) for name in changed}
        body = {"generation": table.generation, "apps": apps}
        if not await self._send("PATCH", body, table.generation):
            await self.push(table)
            return
        self.applied = table
        self.keeper.retain({app.listen for app in table.apps.values()})

    async def _send(self, method: str, body: dict[str, Any], generation: int) -> bool:
        """``False`` when the proxy does not know ``method`` (an older one)."""
        try:
            resp = await self._client.request(method, "/routes", json=body)
        except httpx.HTTPError as exc:
            raise DataPlaneError(f"cannot push routes to the proxy: {exc}") from None
        if resp.status_code == 404 and method == "PATCH":
            return False
        if resp.status_code != 200:
            raise DataPlaneError(f"the proxy refused the routes: {resp.json().get('error')}")
        answer = resp.json()
        applied = int(answer["generation"])
        self.listen_errors = dict(answer.get("listen_errors") or {})
        if applied != generation:
            raise RouteVerifyError(f"the proxy applied generation {applied}, not {generation}")
        return True

    async def stop(self) -> None:
        if self.process is not None:
            self.process.unwatch()
            await self.process.stop(10.0)
            self.process = None
        self.store.put_kv("proxy", None)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
