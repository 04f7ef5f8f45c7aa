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
answer (history, artifacts, parts) is skipped in C. It is faster than any reading of the
bytes in Python: anchored regular expressions for a2a-sdk's own layouts took 1.1-1.3 µs
where msgspec takes 0.4 (a call) and 0.9 (an answer) (docs/performance.md).
"""

from __future__ import annotations

import msgspec

from rollwise.a2a.labels import ERROR_OUTCOMES, OK, code_label, method_label

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


class Call(msgspec.Struct, frozen=True, gc=False):
    """What a request asks: its method's label and the task or context it continues.
    (msgspec structures: made in a tenth of a frozen dataclass' time, once per request.)"""

    method: str
    task: str | None = None
    context: str | None = None


class Answer(msgspec.Struct, frozen=True, gc=False):
    """How an exchange ended (``outcome``), the task and context the answer is about, and
    whether that task is still open (submitted, working, or waiting for input or auth: the
    conversation goes on; a completed, failed or canceled one is over)."""

    outcome: str
    task: str | None = None
    context: str | None = None
    open: bool = False


# Only the fields read below are declared: msgspec skips the others without building them.


class _Message(msgspec.Struct, rename="camel"):
    task_id: str | None = None
    context_id: str | None = None


class _Params(msgspec.Struct, rename="camel"):
    message: _Message | None = None
    id: object = None  # a task's id, or (1.0 push configs) a config's
    task_id: str | None = None
    context_id: str | None = None


class _Request(msgspec.Struct):
    jsonrpc: object = None
    method: str | None = None
    params: _Params | None = None


class _Status(msgspec.Struct):
    state: str | None = None


class _Node(msgspec.Struct, rename="camel"):
    """A task, a message or an update (1.0 names them by a wrapper key, 0.3 by ``kind``)."""

    id: object = None  # a task's own; a JSON-RPC response's (a number or a string)
    context_id: str | None = None
    task_id: str | None = None
    kind: str | None = None
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
    if name is None or request.jsonrpc is None:
        return None
    params = request.params
    if params is None:
        return Call(method_label(name))
    task = params.task_id
    if task is None and name in _TASK_ID_METHODS:
        task = _text(params.id)
    context = params.context_id
    message = params.message
    if message is not None:
        task = task or message.task_id
        context = context or message.context_id
    return Call(method_label(name), task or None, context or None)


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
        return Call(name, message.task_id or None, message.context_id or None)
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


def _read(body: bytes, http_status: int) -> Answer | None:
    """An answer's outcome: an error's label, a task state's, or ``""`` when it says no
    state (a message, an artifact update); ``None`` when it is not an A2A answer."""
    try:
        document = _documents.decode(body)
    except msgspec.DecodeError:
        return None
    rest = document.jsonrpc is None
    if document.error is not None:
        return Answer(_error_outcome(document.error, rest, http_status))
    result: _Result | None = document if rest else document.result
    if result is None:
        return None
    node: _Node = (
        result.task or result.status_update or result.message or result.artifact_update or result
    )
    if rest and node is result and node.status is None and node.context_id is None:
        return None  # JSON that names no task, message or update: not an A2A answer
    task = node.task_id
    if task is None and (node.status is not None or node.kind == "task"):
        task = node.id if isinstance(node.id, str) else None  # a task: its own id
    status = node.status
    if status is None or status.state is None:
        return Answer("", task or None, node.context_id or None)
    state = status.state
    return Answer(_STATES.get(state, OK), task or None, node.context_id or None, state in _OPEN)


def read_answer(body: bytes, http_status: int = 200) -> Answer | None:
    """A JSON answer's outcome and the task and context it is about; ``None`` when it is not
    an A2A answer (not JSON, or neither a result nor an error)."""
    answer = _read(body, http_status)
    if answer is not None and not answer.outcome:
        return Answer(OK, answer.task, answer.context)
    return answer


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
        "read",
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
        self.read = False  # an A2A event was read

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
        answer = _read(b"\n".join(data), 200)
        if answer is None:
            if event == b"error" and self.error is None:
                self.error = "server-error"
            return
        self.read = True
        if self.task is None:
            self.task = answer.task
        if self.context is None:
            self.context = answer.context
        outcome = answer.outcome
        if outcome in ERROR_OUTCOMES:
            if self.error is None:
                self.error = outcome
        elif outcome:
            self.outcome, self.open = outcome, answer.open

    def finish(self) -> Answer | None:
        """The stream's outcome once it ended (an unterminated last event counts too);
        ``None`` when no A2A event came."""
        if self.partial:
            self._line(self.partial.rstrip(b"\r"))
            self.partial = b""
        self._dispatch()
        if not self.read and self.error is None:
            return None
        return Answer(
            self.error or self.outcome, self.task, self.context, self.open and not self.error
        )
