"""``A2AOutcomes``: the agent's own count of its A2A exchanges, by method and outcome, in the
words rollwise's proxy uses, for where no rollwise proxy reads them: on a cluster, a Gateway
API or ingress router routes by path and headers and never reads a body.

    app.add_middleware(A2AOutcomes)   # a Starlette (or FastAPI) app serving a2a-sdk's routes

Each A2A call (a JSON-RPC POST of any method, 1.0 or 0.3, or the REST binding's paths) and
its answer (JSON, or a stream read event by event as it is sent) are read as the proxy reads
them (``rollwise.a2a.outcomes``) and counted in ``rollwise_toolkit_a2a_exchanges_total``
with labels ``method`` (``SendMessage``…), ``outcome`` (``ok``, ``-32603``, ``failed``,
``input-required``…) and ``code`` (the HTTP status class, ``2xx``…). A request that is not
A2A (``/healthz``, the card) is not counted. Bodies are read up to 64 KiB; the answer is
never held back.

An analysis of an ``a2a:`` app on a cluster judges this counter by default (an agent metric
named ``a2a``, docs/kubernetes.md), and the ``istio`` and ``ingressNginx`` Prometheus
presets add its failures that the gateway did not see as 5xx.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rollwise.a2a.outcomes import EventStream, read_answer, read_call, rest_call
from rollwise.toolkit.metrics import A2A_EXCHANGES

__all__ = ["A2AOutcomes"]

LIMIT = 64 * 1024


class A2AOutcomes:
    """ASGI middleware counting each A2A exchange of the app it wraps by method and outcome."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = str(scope["method"]).encode()
        path = str(scope.get("path", "")).encode()
        exchange = _Exchange(method, path)

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                exchange.request(message.get("body", b""))
            return message

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.start(message)
            elif message["type"] == "http.response.body":
                exchange.answer(message.get("body", b""))
            await send(message)

        await self.app(scope, receiving if method == b"POST" else receive, sending)
        exchange.count()


class _Exchange:
    """One request and its answer, as far as they are read."""

    __slots__ = ("asked", "body", "events", "method", "path", "pieces", "size", "status")

    def __init__(self, method: bytes, path: bytes) -> None:
        self.method, self.path = method, path
        self.body: list[bytes] = []
        self.asked = 0  # the request's bytes
        self.size = 0  # the answer's
        self.status = 0
        self.events: EventStream | None = None
        self.pieces: list[bytes] | None = None

    def request(self, piece: bytes) -> None:
        self.asked += len(piece)
        if self.asked <= LIMIT:
            self.body.append(piece)

    def start(self, message: Message) -> None:
        self.status = int(message["status"])
        headers = dict(message.get("headers") or [])
        stream = headers.get(b"content-type", b"").startswith(b"text/event-stream")
        self.events, self.pieces = (EventStream(), None) if stream else (None, [])

    def answer(self, piece: bytes) -> None:
        if self.events is not None:
            self.events.feed(piece)
        elif self.pieces is not None:
            self.size += len(piece)
            if self.size <= LIMIT:
                self.pieces.append(piece)
            else:
                self.pieces = None

    def count(self) -> None:
        call = None
        if self.method != b"POST":
            call = rest_call(self.method, self.path, None)
        elif self.asked <= LIMIT:
            body = b"".join(self.body)
            call = read_call(body) or rest_call(self.method, self.path, body)
        if call is None or not self.status:
            return
        if self.events is not None:
            answer = self.events.finish()
        elif self.pieces:
            answer = read_answer(b"".join(self.pieces), self.status)
        else:
            answer = None
        if answer is not None:
            code = f"{self.status // 100}xx"
            A2A_EXCHANGES.labels(call.method, answer.outcome, code).inc()
