"""``monitor_operation(name)``: a Prometheus histogram and a counter by outcome, an
OpenTelemetry span, and a structlog line with the trace id when the operation fails.

The span comes from the process' tracer provider (none configured: OpenTelemetry's no-op,
almost free). A line per successful call would cost more than the call it watches, so only
failures are logged (``log_success=True`` logs every call).
"""

from __future__ import annotations

import functools
import time
from typing import Any

from opentelemetry import context, trace

from rollwise.toolkit._wrap import Around
from rollwise.toolkit.metrics import OPERATIONS, SECONDS

__all__ = ["monitor_operation"]


@functools.cache
def logger() -> Any:
    """The toolkit's structlog logger, made on first use: importing structlog (and the rich
    it brings) would cost ``import rollwise.toolkit`` a third of its time."""
    import structlog

    return structlog.get_logger("rollwise.toolkit")


_tracer = trace.get_tracer("rollwise.toolkit")


class monitor_operation(Around):
    """Measure, count, trace and (on failure) log each call of ``name``."""

    def __init__(self, name: str, *, log_success: bool = False) -> None:
        self.name = name
        self.log_success = log_success
        self._seconds = SECONDS.labels(name)
        self._ok = OPERATIONS.labels(name, "ok")
        self._error = OPERATIONS.labels(name, "error")

    def enter(self) -> Any:
        span = _tracer.start_span(self.name)
        attached = context.attach(trace.set_span_in_context(span))  # inner spans: children
        return span, attached, time.perf_counter()

    def exit(self, token: Any, error: BaseException | None) -> None:
        span, attached, started = token
        elapsed = time.perf_counter() - started
        context.detach(attached)
        self._seconds.observe(elapsed)
        if error is None:
            self._ok.inc()
            if self.log_success:
                logger().info("operation done", operation=self.name, seconds=elapsed, **_ids(span))
        else:
            self._error.inc()
            span.record_exception(error)
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)))
            logger().warning(
                "operation failed",
                operation=self.name,
                seconds=round(elapsed, 6),
                error=f"{type(error).__name__}: {error}",
                **_ids(span),
            )
        span.end()


def _ids(span: Any) -> dict[str, str]:
    context = span.get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}
