"""The words of A2A outcomes: method labels, outcome labels, and which are whose failure.

Kept apart from the decoding (``outcomes.py``) so that the spec and the CLI can name
outcomes without loading a JSON decoder. Outcomes are a bounded set of labels, so that they
can be Prometheus labels and per-second counters: ``ok``; the task states that are not plain
success (``failed``, ``rejected``, ``canceled``, ``input-required``, ``auth-required``); a
JSON-RPC or A2A error code as its number (``-32603``); ``server-error`` for the other codes
of JSON-RPC's server range (-32099..-32000) and REST errors ≥ 500 without a known reason;
``other-error`` for any other code. Methods are labelled by their 1.0 names
(``message/send`` is ``SendMessage``), ``other`` for names A2A does not define.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = [
    "CODES",
    "DEFAULT_FAILURES",
    "ERROR_OUTCOMES",
    "METHODS",
    "OK",
    "OUTCOMES",
    "code_label",
    "failing_outcomes",
    "method_label",
    "outcome_names",
    "told",
]

# 0.3 method names and the 1.0 names they became; a 1.0 name stands for itself
METHODS = {
    "message/send": "SendMessage",
    "message/stream": "SendStreamingMessage",
    "tasks/get": "GetTask",
    "tasks/cancel": "CancelTask",
    "tasks/resubscribe": "SubscribeToTask",
    "tasks/pushNotificationConfig/set": "CreateTaskPushNotificationConfig",
    "tasks/pushNotificationConfig/get": "GetTaskPushNotificationConfig",
    "tasks/pushNotificationConfig/list": "ListTaskPushNotificationConfigs",
    "tasks/pushNotificationConfig/delete": "DeleteTaskPushNotificationConfig",
    "agent/getAuthenticatedExtendedCard": "GetExtendedAgentCard",
}
METHODS.update({name: name for name in [*METHODS.values(), "ListTasks"]})
# JSON-RPC's own codes and A2A's (spec 1.0 §8), and what each means
CODES = {
    -32700: "parse error",
    -32600: "invalid request",
    -32601: "method not found",
    -32602: "invalid params",
    -32603: "internal error",
    -32001: "task not found",
    -32002: "task not cancelable",
    -32003: "push notifications not supported",
    -32004: "unsupported operation",
    -32005: "content type not supported",
    -32006: "invalid agent response",
    -32007: "extended agent card not configured",
    -32008: "extension support required",
    -32009: "version not supported",
}
OK = "ok"
STATE_OUTCOMES = ("failed", "rejected", "canceled", "input-required", "auth-required")
OUTCOMES = (
    OK,
    *STATE_OUTCOMES,
    *(str(code) for code in CODES),
    "server-error",
    "other-error",
)
# the agent's failures unless the spec says otherwise: its own errors and tasks that failed
DEFAULT_FAILURES = ("-32603", "-32006", "server-error", "failed", "rejected")
# an error's outcomes (its code's label); the others are what a result said
ERROR_OUTCOMES = frozenset(o for o in OUTCOMES if o[0] == "-" or o.endswith("-error"))


def method_label(name: str) -> str:
    """A method's label: its 1.0 name, ``other`` for a name A2A does not define."""
    return METHODS.get(name, "other")


def code_label(code: object) -> str:
    if isinstance(code, bool) or not isinstance(code, int):
        return "other-error"
    if code in CODES:
        return str(code)
    return "server-error" if -32099 <= code <= -32000 else "other-error"


def outcome_names(items: Iterable[str | int]) -> list[str]:
    """The spec's ``failureOutcomes`` as labels; raises ``ValueError`` naming an unknown one."""
    names = []
    for item in items:
        text = str(item).strip()
        if text not in OUTCOMES or text == OK:
            known = ", ".join(o for o in OUTCOMES if o != OK)
            raise ValueError(f"{item!r} is not an A2A outcome; known: {known}")
        names.append(text)
    return names


def failing_outcomes(items: Iterable[str | int]) -> frozenset[str]:
    return frozenset(outcome_names(items))


def told(outcomes: Mapping[str, int], limit: int = 3) -> str:
    """Counted exchanges for people, the most frequent first: ``412 × -32603 on
    SendMessage, 3 × failed on SendStreamingMessage`` (and how many more kinds)."""
    ranked = sorted(outcomes.items(), key=lambda item: (-item[1], item[0]))
    parts = []
    for said, count in ranked[:limit]:
        method, _, outcome = said.partition(" ")
        parts.append(f"{count} × {outcome} on {method}")
    if len(ranked) > limit:
        parts.append(f"{len(ranked) - limit} more kinds")
    return ", ".join(parts)
