"""The controller's side of the data plane: start or adopt the proxy process, push routes.

The proxy is a separate process in its own session: it keeps serving with the last table when
the controller dies, and a restarted controller adopts it (pid and start time must match and
its admin socket must answer) instead of starting a second one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import structlog

from rollwise.backends.process import ManagedProcess
from rollwise.errors import DataPlaneError, RouteVerifyError
from rollwise.store import Store

__all__ = ["DataPlane", "ProxyOptions"]

log = structlog.get_logger("rollwise.dataplane")


@dataclass(frozen=True, slots=True)
class ProxyOptions:
    """How the controller starts the proxy (``rollwise up --proxy-workers --record``)."""

    workers: int = 1
    record: str | None = None

    def argv(self) -> list[str]:
        argv = ["--workers", str(self.workers)]
        if self.record:
            argv += ["--record", self.record]
        return argv


class DataPlane:
    def __init__(self, store: Store, state_dir: Path, options: ProxyOptions | None = None) -> None:
        self.store = store
        self.state_dir = state_dir
        self.socket = state_dir / "proxy.sock"
        self.options = options or ProxyOptions()
        self.process: ManagedProcess | None = None
        self.restarts = 0
        self._client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(self.socket)),
            base_url="http://proxy",
            timeout=5.0,
        )
        self.applied: dict[str, Any] | None = None
        self.listen_errors: dict[str, str] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _healthy(self) -> bool:
        try:
            return (await self._client.get("/healthz", timeout=1.0)).status_code == 200
        except httpx.HTTPError:
            return False

    async def ensure(self) -> bool:
        """Make sure a proxy runs; ``True`` when a new one was started (it has no routes)."""
        if self.process is not None and self.process.alive():
            return False
        if self.process is None:
            info = self.store.get_kv("proxy")
            if info:
                proc = ManagedProcess.adopt(int(info["pid"]), float(info["start_time"]))
                if proc is not None and await self._healthy():
                    self.process = proc
                    log.info("proxy adopted", pid=proc.pid)
                    return False
                if proc is not None:
                    await proc.stop(2.0)
        else:
            self.restarts += 1
            log.warning("proxy died; restarting", restarts=self.restarts)
        argv = [sys.executable, "-m", "rollwise.routing.proxy", "--admin-socket", str(self.socket)]
        argv += self.options.argv()
        self.process = ManagedProcess.start(
            argv, env=dict(os.environ), cwd=None, log_path=self.state_dir / "logs" / "proxy.log"
        )
        self.store.put_kv("proxy", {"pid": self.process.pid, "start_time": self.process.start_time})
        self.applied = None
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if await self._healthy():
                log.info("proxy started", pid=self.process.pid)
                return True
            if not self.process.alive():
                break
            await asyncio.sleep(0.05)
        raise DataPlaneError(
            f"the proxy did not start; see {self.state_dir / 'logs' / 'proxy.log'}"
        )

    async def routes(self) -> dict[str, Any]:
        try:
            resp = await self._client.get("/routes")
        except httpx.HTTPError as exc:
            raise DataPlaneError(f"proxy admin channel {self.socket}: {exc}") from None
        return dict(resp.json())

    async def stats(self, since: int) -> dict[str, Any]:
        """Per-revision, per-second counters since ``since`` (unix seconds), all workers."""
        try:
            resp = await self._client.get("/stats", params={"since": since})
        except httpx.HTTPError as exc:
            raise DataPlaneError(f"proxy admin channel {self.socket}: {exc}") from None
        return dict(resp.json())

    async def push(self, table: dict[str, Any]) -> int:
        """Apply a whole table and verify that the proxy runs exactly this generation."""
        try:
            resp = await self._client.put("/routes", json=table)
        except httpx.HTTPError as exc:
            raise DataPlaneError(f"cannot push routes to the proxy: {exc}") from None
        if resp.status_code != 200:
            raise DataPlaneError(f"the proxy refused the routes: {resp.json().get('error')}")
        answer = resp.json()
        applied = int(answer["generation"])
        self.listen_errors = dict(answer.get("listen_errors") or {})
        if applied != table["generation"]:
            raise RouteVerifyError(
                f"the proxy applied generation {applied}, not {table['generation']}"
            )
        self.applied = table
        return applied

    async def stop(self) -> None:
        if self.process is not None:
            await self.process.stop(10.0)
            self.process = None
        self.store.put_kv("proxy", None)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
