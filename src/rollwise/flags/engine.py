"""Flag evaluation with flagd's own evaluation core, answered in OFREP's shapes.

``FlagEngine`` holds one app's flags (flagd definitions) in a ``FlagdCore`` and evaluates a
flag for a context as the OpenFeature Remote Evaluation Protocol answers it: ``(200, {key,
value, reason, variant, metadata})``, or an error status with ``{key, errorCode,
errorDetails}`` (404 ``FLAG_NOT_FOUND``, 400 ``PARSE_ERROR`` / ``TARGETING_KEY_MISSING`` /
``INVALID_CONTEXT`` / ``TYPE_MISMATCH``, 500 ``GENERAL``). flagd infers a flag's type from
its variants; so does the engine, to call the core's resolver of that type.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode, OpenFeatureError
from openfeature.flag_evaluation import FlagResolutionDetails

from rollwise.spec.flags import flag_kind

__all__ = ["FlagEngine", "OfrepAnswer"]

OfrepAnswer = tuple[int, dict[str, Any]]
_STATUS = {
    ErrorCode.FLAG_NOT_FOUND: 404,
    ErrorCode.PARSE_ERROR: 400,
    ErrorCode.TARGETING_KEY_MISSING: 400,
    ErrorCode.INVALID_CONTEXT: 400,
    ErrorCode.TYPE_MISMATCH: 400,
}


class FlagEngine:
    def __init__(self) -> None:
        self._core = FlagdCore()
        self._flags: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def load(self, flags: dict[str, dict[str, Any]]) -> None:
        """Replace the flags (flagd definitions by key); the core keeps its own copies."""
        complete = {k: {"state": "ENABLED", **copy.deepcopy(v)} for k, v in flags.items()}
        with self._lock:
            self._core.set_flags({"flags": copy.deepcopy(complete)})
            self._flags = complete

    def keys(self) -> list[str]:
        return sorted(self._flags)

    def evaluate(self, key: str, context: dict[str, Any]) -> OfrepAnswer:
        """One flag for ``context`` (``targetingKey`` and attributes), as OFREP answers."""
        with self._lock:
            definition = self._flags.get(key)
        if definition is None:
            return 404, _error(key, ErrorCode.FLAG_NOT_FOUND, f"flag {key} is not defined")
        attributes = {k: v for k, v in context.items() if k != "targetingKey"}
        targeting_key = context.get("targetingKey")
        if targeting_key is not None and not isinstance(targeting_key, str):
            return 400, _error(key, ErrorCode.INVALID_CONTEXT, "targetingKey must be a string")
        evaluation = EvaluationContext(targeting_key=targeting_key, attributes=attributes)
        resolver = {
            "boolean": self._core.resolve_boolean_value,
            "string": self._core.resolve_string_value,
            "integer": self._core.resolve_integer_value,
            "float": self._core.resolve_float_value,
            "object": self._core.resolve_object_value,
        }[flag_kind(definition["variants"])]
        try:
            details: FlagResolutionDetails[Any] = resolver(key, None, evaluation)  # type: ignore[operator]
        except OpenFeatureError as exc:
            return _STATUS.get(exc.error_code, 500), _error(
                key, exc.error_code, exc.error_message or str(exc)
            )
        answer: dict[str, Any] = {
            "key": key,
            "value": details.value,
            "reason": _reason(details.reason),
            "metadata": dict(details.flag_metadata or {}),
        }
        if details.variant is not None:
            answer["variant"] = details.variant
        return 200, answer

    def evaluate_all(self, context: dict[str, Any]) -> list[dict[str, Any]]:
        """Every flag for ``context`` (OFREP's bulk evaluation)."""
        return [self.evaluate(key, context)[1] for key in self.keys()]


def _reason(reason: object) -> str:
    value = getattr(reason, "value", reason)
    return str(value) if value is not None else "UNKNOWN"


def _error(key: str, code: ErrorCode, details: str) -> dict[str, Any]:
    return {"key": key, "errorCode": str(code.value), "errorDetails": details}
