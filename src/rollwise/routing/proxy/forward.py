"""The proxy's per-request path: client connection → revision → replica → response stream.

Both sides are asyncio Protocols driven by httptools callbacks, so a request costs no task of
its own unless a new upstream connection must be opened. Bodies stream in both directions
with back-pressure (a full socket buffer on one side pauses reading on the other), so an SSE
event reaches the client when the replica writes it. A request is sent once the read that
completed its head is parsed: the body bytes of that read leave with the head in one write
(a system call per request saved on most POSTs, docs/performance.md).

Retries are safe by construction: a request is retried on another replica only if nothing of
it reached a replica (connect refused or reset), or if the replica closed the connection
without sending one byte of response and the whole request body is still held (HAProxy's
``retry-on conn-failure empty-response``): the replica died before it could answer.

An A2A app's POST is held until its body is read (up to ``Limits.replay_bytes``, which
retries hold anyway): the conversation it continues decides its replica (``server.py``). Its
answer is read as it passes (``a2a/outcomes.py``): a JSON answer's pieces are kept up to the
same bound and read at its end, a stream's events one by one.

This module and ``server.py`` are a pair on purpose: the protocols here call the server's
bookkeeping (``dispatch``, ``response_head``, ``response_end``, ``fail_exchange``, ...)
directly, and the server builds these protocols. An interface between the two would cost a
lookup and a call per request event on the hottest path of the data plane (measured in
docs/performance.md); the server is named here only for type checking, so the import runs one
way at run time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import traceback
from collections import deque
from time import monotonic as _monotonic
from typing import TYPE_CHECKING, cast

import httptools

from rollwise.a2a.outcomes import Call, EventStream, rest_call
from rollwise.routing.proxy.headers import (
    CONNECTION_OPTIONS,
    REQUEST_DROPPED,
    SPECIAL_HEADERS,
)
from rollwise.routing.proxy.table import AppRoutes, Replica, RevisionRoute

if TYPE_CHECKING:
    from rollwise.routing.proxy.server import ProxyServer

__all__ = [
    "A2AState",
    "ClientConnection",
    "Exchange",
    "UpstreamConnection",
    "local_response",
]

REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    413: b"Content Too Large",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}
_LAST_CHUNK = b"0\r\n\r\n"
LINGER_S = 2.0


class _TraceIds:
    """W3C trace and span ids for requests that arrive without a ``traceparent``.

    Random hex is cut from a block of ``os.urandom`` refilled every 1024 requests: one
    system call per block instead of formatting two random integers per request.
    """

    __slots__ = ("block", "offset")
    SIZE = 48  # 32 hex digits of trace id, 16 of span id

    def __init__(self) -> None:
        self.block = b""
        self.offset = 0

    def traceparent(self) -> bytes:
        """A new ``traceparent`` value: ``00-<trace id>-<span id>-01``."""
        if self.offset >= len(self.block):
            self.block = os.urandom(self.SIZE // 2 * 1024).hex().encode()
            self.offset = 0
        at = self.offset
        self.offset = at + self.SIZE
        block = self.block
        return b"00-%s-%s-01" % (block[at : at + 32], block[at + 32 : at + 48])


_trace_ids = _TraceIds()


def local_response(status: int, text: str, close: bool) -> bytes:
    body = (text + "\n").encode()
    head = (
        b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
        % (status, REASONS.get(status, b"Error"), len(body))
    )
    if close:
        head += b"connection: close\r\n"
    return head + b"\r\n" + body


class Exchange:
    """One request and its response, from the client's first byte to the last response byte."""

    __slots__ = (
        "a2a",
        "body",
        "body_bytes",
        "body_done",
        "chunked",
        "client",
        "complete",
        "deadline",
        "forced",
        "has_expect",
        "head",
        "headers",
        "keep_alive",
        "method",
        "pending",
        "replay_ok",
        "replica",
        "response_chunked",
        "response_started",
        "revision",
        "span",
        "started",
        "status",
        "sticky",
        "trace",
        "tried",
        "upstream",
        "url",
    )

    def __init__(self, client: ClientConnection) -> None:
        self.client = client
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head = b""
        self.method = b""
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.body_done = False
        self.chunked = False
        self.keep_alive = True
        self.replay_ok = True
        self.has_expect = False
        self.forced: str | None = None
        self.sticky: str | None = None
        self.revision: RevisionRoute | None = None
        self.replica: Replica | None = None
        self.upstream: UpstreamConnection | None = None
        self.tried: tuple[Replica, ...] = ()
        self.started = 0.0
        self.status = 0
        self.response_started = False
        self.response_chunked = False
        self.complete = False
        self.deadline = 0.0
        self.pending = b""
        self.trace = b""  # the traceparent sent upstream
        self.span: tuple[bytes, bytes, bytes] | None = None  # sampled: trace, parent, span id
        self.a2a: A2AState | None = None  # an A2A app's request: what is read of it

    def held(self) -> bool:
        """An A2A POST whose body is still coming (and small enough to be read first)."""
        a2a = self.a2a
        return a2a is not None and a2a.waiting and not self.body_done and self.replay_ok

    def send_body(self, data: bytes) -> None:
        """Forward a piece of request body to the connected replica, chunk-framed if needed."""
        up = self.upstream
        if up is None or up.transport is None:
            return
        if self.chunked:
            up.transport.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            up.transport.write(data)


class A2AState:
    """What the proxy reads of an A2A app's request (``a2a.py``); plain requests have none,
    so that they pay one attribute for it."""

    __slots__ = (
        "answer",
        "answer_bytes",
        "call",
        "events",
        "first_byte",
        "learned",
        "pin",
        "routes",
        "waiting",
    )

    def __init__(self, call: Call | None, waiting: bool) -> None:
        self.call = call  # None until read (a POST), or not an A2A call
        self.waiting = waiting  # a POST held until its body is read
        self.pin: Replica | None = None  # the replica its conversation lives on
        self.routes: AppRoutes | None = None  # its app, as routed
        self.answer: list[bytes] | None = None  # a JSON answer's pieces, up to the bound
        self.answer_bytes = 0
        self.events: EventStream | None = None  # a stream's events, read as they pass
        self.first_byte = 0.0  # when a stream's first event came
        self.learned = False  # its conversation was learned


class ClientConnection(asyncio.Protocol):
    """A connection from a client to one app's public listener."""

    __slots__ = (
        "app",
        "deadline",
        "header_bytes",
        "ip",
        "lingering",
        "parser",
        "pipeline",
        "proxy",
        "reading_paused",
        "ready",
        "transport",
        "writing_paused",
    )

    def __init__(self, proxy: ProxyServer, app: str) -> None:
        self.proxy = proxy
        self.app = app
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.pipeline: deque[Exchange] = deque()
        self.ip = b""
        self.header_bytes = 0
        self.deadline = 0.0
        self.lingering = False
        self.writing_paused = False
        self.reading_paused = False
        # A request whose head is complete, sent once the read that completed it is parsed:
        # the body bytes of the same read then leave with the head in one write.
        self.ready: Exchange | None = None

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.ip = (peer[0] if peer else "").encode()
        self.proxy.clients.add(self)
        self._arm(self.proxy.limits.idle_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self.proxy.clients.discard(self)
        self._disarm()
        for ex in self.pipeline:
            self.proxy.abandon(ex)
        self.pipeline.clear()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return  # after a rejection: drained and dropped, see reject()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.reject(501, "protocol upgrades are not supported by this listener")
        except httptools.HttpParserCallbackError:
            # A bug of ours, not the client's: say so, and keep the trace in the proxy log.
            traceback.print_exc()
            self.reject(500, "internal proxy error")
        except httptools.HttpParserError as exc:
            self.reject(400, f"malformed request: {exc}")
        ex = self.ready
        if ex is not None:
            self.ready = None
            if self.pipeline and self.pipeline[0] is ex:
                if ex.a2a is not None and ex.held():  # routed once its body is read
                    self._arm(self.proxy.limits.header_timeout_s)  # which must come in time
                else:
                    self.proxy.dispatch(ex)

    def pause_writing(self) -> None:
        self.writing_paused = True
        ex = self.pipeline[0] if self.pipeline else None
        if ex is not None and ex.upstream is not None and ex.upstream.transport is not None:
            ex.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        ex = self.pipeline[0] if self.pipeline else None
        if ex is not None and ex.upstream is not None and ex.upstream.transport is not None:
            ex.upstream.transport.resume_reading()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.header_bytes = 0
        self.pipeline.append(Exchange(self))
        if len(self.pipeline) == 1:
            self.deadline = _monotonic() + self.proxy.limits.header_timeout_s
        elif len(self.pipeline) > self.proxy.limits.max_pipeline and self.transport:
            self.transport.pause_reading()
            self.reading_paused = True

    def on_url(self, url: bytes) -> None:
        ex = self.pipeline[-1]
        ex.url += url
        self.header_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + 4
        self.pipeline[-1].headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        ex = self.pipeline[-1]
        limits = self.proxy.limits
        if self.header_bytes > limits.max_header_bytes:
            self.reject(431, f"request headers exceed {limits.max_header_bytes} bytes")
            return
        problem = self._prepare(ex)
        if problem is not None:
            self.reject(problem[0], problem[1])
            return
        if len(self.pipeline) == 1:
            self.deadline = 0.0
            self.ready = ex

    def on_body(self, body: bytes) -> None:
        ex = self.pipeline[-1]
        ex.body_bytes += len(body)
        if ex.body_bytes > self.proxy.limits.max_body_bytes:
            self.reject(413, f"request body exceeds {self.proxy.limits.max_body_bytes} bytes")
            return
        if ex.replay_ok:
            ex.body.append(body)
            if ex.body_bytes > self.proxy.limits.replay_bytes:
                ex.replay_ok = False
                if ex.a2a is not None and ex.a2a.waiting and self.pipeline[0] is ex:
                    self.ready = ex  # too big to read first: routed as plain HTTP
        if ex.upstream is not None:
            if not ex.replay_ok and ex.body:
                for piece in ex.body:
                    ex.send_body(piece)
                ex.body.clear()
            else:
                ex.send_body(body)
        elif not ex.replay_ok:
            ex.body.append(body)
            if ex.body_bytes > 4 * self.proxy.limits.replay_bytes and self.transport:
                self.transport.pause_reading()
                self.reading_paused = True

    def on_message_complete(self) -> None:
        ex = self.pipeline[-1]
        ex.body_done = True
        if ex.chunked and ex.upstream is not None and ex.upstream.transport is not None:
            ex.upstream.transport.write(_LAST_CHUNK)
        a2a = ex.a2a
        if a2a is not None and a2a.waiting and ex.upstream is None and self.pipeline[0] is ex:
            self.ready = ex

    # helpers

    def _prepare(self, ex: Exchange) -> tuple[int, str] | None:  # noqa: PLR0912, PLR0915 -- the header pass of every request: one loop, no call per header
        """Check framing (request smuggling) and build the head sent to the replica.

        Most headers are copied as they are; only names in the app's ``special`` set (framing,
        forwarding, tracing and routing headers) take the slow branch.
        """
        parser = self.parser
        ex.method = parser.get_method()
        ex.keep_alive = parser.should_keep_alive()
        lengths = 0
        encodings = 0
        host = b""
        hosts = 0
        out = [ex.method, b" ", ex.url, b" HTTP/1.1\r\n"]
        forwarded_for = b""
        traceparent = b""
        content_length = b""
        connection_tokens: set[bytes] | None = None
        routes = self.proxy.table.apps.get(self.app)
        special = routes.special if routes is not None else SPECIAL_HEADERS
        for name, value in ex.headers:
            if name not in special:
                out += (name, b": ", value, b"\r\n")
                continue
            if name == b"host":
                hosts += 1
                host = value
            elif name == b"content-length":
                lengths += 1
                content_length = value.strip()
                if not content_length.isdigit():
                    return 400, "invalid Content-Length"
                continue
            elif name == b"connection":
                tokens = {t.strip().lower() for t in value.split(b",")} - CONNECTION_OPTIONS
                connection_tokens = (connection_tokens or set()) | tokens
                continue
            elif name == b"transfer-encoding":
                encodings += 1
                if value.strip().lower() != b"chunked":
                    return 400, "only Transfer-Encoding: chunked is accepted"
                ex.chunked = True
                continue
            elif name == b"x-forwarded-for":
                forwarded_for = value + b", "
                continue
            elif name == b"expect":
                ex.has_expect = value.strip().lower() == b"100-continue"
                continue
            elif name == b"traceparent":
                traceparent = value.strip()
                continue
            elif routes is not None:
                if name == routes.override_header:
                    ex.forced = value.decode("latin-1").strip()
                elif name == routes.sticky_header:
                    ex.sticky = value.decode("latin-1")
                elif name == b"cookie" and (routes.override_cookie or routes.sticky_cookie):
                    self._cookies(ex, routes, value)
            if name not in REQUEST_DROPPED:
                out += (name, b": ", value, b"\r\n")
        if connection_tokens:  # rare: Connection names other hop-by-hop headers to drop
            out[4:] = [
                b"%s: %s\r\n" % (n, v)
                for n, v in ex.headers
                if n not in REQUEST_DROPPED
                and n not in connection_tokens
                and n not in (b"x-forwarded-for", b"traceparent")
            ]
        if lengths and encodings:
            return 400, "Content-Length and Transfer-Encoding together are ambiguous"
        if lengths > 1:
            return 400, "more than one Content-Length"
        if encodings > 1:
            return 400, "more than one Transfer-Encoding"
        if hosts != 1 and (hosts > 1 or parser.get_http_version() == "1.1"):
            return 400, "HTTP/1.1 needs exactly one Host header"
        if routes is not None and routes.header_routes and ex.forced is None:
            for hname, hvalue, revision in routes.header_routes:
                if any(n == hname and v == hvalue for n, v in ex.headers):
                    ex.forced = revision
                    break
        out += (b"x-forwarded-for: ", forwarded_for, self.ip, b"\r\nx-forwarded-proto: http\r\n")
        if host:
            out += (b"x-forwarded-host: ", host, b"\r\n")
        own = len(traceparent) != 55  # none, or not W3C's version 00: a trace of our own
        if own:
            traceparent = _trace_ids.traceparent()
        spans = self.proxy.spans
        if spans is not None and (spans.sample_own() if own else spans.sampled(traceparent)):
            span_id = spans.span_id()
            ex.span = (traceparent[3:35], b"" if own else traceparent[36:52], span_id)
            traceparent = b"00-%s-%s-01" % (traceparent[3:35], span_id)
        ex.trace = traceparent
        out += (b"traceparent: ", traceparent, b"\r\n")
        if ex.chunked:
            out.append(b"transfer-encoding: chunked\r\n")
        elif lengths:
            out.append(b"content-length: %s\r\n" % content_length)
        out.append(b"\r\n")
        ex.head = b"".join(out)
        if routes is not None and routes.a2a is not None:
            if ex.method == b"POST":
                ex.a2a = A2AState(None, True)
            else:  # the REST binding's reads name their task in the path
                call = rest_call(ex.method, ex.url, None)
                if call is not None:
                    ex.a2a = A2AState(call, False)
        if ex.has_expect and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return None

    @staticmethod
    def _cookies(ex: Exchange, routes: AppRoutes, header: bytes) -> None:
        """Route by cookie: an override cookie names a revision, a sticky one is hashed.

        The override header wins over the override cookie; both win over header routes.
        """
        for pair in header.split(b";"):
            name, _, value = pair.strip().partition(b"=")
            if not value:
                continue
            if name == routes.override_cookie and ex.forced is None:
                ex.forced = value.strip(b'"').decode("latin-1")
            elif name == routes.sticky_cookie and ex.sticky is None:
                ex.sticky = value.decode("latin-1")

    def reject(self, status: int, text: str) -> None:
        """Answer with a 4xx/5xx of our own and close: the stream can't be trusted after it.

        The close lingers (nginx's ``lingering_close``): our side is shut for writing and
        whatever the client still sends is read and dropped until it stops or ``LINGER_S``
        pass. Closing at once with unread bytes would make the kernel send a reset, and the
        client, still uploading a too-big body, would lose the answer that says why.
        """
        transport = self.transport
        if transport is None or self.lingering:
            return
        head = self.pipeline[0] if self.pipeline else None
        if head is None or not head.response_started:
            transport.write(local_response(status, text, close=True))
        self.proxy.rejected[status] = self.proxy.rejected.get(status, 0) + 1
        for ex in self.pipeline:
            self.proxy.abandon(ex)
        self.pipeline.clear()
        if (head is not None and head.response_started) or not transport.can_write_eof():
            transport.close()
            return
        self.lingering = True
        transport.write_eof()
        if self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()
        self.deadline = _monotonic() + LINGER_S

    def exchange_done(self, ex: Exchange) -> None:
        """The response to the head of the pipeline was fully written."""
        if self.pipeline and self.pipeline[0] is ex:
            self.pipeline.popleft()
        transport = self.transport
        if transport is None:
            return
        if not ex.keep_alive:
            transport.close()
            return
        if self.reading_paused and len(self.pipeline) <= self.proxy.limits.max_pipeline:
            self.reading_paused = False
            transport.resume_reading()
        if self.pipeline:
            nxt = self.pipeline[0]
            if nxt.head and not (nxt.a2a is not None and nxt.held()):
                self.proxy.dispatch(nxt)
            else:
                self._arm(self.proxy.limits.header_timeout_s)
        else:
            self.deadline = _monotonic() + self.proxy.limits.idle_timeout_s

    def _arm(self, seconds: float) -> None:
        # A deadline that the proxy's sweep checks: a timer per request would cost a heap push
        # and a cancel on every request, for timeouts that rarely fire.
        self.deadline = _monotonic() + seconds

    def _disarm(self) -> None:
        self.deadline = 0.0

    def timed_out(self) -> None:
        self.deadline = 0.0
        if self.pipeline and self.transport is not None:
            what = "body" if self.pipeline[0].head else "headers"
            self.reject(408, f"request {what} not received in time")
        elif self.transport is not None:
            self.transport.close()


class UpstreamConnection(asyncio.Protocol):
    """A pooled HTTP/1.1 connection from the proxy to one replica."""

    __slots__ = (
        "exchange",
        "got_bytes",
        "keep_alive",
        "parser",
        "proxy",
        "replica",
        "resp_headers",
        "transport",
    )

    def __init__(self, proxy: ProxyServer, replica: Replica) -> None:
        self.proxy = proxy
        self.replica = replica
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: Exchange | None = None
        self.resp_headers: list[tuple[bytes, bytes]] = []
        self.got_bytes = False
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        ex = self.exchange
        self.exchange = None
        if ex is None:
            # An idle pooled connection the replica closed: never hand it out again.
            with contextlib.suppress(ValueError):
                self.replica.idle.remove(self)
        elif not ex.complete:
            self.proxy.upstream_lost(ex, self, exc)

    def pause_writing(self) -> None:
        ex = self.exchange
        if ex is not None and ex.client.transport is not None:
            ex.client.transport.pause_reading()

    def resume_writing(self) -> None:
        ex = self.exchange
        if ex is not None and ex.client.transport is not None and not ex.client.reading_paused:
            ex.client.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def start(self, ex: Exchange) -> None:
        """Send a request's head and whatever of its body has arrived."""
        self.exchange = ex
        self.got_bytes = False
        self.resp_headers = []
        ex.upstream = self
        transport = self.transport
        assert transport is not None
        if not ex.body:
            transport.write(ex.head + _LAST_CHUNK if ex.chunked and ex.body_done else ex.head)
        else:
            if ex.chunked:
                out = [ex.head, *(b"%x\r\n%s\r\n" % (len(p), p) for p in ex.body)]
                if ex.body_done:
                    out.append(_LAST_CHUNK)
            else:
                out = [ex.head, *ex.body]
            transport.writelines(out)
            if not ex.replay_ok:
                ex.body.clear()

    def data_received(self, data: bytes) -> None:
        ex = self.exchange
        if ex is None:
            self.close()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.keep_alive = False
            if self.exchange is not None:
                self.exchange = None
                self.proxy.fail_exchange(ex, 502, "replica sent an invalid response")
            self.close()
            return
        # A streamed answer's head (no Content-Length: SSE, chunked) goes out now, before its
        # first event. A sized answer's head waits for its body: a replica killed between
        # writing the two is then answered 502 by the proxy, never cut short.
        if ex.pending and ex.response_chunked:
            transport = ex.client.transport
            if transport is not None:
                transport.write(ex.pending)
            ex.pending = b""

    def on_header(self, name: bytes, value: bytes) -> None:
        self.resp_headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        ex = self.exchange
        if ex is None:
            return
        status = self.parser.get_status_code()
        if status < 200:
            self.resp_headers = []
            return
        self.keep_alive = self.parser.should_keep_alive()
        self.proxy.response_head(ex, status, self.resp_headers)
        if ex.method == b"HEAD":
            self.keep_alive = False
            self.on_message_complete()

    def on_body(self, body: bytes) -> None:
        ex = self.exchange
        if ex is None or ex.client.transport is None:
            return
        if ex.a2a is not None:
            self.proxy.a2a.read(ex, ex.a2a, body)
        if ex.response_chunked:
            body = b"%x\r\n%s\r\n" % (len(body), body)
        if ex.pending:  # head and first body bytes leave in one write (one syscall)
            body = ex.pending + body
            ex.pending = b""
        ex.client.transport.write(body)

    def on_message_complete(self) -> None:
        ex = self.exchange
        if ex is None or not ex.response_started:
            return
        self.exchange = None
        self.proxy.response_end(ex, self)
