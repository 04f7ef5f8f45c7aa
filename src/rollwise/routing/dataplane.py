"""The controller's side of the built-in proxy: start or adopt its process, talk to its
admin socket.

The proxy is a separate process in its own session: it keeps serving with the last table when
the controller dies, and a restarted controller adopts it (pid and start time must match and
its admin socket must answer) instead of starting a second one. Its exit reaches the
controller through a pidfd, so a dead proxy is restarted at once, with no polling.

A proxy adopted from another build of rollwise, or started with other options (``rollwise up
--proxy-workers``, ``--record``, ``--trace-sample``), is *replaced*, HAProxy's seamless
reload: a proxy of this build starts beside it on the same listening sockets, takes the
table, takes over the admin socket's name, and the old one drains (it stops accepting,
answers what it has with ``connection: close``, then exits). Both accept meanwhile, so no
connection is refused and no request is cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import structlog

from rollwise._version import __version__
from rollwise.backends.process import ManagedProcess
from rollwise.errors import DataPlaneError, RouteVerifyError
from rollwise.routing.handover import ListenerKeeper, fetch_listeners, handover_path
from rollwise.routing.options import ProxyOptions
from rollwise.routing.table import Table
from rollwise.store import Store

__all__ = ["DataPlane", "build_id"]

log = structlog.get_logger("rollwise.dataplane")

DRAIN_S = 10.0  # the proxy's own --grace: in-flight requests get this long to finish


def build_id() -> str:
    """This rollwise's data plane: its version and the source of ``rollwise.routing``
    (a proxy started from other code is replaced, even at the same version number)."""
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


ADMIN_TIMEOUT_S = 5.0


def _admin_client(socket: Path) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(uds=str(socket))
    return httpx.AsyncClient(transport=transport, base_url="http://proxy", timeout=ADMIN_TIMEOUT_S)


def _why(exc: httpx.HTTPError) -> str:
    """What went wrong on the admin channel, never empty (httpx's timeouts say nothing)."""
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {ADMIN_TIMEOUT_S:g} s ({type(exc).__name__})"
    return str(exc) or type(exc).__name__


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
        self._client = _admin_client(self.socket)
        self.identity = {"build": build_id(), "argv": self.options.argv()}
        self.outdated = False  # the adopted proxy is another build's, or has other options
        self.applied: Table | None = None
        self.listen_errors: dict[str, str] = {}
        # the public listeners, kept here so they outlive any proxy (routing/handover.py)
        self.keeper = ListenerKeeper(state_dir / "listeners.sock")

    async def aclose(self) -> None:
        if self.process is not None:
            self.process.unwatch()
        await self._client.aclose()
        self.keeper.close()

    async def _healthy(self, client: httpx.AsyncClient | None = None) -> bool:
        try:
            answer = await (client or self._client).get("/healthz", timeout=1.0)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    async def ensure(self) -> bool:
        """Make sure a proxy runs; ``True`` when a new one was started (it has no routes)."""
        if self.alive():
            return False
        self.keeper.start()
        if self.process is None:
            await self._stop_unfinished_replacement()
            info = self.store.get_kv("proxy")
            if info:
                proc = ManagedProcess.adopt(int(info["pid"]), float(info["start_time"]))
                if proc is not None and await self._healthy():
                    self.process = proc
                    self._watch(proc)
                    await self._take_back_listeners()
                    mine = {k: info.get(k) for k in self.identity}
                    self.outdated = mine != self.identity
                    log.info("proxy adopted", pid=proc.pid, outdated=self.outdated)
                    return False
                if proc is not None:
                    await proc.stop(2.0)
        else:
            self.process.unwatch()
            self.restarts += 1
            log.warning("proxy died; restarting", restarts=self.restarts)
        self.process = await self._spawn(self.socket, self._client)
        self._watch(self.process)
        self.applied = None
        self.outdated = False
        return True

    async def _spawn(self, socket: Path, client: httpx.AsyncClient) -> ManagedProcess:
        """A proxy of this build on admin ``socket``, once it answers there (recorded in
        the store at once when ``socket`` is the proxy's, so that no crash orphans it)."""
        argv = [sys.executable, "-m", "rollwise.routing.proxy", "--admin-socket", str(socket)]
        argv += ["--listeners", str(self.keeper.path), "--grace", repr(DRAIN_S)]
        argv += ["--conversations", str(self.state_dir / "conversations")]
        argv += self.options.argv()
        proc = ManagedProcess.start(
            argv, env=dict(os.environ), cwd=None, log_path=self.state_dir / "logs" / "proxy.log"
        )
        self._record(proc, "proxy" if socket == self.socket else "proxy_next")
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if await self._healthy(client):
                log.info("proxy started", pid=proc.pid)
                return proc
            if not proc.alive():
                break
            await asyncio.sleep(0.05)
        await proc.stop(2.0)
        raise DataPlaneError(
            f"the proxy did not start; see {self.state_dir / 'logs' / 'proxy.log'}"
        )

    async def replace(self, table: Table) -> None:
        """Start a proxy of this build beside the running one, give it ``table``, move the
        admin socket's name to it, then let the old one drain and exit."""
        old = self.process
        # a name of its own (its workers' sockets are named after it), short: a unix socket's
        # path holds 107 bytes
        following = self.socket.with_name(f"{self.socket.name}.{int(time.time()) % 100000}")
        async with _admin_client(following) as client:
            new = await self._spawn(following, client)
            try:
                await self._send("PUT", table.to_json(), table.generation, client)
            except DataPlaneError:
                await new.stop(2.0)
                raise
        os.replace(handover_path(following), handover_path(self.socket))
        os.replace(following, self.socket)
        self._record(new)
        self.store.put_kv("proxy_next", None)
        await self._client.aclose()  # its pooled connections reach the old proxy
        self._client = _admin_client(self.socket)
        self.process, self.applied, self.outdated = new, table, False
        self._watch(new)
        if old is not None:
            old.unwatch()
            log.info("proxy replaced; the old one drains", old=old.pid, new=new.pid)
            await old.stop(DRAIN_S + 5.0)

    def _record(self, proc: ManagedProcess, key: str = "proxy") -> None:
        """The proxy (or the one replacing it) in the store, before anything waits on it:
        a controller killed meanwhile leaves no proxy that the next one does not know."""
        record = {"pid": proc.pid, "start_time": proc.start_time, **self.identity}
        self.store.put_kv(key, record)

    async def _stop_unfinished_replacement(self) -> None:
        """A proxy started to replace another by a controller that died before the switch:
        it never took the admin socket's name; stop it."""
        info = self.store.get_kv("proxy_next")
        if info:
            proc = ManagedProcess.adopt(int(info["pid"]), float(info["start_time"]))
            if proc is not None:
                log.info("stopping a proxy whose replacement did not finish", pid=proc.pid)
                await proc.stop(2.0)
            self.store.put_kv("proxy_next", None)

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
            raise DataPlaneError(f"proxy admin channel {self.socket}: {_why(exc)}") from None
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

    async def _send(
        self,
        method: str,
        body: dict[str, Any],
        generation: int,
        client: httpx.AsyncClient | None = None,
    ) -> bool:
        """``False`` when the proxy does not know ``method`` (an older one)."""
        try:
            resp = await (client or self._client).request(method, "/routes", json=body)
        except httpx.HTTPError as exc:
            raise DataPlaneError(f"cannot push routes to the proxy: {_why(exc)}") from None
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
