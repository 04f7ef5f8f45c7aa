"""``handle_errors(retry=…, circuit_breaker=…, categories=…)``: retries with backoff
(stamina), circuit breakers (purgatory), and errors counted by category.

purgatory rather than pybreaker: its breakers are plain objects used as context managers
with the same in-memory state for synchronous and ``async`` code (pybreaker's async path
needs Tornado), and it reports every state change to listeners, which is how the breaker's
state becomes a metric here.

- A call is retried only when its error is of a transient category (``timeout``,
  ``connection``, ``http_5xx``), up to ``attempts`` times within ``timeout`` seconds, with
  exponential backoff and jitter from ``wait_initial``.
- Each attempt goes through the named breaker: after ``threshold`` consecutive failures it
  opens and calls fail at once with ``CircuitOpenError`` (never retried) until
  ``recovery`` seconds have passed; then one call is let through (half-open) and its
  success closes the breaker again.
- Every error is counted by category in ``rollwise_toolkit_errors_total`` and kept in
  ``error_stats()``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar, cast

import stamina
from purgatory import SyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from rollwise.toolkit.metrics import BREAKER_OPENED, BREAKER_STATE, ERRORS, RETRIES

__all__ = ["CircuitOpenError", "breaker_states", "categorize", "error_stats", "handle_errors"]

F = TypeVar("F", bound=Callable[..., Any])
TRANSIENT = frozenset({"timeout", "connection", "http_5xx"})
_STATES = {"closed": 0, "half-opened": 1, "opened": 2}


class CircuitOpenError(RuntimeError):
    """A call refused because its circuit breaker is open."""


_breakers = SyncCircuitBreakerFactory()
_states: dict[str, str] = {}
_stats: Counter[tuple[str, str]] = Counter()
_lock = threading.Lock()


def _listen(name: str, kind: str, payload: Any) -> None:
    if kind == "state_changed":
        state = str(payload.state)
        _states[name] = state
        BREAKER_STATE.labels(name).set(_STATES.get(state, 0))
        if state == "opened":
            BREAKER_OPENED.labels(name).inc()
    elif kind == "circuit_breaker_created":
        _states[name] = "closed"
        BREAKER_STATE.labels(name).set(0)


_breakers.add_listener(_listen)


def breaker_states() -> dict[str, str]:
    """Each circuit breaker's state: ``closed``, ``half-opened`` or ``opened``."""
    return dict(_states)


def error_stats() -> dict[str, dict[str, int]]:
    """Errors counted so far: operation → category → count."""
    with _lock:
        out: dict[str, dict[str, int]] = {}
        for (operation, category), n in _stats.items():
            out.setdefault(operation, {})[category] = n
        return out


def categorize(
    error: BaseException, categories: Mapping[type[BaseException], str] | None = None
) -> str:
    """An error's category: the first matching entry of ``categories``, else a default."""
    for kind, name in (categories or {}).items():
        if isinstance(error, kind):
            return name
    if isinstance(error, CircuitOpenError):
        return "circuit_open"
    httpx = sys.modules.get("httpx")  # an httpx error exists only if httpx was imported
    if httpx is not None:
        if isinstance(error, httpx.HTTPStatusError):
            return "http_5xx" if error.response.status_code >= 500 else "http_4xx"
        if isinstance(error, httpx.TimeoutException):
            return "timeout"
        if isinstance(error, httpx.TransportError):
            return "connection"
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ConnectionError):
        return "connection"
    if isinstance(error, ValueError | TypeError | KeyError):
        return "input"
    return "internal"


class handle_errors:
    def __init__(
        self,
        retry: bool | int = False,
        circuit_breaker: str | None = None,
        categories: Mapping[type[BaseException], str] | None = None,
        *,
        name: str | None = None,
        attempts: int = 3,
        timeout: float = 10.0,
        wait_initial: float = 0.05,
        wait_max: float = 2.0,
        wait_jitter: float | None = None,
        threshold: int = 5,
        recovery: float = 30.0,
    ) -> None:
        self.attempts = attempts if retry is True else int(retry) if retry else 1
        self.breaker = circuit_breaker
        self.categories = categories
        self.name = name
        self.timeout = timeout
        self.wait_initial = wait_initial
        self.wait_max = wait_max
        self.wait_jitter = wait_initial if wait_jitter is None else wait_jitter
        if circuit_breaker is not None:
            _breakers.get_breaker(circuit_breaker, threshold=threshold, ttl=recovery)

    def _count(self, operation: str, error: BaseException) -> str:
        category = categorize(error, self.categories)
        ERRORS.labels(operation, category).inc()
        with _lock:
            _stats[(operation, category)] += 1
        return category

    def _retryable(self, error: Exception) -> bool:
        return categorize(error, self.categories) in TRANSIENT

    @contextlib.contextmanager
    def _guard(self, operation: str) -> Iterator[None]:
        """One attempt: through the breaker (open: ``CircuitOpenError``), errors counted."""
        try:
            if self.breaker is None:
                yield
                return
            try:
                with _breakers.get_breaker(self.breaker):
                    yield
            except OpenedState:
                raise CircuitOpenError(f"circuit {self.breaker} is open; calls fail fast") from None
        except Exception as exc:
            self._count(operation, exc)
            raise

    def _retries(self) -> dict[str, Any]:
        return {
            "on": self._retryable,
            "attempts": self.attempts,
            "timeout": self.timeout,
            "wait_initial": self.wait_initial,
            "wait_max": self.wait_max,
            "wait_jitter": self.wait_jitter,
        }

    def __call__(self, func: F) -> F:
        operation = self.name or func.__name__
        retried = RETRIES.labels(operation)

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                first = True
                async for attempt in stamina.retry_context(**self._retries()):
                    with attempt, self._guard(operation):
                        if not first:
                            retried.inc()
                        first = False
                        return await func(*args, **kwargs)
                return None  # unreachable: stamina raises after the last attempt

            return cast(F, run_async)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            first = True
            for attempt in stamina.retry_context(**self._retries()):
                with attempt, self._guard(operation):
                    if not first:
                        retried.inc()
                    first = False
                    return func(*args, **kwargs)
            return None  # unreachable: stamina raises after the last attempt

        return cast(F, run)
