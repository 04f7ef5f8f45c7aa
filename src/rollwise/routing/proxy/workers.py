"""``--workers N``: N proxy processes sharing every listener through ``SO_REUSEPORT``.

One Python process runs on one core, so more throughput means more processes, as nginx does.
The kernel spreads new connections across the workers' sockets; each connection then stays
with its worker. The first process (the primary) owns the admin socket the controller talks
to. It starts the others with private admin sockets, forwards every routing table to them,
and adds up their counters, so the controller sees one proxy: a table is acknowledged with
the lowest generation a live worker runs, and ``/stats``, ``/routes`` and ``/metrics`` are sums.

Each worker keeps its own replica health and connection pools (HAProxy's ``nbproc`` did the
same). A worker that dies is started again and given the current table before it opens a
listener; the other workers keep serving meanwhile. A worker whose primary is gone drains and
exits, so no orphan keeps a port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import httptools

__all__ = ["WorkerPool", "admin_call", "merge"]

START_TIMEOUT_S = 10.0
RESPAWN_DELAY_S = 0.5


def merge(a: Any, b: Any) -> Any:
    """Add two JSON counter documents: numbers sum, booleans or, mappings merge key by key,
    lists of the same length (histogram buckets) element by element."""
    if isinstance(a, bool) and isinstance(b, bool):
        return a or b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a + b
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [merge(x, y) for x, y in zip(a, b, strict=True)]
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = merge(out[key], value) if key in out else value
        return out
    return a


class _Reply:
    """Collects one HTTP response from httptools callbacks."""

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.done = False

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


async def admin_call(
    socket_path: str, method: str, url: str, body: bytes = b"", timeout_s: float = 5.0
) -> tuple[int, Any]:
    """One request on a worker's admin socket; returns the status and the decoded JSON."""
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_unix_connection(socket_path)
        try:
            writer.write(
                b"%s %s HTTP/1.1\r\nhost: worker\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n%s" % (method.encode(), url.encode(), len(body), body)
            )
            reply = _Reply()
            parser = httptools.HttpResponseParser(reply)
            while not reply.done:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError(f"worker admin {socket_path} closed mid-answer")
                parser.feed_data(data)
            return parser.get_status_code(), json.loads(b"".join(reply.body))
        finally:
            writer.close()


class WorkerPool:
    """The primary's view of the other workers: processes, admin sockets, fan-out."""

    def __init__(self, count: int, admin_socket: str, argv: list[str]) -> None:
        self.paths = [f"{admin_socket}.w{i}" for i in range(1, count)]
        self.argv = argv
        self.procs: list[asyncio.subprocess.Process | None] = [None] * len(self.paths)
        self.watchers: list[asyncio.Task[None]] = []
        self.closing = False
        self.restarts = 0
        self.current_table: Callable[[], dict[str, Any]] = lambda: {"generation": 0, "apps": {}}

    async def start(self, current_table: Callable[[], dict[str, Any]]) -> None:
        self.current_table = current_table
        await asyncio.gather(*(self._spawn(i) for i in range(len(self.paths))))
        loop = asyncio.get_running_loop()
        self.watchers = [loop.create_task(self._watch(i)) for i in range(len(self.paths))]

    async def _spawn(self, i: int) -> None:
        path = self.paths[i]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        argv = [
            sys.executable,
            "-m",
            "rollwise.routing.proxy",
            *self.argv,
            "--admin-socket",
            path,
            "--parent-pid",
            str(os.getpid()),
        ]
        self.procs[i] = await asyncio.create_subprocess_exec(*argv)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while True:
            try:
                await admin_call(path, "GET", "/healthz")
                break
            except (OSError, ConnectionError, TimeoutError):
                if loop.time() > deadline:
                    with contextlib.suppress(ProcessLookupError):
                        self.procs[i].kill()  # type: ignore[union-attr]
                    raise RuntimeError(f"proxy worker {i + 1} did not start") from None
                await asyncio.sleep(0.05)
        table = self.current_table()
        if table["apps"]:
            await admin_call(path, "PUT", "/routes", json.dumps(table).encode())

    async def _watch(self, i: int) -> None:
        while not self.closing:
            proc = self.procs[i]
            if proc is not None:
                code = await proc.wait()
                if self.closing:
                    return
                print(f"proxy worker {i + 1} exited with {code}; starting it again", flush=True)
                self.restarts += 1
            await asyncio.sleep(RESPAWN_DELAY_S)
            try:
                await self._spawn(i)
            except (OSError, RuntimeError) as exc:
                print(f"proxy worker {i + 1}: {exc}", flush=True)

    async def call(self, method: str, url: str, body: bytes = b"") -> list[tuple[int, Any]]:
        """The same request on every live worker; unreachable workers are left out."""
        results = await asyncio.gather(
            *(admin_call(path, method, url, body) for path in self.paths), return_exceptions=True
        )
        return [r for r in results if not isinstance(r, BaseException)]

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p is not None and p.returncode is None]

    async def close(self, grace_s: float) -> None:
        self.closing = True
        for task in self.watchers:
            task.cancel()
        procs = [p for p in self.procs if p is not None and p.returncode is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(grace_s + 2.0):
                await asyncio.gather(*(p.wait() for p in procs))
        except TimeoutError:
            for proc in procs:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        for path in self.paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
