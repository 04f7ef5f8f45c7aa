"""What an A2A exchange says: the method called, the conversation it names, how it ended.

An a2a-sdk agent answers its failures inside successful HTTP answers: an exception in the
executor is a JSON-RPC error (``-32603``) in an HTTP 200, and a task that ends badly is a
successful result whose ``status.state`` is failed. A release tool that reads HTTP statuses
only sees none of it. This module reads the three shapes an A2A answer takes:

- a JSON-RPC response (1.0 methods such as ``SendMessage`` and the 0.3 ones such as
  ``message/send``): ``error.code``, or the task, message or update in ``result``;
- an HTTP+JSON (REST) answer: the same objects without the envelope, and errors as
  ``{"error": {"code": <HTTP status>, "status": "INTERNAL", "details": [{"reason": …}]}}``;
- a stream of server-sent events, each one of the above: an error event, or the last status
  update's state, is the request's outcome, counted once.

Its outcomes and method names are the labels of ``labels.py``.

Decoding uses msgspec with structures that declare only the fields read here: the rest of an
answer (history, artifacts, parts) is skipped in C, which keeps the proxy's cost per A2A
request near a microsecond (docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from rollwise.a2a.labels import OK, code_label, method_label

# methods whose ``params.id`` is a task's id (1.0 push-config methods name it ``taskId``)
_TASK_ID_METHODS = frozenset(
    {
        "GetTask",
        "CancelTask",
        "SubscribeToTask",
        "tasks/get",
        "tasks/cancel",
        "tasks/resubscribe",
        "tasks/pushNotificationConfig/get",
        "tasks/pushNotificationConfig/list",
        "tasks/pushNotificationConfig/delete",
    }
)

# the REST binding's ``google.rpc.ErrorInfo`` reasons, as the JSON-RPC codes they stand for
_REASONS = {
    "TASK_NOT_FOUND": -32001,
    "TASK_NOT_CANCELABLE": -32002,
    "PUSH_NOTIFICATION_NOT_SUPPORTED": -32003,
    "UNSUPPORTED_OPERATION": -32004,
    "CONTENT_TYPE_NOT_SUPPORTED": -32005,
    "INVALID_AGENT_RESPONSE": -32006,
    "EXTENDED_AGENT_CARD_NOT_CONFIGURED": -32007,
    "EXTENSION_SUPPORT_REQUIRED": -32008,
    "VERSION_NOT_SUPPORTED": -32009,
    "INVALID_PARAMS": -32602,
    "INVALID_REQUEST": -32600,
    "METHOD_NOT_FOUND": -32601,
    "INTERNAL_ERROR": -32603,
}
# task states (1.0 names and 0.3 ones) that are outcomes of their own; the others are ``ok``
# states in which a task goes on: its conversation will come back
_OPEN = frozenset(
    {
        "TASK_STATE_SUBMITTED",
        "TASK_STATE_WORKING",
        "TASK_STATE_INPUT_REQUIRED",
        "TASK_STATE_AUTH_REQUIRED",
        "submitted",
        "working",
        "input-required",
        "auth-required",
    }
)
_STATES = {
    "TASK_STATE_FAILED": "failed",
    "TASK_STATE_REJECTED": "rejected",
    "TASK_STATE_CANCELED": "canceled",
    "TASK_STATE_INPUT_REQUIRED": "input-required",
    "TASK_STATE_AUTH_REQUIRED": "auth-required",
    "failed": "failed",
    "rejected": "rejected",
    "canceled": "canceled",
    "input-required": "input-required",
    "auth-required": "auth-required",
}

__all__ = [
    "Answer",
    "Call",
    "EventStream",
    "read_answer",
    "read_call",
    "rest_call",
]


@dataclass(frozen=True, slots=True)
class Call:
    """What a request asks: its method's label and the task or context it continues."""

    method: str
    task: str | None = None
    context: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """How an exchange ended (``outcome``), the task and context the answer is about, and
    whether that task is still open (submitted, working, or waiting for input or auth: the
    conversation goes on; a completed, failed or canceled one is over)."""

    outcome: str
    task: str | None = None
    context: str | None = None
    open: bool = False


# Only the fields read below are declared: msgspec skips the others without building them.


class _Message(msgspec.Struct, rename="camel"):
    task_id: object = None
    context_id: object = None


class _Params(msgspec.Struct, rename="camel"):
    message: _Message | None = None
    id: object = None
    task_id: object = None
    context_id: object = None


class _Request(msgspec.Struct):
    jsonrpc: object = None
    method: object = None
    params: _Params | None = None


class _Status(msgspec.Struct):
    state: object = None


class _Node(msgspec.Struct, rename="camel"):
    """A task, a message or an update (1.0 names them by a wrapper key, 0.3 by ``kind``)."""

    id: object = None
    context_id: object = None
    task_id: object = None
    kind: object = None
    status: _Status | None = None


class _Result(_Node, rename="camel"):
    task: _Node | None = None
    message: _Node | None = None
    status_update: _Node | None = None
    artifact_update: _Node | None = None


class _Error(msgspec.Struct):
    code: object = None
    status: object = None
    details: object = None  # REST: a list of google.rpc typed details


class _Document(_Result, rename="camel"):
    """A JSON-RPC response, or a REST answer (a node, maybe wrapped)."""

    jsonrpc: object = None
    result: _Result | None = None
    error: _Error | None = None


_requests = msgspec.json.Decoder(_Request)
_params = msgspec.json.Decoder(_Params)
_documents = msgspec.json.Decoder(_Document)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def read_call(body: bytes) -> Call | None:
    """A JSON-RPC request body's call; ``None`` when the body is not one (a batch, not
    JSON, no method): it is then routed and judged as plain HTTP."""
    try:
        request = _requests.decode(body)
    except msgspec.DecodeError:
        return None
    name = request.method
    if not isinstance(name, str) or request.jsonrpc is None:
        return None
    params = request.params
    if params is None:
        return Call(method_label(name))
    task = _text(params.task_id)
    if task is None and name in _TASK_ID_METHODS:
        task = _text(params.id)
    context = _text(params.context_id)
    message = params.message
    if message is not None:
        task = task or _text(message.task_id)
        context = context or _text(message.context_id)
    return Call(method_label(name), task, context)


_REST_TASKS = b"/tasks/"


def rest_call(method: bytes, path: bytes, body: bytes | None) -> Call | None:
    """The HTTP+JSON binding's call at ``path`` (any prefix: ``/rest``, a tenant), ``None``
    when the path is not one of its operations."""
    path = path.split(b"?", 1)[0].rstrip(b"/")
    if path.endswith((b"/message:send", b"/message:stream")) and method == b"POST":
        name = "SendMessage" if path.endswith(b":send") else "SendStreamingMessage"
        if not body:
            return Call(name)
        try:
            params = _params.decode(body)
        except msgspec.DecodeError:
            return Call(name)
        message = params.message
        if message is None:
            return Call(name)
        return Call(name, _text(message.task_id), _text(message.context_id))
    at = path.rfind(_REST_TASKS)
    if at < 0:
        if path.endswith(b"/tasks") and method == b"GET":
            return Call("ListTasks")
        if path.endswith(b"/extendedAgentCard") and method == b"GET":
            return Call("GetExtendedAgentCard")
        return None
    rest = path[at + len(_REST_TASKS) :]
    # /tasks/{id}/pushNotificationConfigs[/{config}] names the task before the slash
    task_part, _, more = rest.partition(b"/")
    task, _, verb = task_part.partition(b":")
    if not task:
        return None
    named = _rest_method(method, verb, more)
    return Call(named, task.decode("latin-1")) if named is not None else None


def _rest_method(method: bytes, verb: bytes, more: bytes) -> str | None:
    if more.startswith(b"pushNotificationConfigs"):
        named = b"/" in more
        if method == b"POST" and not named:
            return "CreateTaskPushNotificationConfig"
        if method == b"GET":
            return "GetTaskPushNotificationConfig" if named else "ListTaskPushNotificationConfigs"
        return "DeleteTaskPushNotificationConfig" if method == b"DELETE" else None
    if more:
        return None
    if verb == b"cancel" and method == b"POST":
        return "CancelTask"
    if verb == b"subscribe":
        return "SubscribeToTask"
    return "GetTask" if not verb and method == b"GET" else None


def _error_outcome(error: _Error, rest: bool, http_status: int) -> str:
    if not rest:
        return code_label(error.code)
    details = error.details if isinstance(error.details, list) else []
    for detail in details:
        reason = detail.get("reason") if isinstance(detail, dict) else None
        if isinstance(reason, str) and reason in _REASONS:
            return str(_REASONS[reason])
    if error.status == "INTERNAL":
        return "-32603"  # what an exception in a REST handler becomes
    status = error.code if isinstance(error.code, int) else http_status
    if status >= 500:
        return "server-error"
    return "other-error"


def _about(node: _Node) -> tuple[str | None, str | None, str | None, bool]:
    """A node's task id, context id, outcome by its state (``None``: it has no state), and
    whether the task is open."""
    if node.task_id is not None:
        task = _text(node.task_id)
    elif node.status is not None or node.kind == "task":
        task = _text(node.id)  # a task: its own id
    else:
        task = None
    state = node.status.state if node.status is not None else None
    outcome = _STATES.get(state, OK) if isinstance(state, str) else None
    return task, _text(node.context_id), outcome, state in _OPEN


# (error outcome or None, state outcome or None, task, context, open)
_Reading = tuple[str | None, str | None, str | None, str | None, bool]


def _read(body: bytes, http_status: int) -> _Reading | None:
    try:
        document = _documents.decode(body)
    except msgspec.DecodeError:
        return None
    rest = document.jsonrpc is None
    if document.error is not None:
        return _error_outcome(document.error, rest, http_status), None, None, None, False
    result: _Result | None = document if rest else document.result
    if result is None:
        return None
    node: _Node = (
        result.task or result.status_update or result.message or result.artifact_update or result
    )
    task, context, outcome, open_ = _about(node)
    return None, outcome, task, context, open_


def read_answer(body: bytes, http_status: int = 200) -> Answer | None:
    """A JSON answer's outcome and the task and context it is about; ``None`` when it is not
    an A2A answer (not JSON, or neither a result nor an error)."""
    reading = _read(body, http_status)
    if reading is None:
        return None
    error, state, task, context, open_ = reading
    return Answer(error or state or OK, task, context, open_ and error is None)


MAX_EVENT_BYTES = 64 * 1024


class EventStream:
    """An SSE answer read as it passes, event by event; never more than one event held.

    The request's outcome is the first error (an ``event: error``, or an event whose data is
    an error), else the last state a task or status update reported. An event over
    ``MAX_EVENT_BYTES`` is skipped unread.
    """

    __slots__ = (
        "context",
        "data",
        "error",
        "event",
        "open",
        "outcome",
        "partial",
        "skipping",
        "task",
    )

    def __init__(self) -> None:
        self.partial = b""  # an unfinished line
        self.data: list[bytes] = []
        self.event = b""
        self.skipping = False
        self.error: str | None = None
        self.outcome = OK
        self.task: str | None = None
        self.context: str | None = None
        self.open = False  # the task's state so far leaves it open

    def feed(self, chunk: bytes) -> None:
        text = self.partial + chunk if self.partial else chunk
        lines = text.split(b"\n")
        self.partial = lines.pop()
        if len(self.partial) > MAX_EVENT_BYTES:
            self.partial = b""
            self.skipping = True
        for line in lines:
            self._line(line.rstrip(b"\r"))

    def _line(self, line: bytes) -> None:
        if not line:
            self._dispatch()
            return
        if self.skipping:
            return
        if line.startswith(b"data:"):
            self.data.append(line[6:] if line[5:6] == b" " else line[5:])
            if sum(len(d) for d in self.data) > MAX_EVENT_BYTES:
                self.data = []
                self.skipping = True
        elif line.startswith(b"event:"):
            self.event = line[6:].strip()

    def _dispatch(self) -> None:
        data, event = self.data, self.event
        self.data, self.event, self.skipping = [], b"", False
        if not data:
            return
        reading = _read(b"\n".join(data), 200)
        if reading is None:
            if event == b"error" and self.error is None:
                self.error = "server-error"
            return
        error, state, task, context, open_ = reading
        if self.task is None:
            self.task = task
        if self.context is None:
            self.context = context
        if error is not None and self.error is None:
            self.error = error
        elif state is not None:
            self.outcome, self.open = state, open_

    def finish(self) -> Answer:
        """The stream's outcome once it ended (an unterminated last event counts too)."""
        if self.partial:
            self._line(self.partial.rstrip(b"\r"))
            self.partial = b""
        self._dispatch()
        return Answer(
            self.error or self.outcome, self.task, self.context, self.open and not self.error
        )
