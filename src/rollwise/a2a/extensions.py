"""Two A2A extensions for agents built with a2a-sdk, and the client side that reads them.

- **Timestamp** (a2a-samples ``extensions/timestamp/v1``): an RFC 3339 UTC stamp in the
  metadata of the agent's messages, artifacts and status messages.
- **Traceability** (a2a-samples ``extensions/traceability/v1``): a ``ResponseTrace``
  (``trace_id``, ``steps`` with ids, parent, call type, latency in ms, start and end times)
  in the metadata of the final status message (or of a direct message reply). Its
  ``trace_id`` is the W3C trace id of the request's ``traceparent``, which rollwise's proxy
  adds when a client sent none: one id from the proxy's log to the agent's trace.

Both act only when the client activates them (the ``A2A-Extensions`` header), as the spec
asks. URIs and metadata keys are the a2a-samples Python packages', so their clients read
ours. Server side, wrap an executor::

    executor = ExtendedExecutor(MyExecutor(), [TimestampExtension(), TraceabilityExtension()])
    card = ExtendedExecutor.declare(card, executor.extensions)   # adds them to the card

and inside it, ``with trace_step("lookup", call_type="TOOL"): ...`` records a step when a
trace is being made (and does nothing otherwise). Client side: ``activate(...)`` for the
a2a-sdk client's call context, ``read_timestamp`` and ``read_trace`` for what came back.
"""

from __future__ import annotations

import contextvars
import datetime
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.types.a2a_pb2 import (
    AgentCard,
    AgentExtension,
    Artifact,
    Message,
    Role,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatusUpdateEvent,
)
from a2a.utils.errors import ExtensionSupportRequiredError
from google.protobuf.json_format import MessageToDict

__all__ = [
    "TIMESTAMP_KEY",
    "TIMESTAMP_URI",
    "TRACEABILITY_KEY",
    "TRACEABILITY_URI",
    "ExtendedExecutor",
    "Extension",
    "ResponseTrace",
    "TimestampExtension",
    "TraceStep",
    "TraceabilityExtension",
    "activate",
    "read_timestamp",
    "read_trace",
    "trace_step",
]

_TIMESTAMP_PATH = "github.com/a2aproject/a2a-samples/extensions/timestamp/v1"
TIMESTAMP_URI = f"https://{_TIMESTAMP_PATH}"
TIMESTAMP_KEY = f"{_TIMESTAMP_PATH}/timestamp"
_TRACE_PATH = "github.com/a2aproject/a2a-samples/extensions/traceability/v1"
TRACEABILITY_URI = f"https://{_TRACE_PATH}"
TRACEABILITY_KEY = f"{_TRACE_PATH}/traceability"

FINAL_STATES = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
        TaskState.TASK_STATE_INPUT_REQUIRED,
        TaskState.TASK_STATE_AUTH_REQUIRED,
    }
)


def _rfc3339(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat()


class Extension(Protocol):
    """What ``ExtendedExecutor.declare`` needs of an extension."""

    uri: str

    def agent_extension(self) -> AgentExtension: ...


def _requested(context: RequestContext, uri: str) -> bool:
    return uri in context.requested_extensions


class TimestampExtension:
    """Stamps what the agent says with the time it said it (existing stamps are kept)."""

    uri = TIMESTAMP_URI

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now

    def agent_extension(self) -> AgentExtension:
        return AgentExtension(
            uri=self.uri, description="Adds RFC 3339 timestamps to messages and artifacts."
        )

    def stamp(self, event: object) -> None:
        for item in _said(event):
            if TIMESTAMP_KEY not in item.metadata:
                item.metadata[TIMESTAMP_KEY] = _rfc3339(self._now())
                if isinstance(item, Message) and self.uri not in item.extensions:
                    item.extensions.append(self.uri)


def _said(event: object) -> list[Message | Artifact]:
    """The agent's messages and artifacts inside an event (never the user's messages)."""
    if isinstance(event, TaskStatusUpdateEvent):
        return [event.status.message] if event.status.HasField("message") else []
    if isinstance(event, TaskArtifactUpdateEvent):
        return [event.artifact]
    if isinstance(event, Message):
        return [event] if event.role == Role.ROLE_AGENT else []
    if isinstance(event, Task):
        found: list[Message | Artifact] = list(event.artifacts)
        found += [m for m in event.history if m.role == Role.ROLE_AGENT]
        if event.status.HasField("message"):
            found.append(event.status.message)
        return found
    return []


@dataclass
class TraceStep:
    """One step of a trace, in a2a-samples' ``TraceRecord`` shape."""

    name: str
    call_type: str = "AGENT"
    parent_step_id: str | None = None
    step_id: str = field(default_factory=lambda: f"step-{uuid.uuid4()}")
    trace_id: str = ""
    parameters: dict[str, Any] | None = None
    cost: float | None = None
    total_tokens: int | None = None
    additional_attributes: dict[str, Any] = field(default_factory=dict)
    start: float = field(default_factory=time.time)
    end: float | None = None
    error: str | None = None

    def finish(self, error: str | None = None) -> None:
        if self.end is None:
            self.end = time.time()
            self.error = error

    def as_dict(self) -> dict[str, Any]:
        end = self.end if self.end is not None else time.time()
        return {
            "step_id": self.step_id,
            "trace_id": self.trace_id,
            "parent_step_id": self.parent_step_id,
            "call_type": self.call_type,
            "name": self.name,
            "parameters": self.parameters,
            "cost": self.cost,
            "total_tokens": self.total_tokens,
            "additional_attributes": self.additional_attributes,
            "latency": round((end - self.start) * 1000),
            "start_time": _rfc3339(self.start),
            "end_time": _rfc3339(end),
            "error": self.error,
        }


@dataclass
class ResponseTrace:
    """The steps of one request's handling; ``trace_id`` ties it to the W3C trace."""

    trace_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    parent_span_id: str | None = None
    steps: list[TraceStep] = field(default_factory=list)

    def add(self, step: TraceStep) -> TraceStep:
        step.trace_id = self.trace_id
        self.steps.append(step)
        return step

    def as_dict(self) -> dict[str, Any]:
        return {"trace_id": self.trace_id, "steps": [s.as_dict() for s in self.steps]}


_CURRENT: contextvars.ContextVar[tuple[ResponseTrace, str] | None] = contextvars.ContextVar(
    "rollwise_a2a_trace", default=None
)


@contextmanager
def trace_step(name: str, call_type: str = "TOOL", **attributes: Any) -> Iterator[TraceStep | None]:
    """Record a step of the current request's trace (none when the client did not activate
    traceability: then this does nothing)."""
    current = _CURRENT.get()
    if current is None:
        yield None
        return
    trace, parent = current
    step = trace.add(TraceStep(name, call_type, parent, additional_attributes=dict(attributes)))
    token = _CURRENT.set((trace, step.step_id))
    try:
        yield step
    except BaseException as exc:
        step.finish(error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        step.finish()
        _CURRENT.reset(token)


class TraceabilityExtension:
    """Builds a ``ResponseTrace`` per request and attaches it to the final answer."""

    uri = TRACEABILITY_URI

    def __init__(self, agent_name: str = "agent") -> None:
        self.agent_name = agent_name

    def agent_extension(self) -> AgentExtension:
        return AgentExtension(
            uri=self.uri, description="Adds a response trace (steps and latencies) to answers."
        )

    def start(self, context: RequestContext) -> ResponseTrace:
        """A trace whose id is the request's W3C trace id when it has a ``traceparent``."""
        headers = context.call_context.state.get("headers", {}) if context.call_context else {}
        parts = str(headers.get("traceparent", "")).split("-")
        valid = len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16
        if valid:
            return ResponseTrace(trace_id=parts[1], parent_span_id=parts[2])
        return ResponseTrace()

    @staticmethod
    def attach(event: object, trace: ResponseTrace) -> bool:
        """Put the trace on the answer if ``event`` is the final one; ``True`` if it was."""
        target: Message | None = None
        if isinstance(event, TaskStatusUpdateEvent) and event.status.state in FINAL_STATES:
            if not event.status.HasField("message"):
                event.status.message.CopyFrom(
                    Message(message_id=str(uuid.uuid4()), role=Role.ROLE_AGENT)
                )
            target = event.status.message
        elif isinstance(event, Message) and event.role == Role.ROLE_AGENT:
            target = event
        elif (
            isinstance(event, Task)
            and event.status.state in FINAL_STATES
            and event.status.HasField("message")
        ):
            target = event.status.message
        if target is None:
            return False
        for step in trace.steps:
            step.finish()
        target.metadata[TRACEABILITY_KEY] = trace.as_dict()
        if TRACEABILITY_URI not in target.extensions:
            target.extensions.append(TRACEABILITY_URI)
        return True


class _ExtendingQueue(EventQueue):
    """The executor's queue, with each event stamped and the trace attached on the way."""

    def __init__(
        self, inner: EventQueue, stamp: TimestampExtension | None, trace: ResponseTrace | None
    ) -> None:
        self._inner = inner
        self._stamp = stamp
        self._trace = trace

    async def enqueue_event(self, event: Any) -> None:
        if self._trace is not None and TraceabilityExtension.attach(event, self._trace):
            self._trace = None  # once, on the final answer
        if self._stamp is not None:
            self._stamp.stamp(event)
        await self._inner.enqueue_event(event)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class ExtendedExecutor(AgentExecutor):
    """An ``AgentExecutor`` with the extensions above, each acting only when requested."""

    def __init__(
        self,
        inner: AgentExecutor,
        extensions: Sequence[Extension],
        required: Collection[str] = (),
    ) -> None:
        """``required``: URIs a client must activate; a call without them is rejected with
        -32008 (ExtensionSupportRequired), as the A2A spec asks of a required extension."""
        self.inner = inner
        self.extensions = list(extensions)
        self.required = frozenset(required)

    @staticmethod
    def declare(card: AgentCard, extensions: Sequence[Extension]) -> AgentCard:
        """Add the extensions to the card's ``capabilities.extensions`` (once each)."""
        present = {e.uri for e in card.capabilities.extensions}
        for extension in extensions:
            if extension.uri not in present:
                card.capabilities.extensions.append(extension.agent_extension())
        return card

    def _find(self, kind: type[Any]) -> Any:
        return next((e for e in self.extensions if isinstance(e, kind)), None)

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        missing = sorted(self.required - context.requested_extensions)
        if missing:
            raise ExtensionSupportRequiredError(
                f"this agent requires the extension{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)}; activate it with the A2A-Extensions header"
            )
        stamp: TimestampExtension | None = self._find(TimestampExtension)
        tracer: TraceabilityExtension | None = self._find(TraceabilityExtension)
        if stamp is not None and not _requested(context, stamp.uri):
            stamp = None
        trace = None
        if tracer is not None and _requested(context, tracer.uri):
            trace = tracer.start(context)
        if stamp is None and trace is None:
            await self.inner.execute(context, event_queue)
            return
        queue = _ExtendingQueue(event_queue, stamp, trace)
        if trace is None:
            await self.inner.execute(context, queue)
            return
        root = trace.add(TraceStep(tracer.agent_name if tracer else "agent", "AGENT"))
        token = _CURRENT.set((trace, root.step_id))
        try:
            await self.inner.execute(context, queue)
        finally:
            root.finish()
            _CURRENT.reset(token)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        await self.inner.cancel(context, event_queue)


# the client side


def activate(*uris: str) -> dict[str, str]:
    """Service parameters (HTTP headers) that activate extensions, for a2a-sdk's
    ``ClientCallContext(service_parameters=activate(TIMESTAMP_URI, TRACEABILITY_URI))`` or
    any HTTP client."""
    return {"A2A-Extensions": ", ".join(uris)}


def _metadata(item: object) -> Mapping[str, Any]:
    if isinstance(item, Mapping):
        meta = item.get("metadata") or {}
        return meta if isinstance(meta, Mapping) else {}
    if hasattr(item, "metadata"):
        return MessageToDict(item.metadata) if item.metadata else {}
    return {}


def read_timestamp(item: object) -> datetime.datetime | None:
    """The timestamp on a message or artifact (a2a-sdk object or JSON dict), if any."""
    value = _metadata(item).get(TIMESTAMP_KEY)
    return datetime.datetime.fromisoformat(value) if isinstance(value, str) else None


def read_trace(item: object) -> dict[str, Any] | None:
    """The response trace on a message (a2a-sdk object or JSON dict), if any."""
    value = _metadata(item).get(TRACEABILITY_KEY)
    return dict(value) if isinstance(value, Mapping) else None
