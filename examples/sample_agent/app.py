"""The sample agent's Starlette app: agent card, JSON-RPC A2A endpoint, ``/healthz`` and
``/metrics``.

It is written with ``rollwise.toolkit`` as an agent author would: its skill is monitored
(``rollwise_toolkit_operations_total{operation="skill.echo"}``), its outbound call to a
downstream service (``AGENT_DOWNSTREAM_URL``, optional) goes through a pooled client with
the caller's ``traceparent``, retries and a circuit breaker, and falls back to a plain echo
when the downstream fails, so the user still gets an answer and only the agent's own
counters (``operation="downstream"``) show it. ``/healthz`` reports the breakers and pools.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import uvicorn
from a2a.helpers.proto_helpers import new_task_from_user_message, new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Part,
)
from google.protobuf.json_format import MessageToDict
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from rollwise.a2a.extensions import (
    ExtendedExecutor,
    Extension,
    TimestampExtension,
    TraceabilityExtension,
    trace_step,
)
from rollwise.toolkit import (
    MemoryWatch,
    TraceContextMiddleware,
    close_clients,
    handle_errors,
    health_endpoint,
    http_client,
    monitor_operation,
)


@dataclass(frozen=True)
class Knobs:
    """How this process misbehaves, read once from the environment."""

    version: str
    fail_rate: float
    latency_ms: float
    tail_latency_ms: float
    tail_fraction: float
    crash_at_start: bool
    start_delay_s: float
    breaks: frozenset[str]
    fail_after: int | None
    extensions: tuple[str, ...]
    fail_mode: str = "raise"
    downstream_url: str = ""
    memory_limit_mb: float = 0.0

    @classmethod
    def from_env(cls) -> Knobs:
        env = os.environ
        return cls(
            version=env.get("AGENT_VERSION", "0.0.0"),
            fail_rate=float(env.get("AGENT_FAIL_RATE", "0")),
            latency_ms=float(env.get("AGENT_LATENCY_MS", "0")),
            tail_latency_ms=float(env.get("AGENT_TAIL_LATENCY_MS", "0")),
            tail_fraction=float(env.get("AGENT_TAIL_FRACTION", "0")),
            crash_at_start=env.get("AGENT_CRASH_AT_START", "") not in ("", "0", "false"),
            start_delay_s=float(env.get("AGENT_START_DELAY_S", "0")),
            fail_after=int(env["AGENT_FAIL_AFTER"]) if env.get("AGENT_FAIL_AFTER") else None,
            extensions=tuple(
                e.strip()
                for e in env.get("AGENT_EXTENSIONS", "timestamp,traceability").split(",")
                if e.strip()
            ),
            breaks=frozenset(b.strip() for b in env.get("AGENT_BREAK", "").split(",") if b.strip()),
            downstream_url=env.get("AGENT_DOWNSTREAM_URL", ""),
            memory_limit_mb=float(env.get("AGENT_MEMORY_LIMIT_MB", "0")),
            fail_mode=env.get("AGENT_FAIL_MODE", "raise").strip() or "raise",
        )


FAIL_MODES = {
    "raise": "the executor raises: a JSON-RPC error -32603 in an HTTP 200 (a2a-sdk's answer)",
    "task": "the task ends in state failed",
    "http": "an HTTP 500 before a2a-sdk sees the call",
}


class Faults:
    """Which calls fail (``AGENT_FAIL_RATE``, ``AGENT_FAIL_AFTER``): one count and one draw per
    call, wherever the fault is applied (the executor, or the middleware for ``http``)."""

    def __init__(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self.calls = 0
        self.rng = random.Random()

    def next_fails(self) -> bool:
        k = self.knobs
        self.calls += 1
        worn_out = k.fail_after is not None and self.calls > k.fail_after
        return worn_out or bool(k.fail_rate and self.rng.random() < k.fail_rate)


# What ``AGENT_BREAK`` (comma-separated) can break, for tests of smoke tests and card checks.
BREAKS = {
    "card-missing-name": "the card has no name",
    "card-invalid": "the card's binding and input modes have the wrong shapes",
    "card-legacy": "the card is served only at the 0.3 path /.well-known/agent.json",
    "rpc-error": "every message makes the executor raise (a JSON-RPC error -32603)",
    "hang": "tasks start work and never finish (a stream that never ends)",
}


@monitor_operation("downstream")
@handle_errors(
    retry=True,
    circuit_breaker="downstream",
    name="downstream",
    attempts=2,
    timeout=2.0,
    recovery=5.0,
)
async def ask_downstream(url: str, text: str) -> str:
    """The downstream's answer for ``text`` (any 2xx); its errors are the toolkit's to count,
    retry and break on."""
    response = await http_client("downstream", timeout=2.0).post(url, content=text.encode())
    response.raise_for_status()
    return response.text


FLAG_TTL_S = 0.5


def flag_client(ofrep_url: str) -> Any:
    """An OpenFeature client on the controller's OFREP endpoint for this replica (the URL
    rollwise starts replicas with): plain OpenFeature, nothing of rollwise."""
    from openfeature import api
    from openfeature.contrib.provider.ofrep import OFREPProvider

    api.set_provider(OFREPProvider(base_url=ofrep_url, timeout=2.0))
    return api.get_client("sample-agent")


class EchoExecutor(AgentExecutor):
    """Answers ``ping`` with ``pong`` and anything else with an echo naming the version,
    with the downstream's answer when one is configured (a plain echo when it fails). The
    feature flag ``shout`` (OpenFeature, over OFREP) turns the echo to upper case. It is a
    per-revision switch, so the agent asks for it at most every ``FLAG_TTL_S`` while it is
    answering, in the revision's own context, rather than once per request; ``ping`` never
    asks (load tests send pings).

    A task is produced (not a bare message) so that streaming clients see real status and
    artifact events: working, the reply as an artifact in two chunks, completed.
    """

    def __init__(
        self,
        version: str,
        hang: bool = False,
        downstream_url: str = "",
        ofrep_url: str = "",
        faults: Faults | None = None,
        fail: str = "",
    ) -> None:
        self._version = version
        self._hang = hang
        self._faults = faults  # messages that fail, and how (``fail``: raise or task)
        self._fail = fail
        self._downstream = downstream_url
        self._flags = flag_client(ofrep_url) if ofrep_url else None
        self._shout = (False, -FLAG_TTL_S)  # (value, when asked)
        self._asking = asyncio.Lock()

    async def shout(self) -> bool:
        value, asked = self._shout
        if self._flags is None or time.monotonic() < asked + FLAG_TTL_S or self._asking.locked():
            return value
        async with self._asking:
            value = await asyncio.to_thread(self._flags.get_boolean_value, "shout", False)
            self._shout = (value is True, time.monotonic())
        return value is True

    def reply_to(self, text: str) -> str:
        if text.strip().lower() == "ping":
            return "pong"
        return f"echo from {self._version}: {text}"

    @monitor_operation("skill.echo")
    async def answer(self, text: str) -> str:
        reply = self.reply_to(text)
        if reply != "pong" and await self.shout():
            reply = reply.upper()
        if self._downstream and reply != "pong":
            try:
                reply += f" ({await ask_downstream(self._downstream, text)})"
            except Exception:  # a fallback answer: the user is served, the counters know
                reply += " (downstream unavailable)"
        return reply

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        failing = self._fail if self._faults is not None and self._faults.next_fails() else ""
        if failing == "raise":
            raise RuntimeError(f"injected failure in {self._version}")
        task = context.current_task or new_task_from_user_message(context.message)
        follow_up = context.current_task is not None
        if not follow_up:
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work()
        if self._hang:
            await asyncio.Event().wait()
        if failing == "task":
            failed = new_text_message(
                f"injected failure in {self._version}", context_id=task.context_id
            )
            await updater.failed(failed)
            return
        text = context.get_user_input()
        if not follow_up and text.strip().lower().startswith("ask"):
            await updater.requires_input(new_text_message("what else?", context_id=task.context_id))
            return
        with trace_step("compose reply", call_type="TOOL", version=self._version):
            reply = f"got: {text}" if follow_up else await self.answer(text)
        half = len(reply) // 2
        await updater.add_artifact([Part(text=reply[:half])], artifact_id="reply", name="reply")
        await updater.add_artifact(
            [Part(text=reply[half:])], artifact_id="reply", name="reply", append=True
        )
        await updater.complete(new_text_message(reply, context_id=task.context_id))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.task_id and context.context_id:
            await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


class Misbehave:
    """ASGI middleware applying the latency knobs to A2A calls (``POST``), never to probes,
    and ``AGENT_FAIL_MODE=http``'s failures."""

    def __init__(self, app: ASGIApp, knobs: Knobs, faults: Faults | None = None) -> None:
        self._app = app
        self._knobs = knobs
        self._faults = faults  # only for failures as HTTP 500s
        self._rng = random.Random()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            k = self._knobs
            delay = k.latency_ms
            if k.tail_fraction and self._rng.random() < k.tail_fraction:
                delay += k.tail_latency_ms
            if delay:
                await asyncio.sleep(delay / 1000)
            if self._faults is not None and self._faults.next_fails():
                await Response("injected failure", status_code=500)(scope, receive, send)
                return
        await self._app(scope, receive, send)


EXTENSIONS: dict[str, type[TimestampExtension] | type[TraceabilityExtension]] = {
    "timestamp": TimestampExtension,
    "traceability": TraceabilityExtension,
}


def extensions(names: tuple[str, ...]) -> tuple[list[Extension], set[str]]:
    """The extensions ``AGENT_EXTENSIONS`` names (``name!`` declares it required), and the
    URIs declared required."""
    chosen: list[Extension] = []
    required: set[str] = set()
    for name in names:
        extension: Extension = EXTENSIONS[name.rstrip("!")]()
        chosen.append(extension)
        if name.endswith("!"):
            required.add(extension.uri)
    return chosen, required


def agent_card(version: str, url: str, names: tuple[str, ...] = ()) -> AgentCard:
    card = _card(version, url)
    chosen, required = extensions(names)
    ExtendedExecutor.declare(card, chosen)
    for declared in card.capabilities.extensions:
        declared.required = declared.uri in required
    return card


def _card(version: str, url: str) -> AgentCard:
    return AgentCard(
        name="Sample Echo Agent",
        description="Echoes what it is sent; answers ping with pong. rollwise's sample agent.",
        version=version,
        # 1.0 first (preferred); the 0.3 one makes the SDK also write the top-level url,
        # protocolVersion and preferredTransport that 0.3-era clients and linters read
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0"),
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="0.3"),
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(
                id="echo",
                name="Echo",
                description="Returns the text it receives; ping gives pong.",
                tags=["echo", "test"],
                examples=["ping", "hello"],
            )
        ],
    )


def card_routes(card: AgentCard, breaks: frozenset[str]) -> list[Route]:
    """The SDK's card route, or a broken card served by hand when a test asks for one."""
    if not breaks & {"card-missing-name", "card-invalid", "card-legacy"}:
        return list(create_agent_card_routes(card))
    data = MessageToDict(card)
    if "card-missing-name" in breaks:
        del data["name"]
    if "card-invalid" in breaks:
        data["supportedInterfaces"][0]["protocolBinding"] = "SOAP"
        data["defaultInputModes"] = "text/plain"
    path = "/.well-known/agent.json" if "card-legacy" in breaks else "/.well-known/agent-card.json"

    async def serve(_: Request) -> JSONResponse:
        return JSONResponse(data)

    return [Route(path, serve, methods=["GET"])]


def build_app(knobs: Knobs, public_url: str) -> Starlette:
    card = agent_card(knobs.version, public_url, knobs.extensions)
    chosen, required = extensions(knobs.extensions)
    faults = Faults(knobs)
    if "rpc-error" in knobs.breaks:
        faults = Faults(replace(knobs, fail_rate=1.0, fail_mode="raise"))
    in_http = knobs.fail_mode == "http" and "rpc-error" not in knobs.breaks
    echo = EchoExecutor(
        knobs.version,
        hang="hang" in knobs.breaks,
        downstream_url=knobs.downstream_url,
        ofrep_url=os.environ.get("ROLLWISE_OFREP_URL", ""),
        faults=None if in_http else faults,
        fail=faults.knobs.fail_mode,
    )
    executor = ExtendedExecutor(echo, chosen, required)
    handler = DefaultRequestHandler(
        agent_executor=executor,
        task_store=InMemoryTaskStore(),
        agent_card=card,
    )
    memory = MemoryWatch(knobs.memory_limit_mb) if knobs.memory_limit_mb else None
    healthz = health_endpoint(memory=memory, extra={"version": knobs.version})

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *card_routes(card, knobs.breaks),
        *create_jsonrpc_routes(
            handler, rpc_url="/", enable_v0_3_compat=True, shutdown_grace_period=5
        ),
    ]
    app = Starlette(routes=routes, lifespan=_lifespan(memory))
    app.add_middleware(Misbehave, knobs=knobs, faults=faults if in_http else None)
    app.add_middleware(TraceContextMiddleware)
    return app


def _lifespan(memory: MemoryWatch | None) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        watching = asyncio.create_task(memory.run()) if memory is not None else None
        yield
        if memory is not None and watching is not None:
            memory.stop()
            watching.cancel()
        await close_clients()

    return lifespan


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sample_agent", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--public-url",
        default=os.environ.get("AGENT_PUBLIC_URL", ""),
        help="URL the card advertises (the proxy's public listener); default: own address",
    )
    args = parser.parse_args(argv)
    knobs = Knobs.from_env()
    if knobs.fail_mode not in FAIL_MODES:
        sys.exit(f"AGENT_FAIL_MODE: {knobs.fail_mode!r} is not one of {', '.join(FAIL_MODES)}")
    unknown = knobs.breaks - BREAKS.keys()
    if unknown:
        sys.exit(f"AGENT_BREAK: unknown {', '.join(sorted(unknown))}; known: {', '.join(BREAKS)}")
    strange = {e.rstrip("!") for e in knobs.extensions} - EXTENSIONS.keys()
    if strange:
        known = ", ".join(EXTENSIONS)
        sys.exit(f"AGENT_EXTENSIONS: unknown {', '.join(sorted(strange))}; known: {known}")
    if knobs.crash_at_start:
        print(f"sample agent {knobs.version}: crashing at start on purpose", file=sys.stderr)
        sys.exit(3)
    if knobs.start_delay_s:
        print(f"sample agent {knobs.version}: slow start, {knobs.start_delay_s}s", flush=True)
        time.sleep(knobs.start_delay_s)
    url = args.public_url or f"http://{args.host}:{args.port}/"
    print(f"sample agent {knobs.version} listening on {args.host}:{args.port}", flush=True)
    uvicorn.run(
        build_app(knobs, url),
        host=args.host,
        port=args.port,
        log_level="warning",
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
