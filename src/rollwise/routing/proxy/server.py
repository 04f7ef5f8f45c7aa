"""The proxy process: public listeners per app, the routing table, and request bookkeeping.

The controller is a client of this process, never the other way round: the proxy serves
from its own table and keeps doing so when the controller is gone.

For an A2A app the proxy also reads what each exchange says and keeps conversations on
their replicas (``a2a.py``); a stream's latency is its first event's, its whole duration a
series of its own. What the admin channel reads of all this is in ``report.py``.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

from rollwise.routing.proxy.a2a import A2ASide, forget_quiet
from rollwise.routing.proxy.forward import (
    A2AState,
    ClientConnection,
    Exchange,
    UpstreamConnection,
    local_response,
)
from rollwise.routing.proxy.headers import CONNECTION_OPTIONS, HOP_BY_HOP, STATUS_LINES
from rollwise.routing.proxy.limits import Limits
from rollwise.routing.proxy.listeners import acquire, held
from rollwise.routing.proxy.record import Recorder
from rollwise.routing.proxy.spans import SampledRequest, SpanSink
from rollwise.routing.proxy.stats import RETAIN_SECONDS, RevisionStats
from rollwise.routing.proxy.table import Replica, RevisionRoute, RoutingTable
from rollwise.routing.table import AppTable, Table

__all__ = ["ProxyServer"]

SWEEP_S = 0.25
IDLE_GRACE_S = 1.0  # an idle connection's last chance to carry a request when closing
FORGET_EVERY_S = 10.0  # quiet conversations leave the replicas' lists this often


class ProxyServer:
    """Everything one proxy worker holds: table, listeners, connections, counters."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        limits: Limits | None = None,
        record: Recorder | None = None,
        stats: bool = True,
        reuse_port: bool = False,
        spans: SpanSink | None = None,
        sources: tuple[Path, ...] = (),
        conversations: Path | None = None,
    ) -> None:
        self.loop = loop
        self.spans = spans
        self.a2a = A2ASide(conversations, (limits or Limits()).replay_bytes)
        # (app, revision) -> its version and counts, for a while after it left the table
        self.departed: dict[tuple[str, str], tuple[str, RevisionStats]] = {}
        self._forgotten = time.monotonic()
        # where listening sockets come from before binding one: the controller's keeper,
        # then (a worker) the primary's handover socket
        self.sources = sources
        self.listener_socks: dict[str, socket.socket] = {}
        self.limits = limits or Limits()
        self.stats_enabled = stats
        self.reuse_port = reuse_port
        self.table = RoutingTable.empty()
        self.table_json: dict[str, Any] = {"generation": 0, "apps": {}}
        self.listeners: dict[str, asyncio.Server] = {}
        self.listener_apps: dict[str, str] = {}
        self.listen_errors: dict[str, str] = {}
        self.clients: set[ClientConnection] = set()
        self.rejected: dict[int, int] = {}
        self.ejections = 0
        self.retries = 0
        self.record = record
        self.started = time.time()
        self.closing = False
        # Coarse clocks, refreshed by the sweep: ejection back-offs need no finer grain.
        self.clock = time.monotonic()
        # per-second statistics in the controller's kind of time: a stepped clock is ignored
        self.wall_offset = time.time() - time.perf_counter()
        self._sweeper = loop.call_later(SWEEP_S, self._sweep)

    def _sweep(self) -> None:
        """Fire the timeouts that are due: header read, idle keep-alive, replica answer."""
        now = self.clock = time.monotonic()
        for client in list(self.clients):
            if client.deadline and now >= client.deadline:
                client.timed_out()
            elif client.pipeline:
                ex = client.pipeline[0]
                if ex.deadline and now >= ex.deadline:
                    self._upstream_timeout(ex)
        if now - self._forgotten >= FORGET_EVERY_S:
            self._forgotten = now
            forget_quiet(self.table, now)
            oldest = time.time() - RETAIN_SECONDS
            for key, (_, counts) in list(self.departed.items()):
                if not counts.since(int(oldest)):
                    del self.departed[key]
        self._sweeper = self.loop.call_later(SWEEP_S, self._sweep)

    # routing table

    async def apply(
        self, data: dict[str, Any], partial: bool = False
    ) -> tuple[int, dict[str, str]]:
        """Apply a table; open and close listeners to match. Atomic for requests.

        ``partial``: ``data["apps"]`` names only the apps that change (``null``: removed);
        the others keep their live routes as they are, so that one app's move costs the
        same with 1 app or 500.

        A listener that cannot be opened (its port is taken) does not stop the table: the
        other apps must keep moving. Its app is returned with the reason, and binding is
        tried again with every later table.
        """
        generation = int(data["generation"])
        if generation < self.table.generation:
            raise ValueError(
                f"generation {generation} is older than the applied {self.table.generation}"
            )
        if partial:
            changes = {str(k): v for k, v in data["apps"].items()}
            apps = {k: v for k, v in self.table_json["apps"].items() if k not in changes}
            apps.update({k: v for k, v in changes.items() if v is not None})
            data = {"generation": generation, "apps": apps}
            kept = {
                k: self.table.apps[k] for k in apps if k not in changes and k in self.table.apps
            }
            spec = Table(
                generation,
                {k: AppTable.from_json(v) for k, v in apps.items() if k not in kept},
            )
            table = RoutingTable.build(spec, self.table, kept)
        else:
            table = RoutingTable.build(Table.from_json(data), self.table)
        wanted = {app.listen: name for name, app in table.apps.items()}
        errors: dict[str, str] = {}
        for listen, name in wanted.items():
            server = self.listeners.get(listen)
            if server is not None and self.listener_apps.get(listen) == name:
                continue
            if server is not None:
                server.close()
                del self.listeners[listen]
                self.listener_socks.pop(listen, None)
            try:
                self.listeners[listen] = await self._listen(listen, name)
            except OSError as exc:
                errors[name] = exc.strerror or str(exc)
                continue
            self.listener_apps[listen] = name
        for listen in set(self.listeners) - set(wanted):
            self.listeners.pop(listen).close()
            self.listener_apps.pop(listen, None)
            self.listener_socks.pop(listen, None)
        self.a2a.attach(table)
        self._keep_departed(table)
        retired = self.table.replicas() - table.replicas()
        self.table = table
        self.table_json = data
        for rep in retired:
            rep.close_idle()
        self.listen_errors = errors
        return generation, errors

    def _keep_departed(self, table: RoutingTable) -> None:
        """The counts of revisions that leave the table are kept for the seconds the proxy
        keeps (``stats.RETAIN_SECONDS``): what they served stays readable after they stop."""
        staying = {(n, r.name) for n, app in table.apps.items() for r in app.revisions}
        for name, app in self.table.apps.items():
            for rev in app.revisions:
                key = (name, rev.name)
                if key not in staying and rev.stats.requests_total:
                    self.departed[key] = (rev.version, rev.stats)
        for key in staying:
            self.departed.pop(key, None)

    async def _listen(self, listen: str, app: str) -> asyncio.Server:
        sock = await acquire(self.loop, listen, app, self.sources, self.reuse_port)
        self.listener_socks[listen] = sock
        return await self.loop.create_server(
            lambda: ClientConnection(self, app), sock=sock, backlog=1024
        )

    def held_listeners(
        self, wanted: list[str]
    ) -> tuple[list[str], list[socket.socket], dict[str, str]]:
        """The listening sockets this proxy holds (``["*"]``: all), for the handover."""
        return held(self.listener_socks, wanted)

    # the request path

    def dispatch(self, ex: Exchange) -> None:
        """Pick revision and replica for a request whose head is complete, and send it."""
        routes = self.table.apps.get(ex.client.app)
        if routes is None:
            self._fail_local(ex, 503, "no routes for this listener yet")
            return
        ex.started = time.perf_counter()
        if ex.a2a is not None and self.a2a.route(ex, ex.a2a, routes, self.clock):
            self._send(ex)
            return
        rev = routes.choose(ex.forced, ex.sticky)
        if rev is None:
            self._fail_local(ex, 503, f"app {routes.app} has no revision to serve")
            return
        ex.revision = rev
        self._send(ex)

    def _send(self, ex: Exchange) -> None:
        now = self.clock
        rev = ex.revision
        assert rev is not None
        a2a = ex.a2a
        pin = a2a.pin if a2a is not None else None
        rep = pin if pin is not None and pin not in ex.tried else rev.pick(now, ex.tried)
        if rep is None:
            routes = self.table.apps.get(ex.client.app)
            fallback = routes.fallback if routes is not None else None
            if fallback is not None and fallback is not rev:
                ex.revision = fallback
                rep = fallback.pick(now, ex.tried)
        if rep is None:
            self._fail_local(ex, 502, "no replica could take the request")
            return
        ex.replica = rep
        ex.tried += (rep,)
        rep.in_flight += 1
        idle = rep.idle
        while idle:
            conn: UpstreamConnection = idle.pop()
            if conn.transport is not None:  # a closed one leaves the pool in connection_lost
                ex.deadline = time.monotonic() + self.limits.upstream_timeout_s
                conn.start(ex)
                return
        task = self.loop.create_task(self._connect(ex, rep))
        task.add_done_callback(_consume)

    async def _connect(self, ex: Exchange, rep: Replica) -> None:
        try:
            async with asyncio.timeout(self.limits.connect_timeout_s):
                _, conn = await self.loop.create_connection(
                    lambda: UpstreamConnection(self, rep), rep.host, rep.port
                )
        except (OSError, TimeoutError):
            rep.in_flight -= 1
            if rep.failed(self.clock):
                self.ejections += 1
            if ex.client.transport is None:
                return
            self.retries += 1
            self._send(ex)
            return
        if ex.client.transport is None:
            rep.in_flight -= 1
            conn.close()
            return
        ex.deadline = time.monotonic() + self.limits.upstream_timeout_s
        conn.start(ex)

    def _upstream_timeout(self, ex: Exchange) -> None:
        ex.deadline = 0.0
        conn = ex.upstream
        if conn is not None and not ex.response_started:
            conn.exchange = None
            conn.close()
            self.fail_exchange(ex, 504, "the replica did not answer in time")

    def response_head(self, ex: Exchange, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """Build the client's response head; it leaves with the first body bytes."""
        ex.deadline = 0.0
        ex.status = status
        ex.response_started = True
        rev = ex.revision
        assert rev is not None
        out = [STATUS_LINES.get(status) or b"HTTP/1.1 %d Status\r\n" % status]
        length = False
        connection = b""
        for name, value in headers:
            if name in HOP_BY_HOP:
                if name == b"connection":
                    connection = value
            else:
                if name == b"content-length":
                    length = True
                out += (name, b": ", value, b"\r\n")
        if connection:
            tokens = {t.strip().lower() for t in connection.split(b",")} - CONNECTION_OPTIONS
            if tokens:  # rare: Connection names further hop-by-hop headers to drop
                out[1:] = [
                    b"%s: %s\r\n" % (n, v)
                    for n, v in headers
                    if n not in HOP_BY_HOP and n not in tokens
                ]
        out.append(rev.header_bytes)
        if not length and ex.method != b"HEAD" and status not in {204, 304}:
            ex.response_chunked = True
            out.append(b"transfer-encoding: chunked\r\n")
        if not ex.keep_alive or self.closing:  # closing: clients move to the next proxy
            ex.keep_alive = False
            out.append(b"connection: close\r\n")
        out.append(b"\r\n")
        ex.pending = b"".join(out)  # written with the first body bytes, see UpstreamConnection

    def response_end(self, ex: Exchange, conn: UpstreamConnection) -> None:
        ex.complete = True
        client = ex.client
        if client.transport is not None:
            if ex.response_chunked:
                client.transport.write(ex.pending + b"0\r\n\r\n")
            elif ex.pending:
                client.transport.write(ex.pending)
        ex.pending = b""
        rep = ex.replica
        assert rep is not None
        rep.in_flight -= 1
        rep.served += 1
        status = ex.status
        if status >= 500:  # passive health: 5xx, whatever the app counts as failed
            if rep.failed(self.clock):
                self.ejections += 1
        elif rep.failures_in_row or rep.ejections:
            rep.succeeded()
        transport = conn.transport
        if (
            conn.keep_alive
            and ex.body_done
            and not rep.draining
            and transport is not None
            and not transport.is_closing()
        ):
            rep.idle.append(conn)
        else:
            conn.close()
        rev = ex.revision
        if ex.a2a is None:
            self._record(ex, status, rev is not None and rev.failing[status])
        else:
            self._judge_a2a(ex, ex.a2a, rev, status)
        client.exchange_done(ex)

    def _judge_a2a(
        self, ex: Exchange, a2a: A2AState, rev: RevisionRoute | None, status: int
    ) -> None:
        """Record an A2A exchange: failed by its status or by its outcome."""
        by_outcome, said = self.a2a.judge(ex, a2a, status, self.clock)
        self._record(ex, status, by_outcome or (rev is not None and rev.failing[status]), said)

    def upstream_lost(self, ex: Exchange, conn: UpstreamConnection, exc: Exception | None) -> None:
        """A replica closed its connection before the response ended."""
        ex.deadline = 0.0
        rep = ex.replica
        if not ex.response_started and not conn.got_bytes and ex.replay_ok:
            if rep is not None:
                rep.in_flight -= 1
                if rep.failed(self.clock):
                    self.ejections += 1
            ex.upstream = None
            if ex.client.transport is not None:
                self.retries += 1
                self._send(ex)
            return
        self.fail_exchange(ex, 502, "the replica closed the connection mid-response")

    def fail_exchange(self, ex: Exchange, status: int, why: str) -> None:
        """End a request that a replica failed: an error answer, or a cut if one had begun."""
        ex.complete = True
        rep = ex.replica
        if rep is not None:
            rep.in_flight -= 1
            if rep.failed(self.clock):
                self.ejections += 1
        self._record(ex, status, True)
        client = ex.client
        if client.transport is None:
            return
        if ex.response_started and not ex.pending:  # the client has part of an answer: cut
            client.transport.close()
            return
        ex.pending = b""  # a head held back (no body yet) never reached the client: answer
        ex.keep_alive = False
        client.transport.write(local_response(status, why, close=True))
        client.exchange_done(ex)

    def _fail_local(self, ex: Exchange, status: int, why: str) -> None:
        """No replica was reached: answer ourselves and count it against the revision if any."""
        ex.complete = True
        if ex.revision is not None:
            self._record(ex, status, True)
        transport = ex.client.transport
        if transport is not None:
            transport.write(local_response(status, why, close=not ex.keep_alive))
        ex.client.exchange_done(ex)

    def abandon(self, ex: Exchange) -> None:
        """The client went away: release the replica and drop the upstream connection."""
        if ex.complete:
            return
        ex.complete = True
        ex.deadline = 0.0
        conn = ex.upstream
        if conn is not None:
            conn.exchange = None
            conn.close()
        if ex.replica is not None and ex.upstream is not None:
            ex.replica.in_flight -= 1

    def _record(self, ex: Exchange, status: int, failed: bool, outcome: str = "") -> None:
        """Count a finished request; ``outcome``: an A2A exchange's ``"<method> <outcome>"``.
        A stream's latency is its first event's (what its user waits for), its whole
        duration a series of its own."""
        rev = ex.revision
        if rev is None:
            return
        end = time.perf_counter()
        latency = end - ex.started
        a2a = ex.a2a
        if a2a is not None and a2a.first_byte:
            if self.stats_enabled:
                rev.stats.stream(latency)
            latency = a2a.first_byte - ex.started
        now = end + self.wall_offset
        if self.stats_enabled:
            rev.stats.record(now, status, latency, failed, outcome)
        if self.record is not None:
            trace = ex.trace
            said = ""
            if outcome:
                method, _, told = outcome.partition(" ")
                said = f',"method":"{method}","outcome":"{told}"'
            self.record.write(
                f'{{"ts":{now:.6f},"app":"{ex.client.app}","revision":"{rev.name}",'
                f'"version":"{rev.version}","status":{status},"latency_ms":{latency * 1000:.3f},'
                f'"trace_id":"{trace[3:35].decode()}","span_id":"{trace[36:52].decode()}"'
                f"{said}}}\n"
            )
        if ex.span is not None and self.spans is not None:
            trace_id, parent, span_id = ex.span
            start = int((ex.started + self.wall_offset) * 1e9)
            self.spans.add(
                SampledRequest(
                    trace_id,
                    parent,
                    span_id,
                    start,
                    int(now * 1e9),
                    ex.client.app,
                    rev.name,
                    rev.version,
                    ex.method.decode("latin-1"),
                    ex.url.decode("latin-1").split("?", 1)[0],
                    status,
                    failed,
                )
            )

    async def close(self, grace_s: float) -> None:
        """Stop accepting, let in-flight requests finish within ``grace_s`` (each answered
        with ``connection: close``), then close the idle connections: the listening sockets
        stay open in the processes that share them, so a replacing proxy takes the clients.

        An idle keep-alive connection is given ``IDLE_GRACE_S`` to carry one more request (also
        answered with ``connection: close``) before it is closed: closing it at once loses
        the request its client may be sending on it at that moment."""
        self.closing = True
        self._sweeper.cancel()
        for server in self.listeners.values():
            server.close()
        now = time.monotonic()
        deadline, linger = now + grace_s, now + min(IDLE_GRACE_S, grace_s)
        # Polled: shutdown is rare, and an event would cost every request a check.
        while (now := time.monotonic()) < deadline:
            if not any(c.pipeline for c in self.clients) and (now >= linger or not self.clients):
                break
            await asyncio.sleep(0.02)
        for client in list(self.clients):
            if client.transport is not None:
                client.transport.close()
        if self.record is not None:
            self.record.flush()
        self.a2a.close()


def _consume(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
