"""``health_report`` and ``health_endpoint``: what an agent's health endpoint says about the
parts the toolkit runs — circuit breakers, HTTP pools, the memory watch — and the agent's
own checks.

An open breaker makes the agent ``degraded``, not unhealthy: its dependency is down, the
agent still answers (often from a fallback), and taking it out of rotation would only move
the same dependency failure to the other replicas. A failing check of the agent's own
(``checks``) makes it ``unhealthy`` and the endpoint answers 503, which is what rollwise's
readiness probe and a Kubernetes probe act on.
"""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from rollwise.toolkit.errors import breaker_states, error_stats

__all__ = ["health_endpoint", "health_report"]

Check = Callable[[], bool | Awaitable[bool]]
_started = time.time()


async def health_report(
    checks: Mapping[str, Check] | None = None,
    *,
    memory: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``status`` (``ok``, ``degraded``, ``unhealthy``), each check's result, the breakers,
    the pools (if ``rollwise.toolkit.http`` is in use), the memory watch's report, errors by
    category, uptime, and ``extra`` as given."""
    results: dict[str, Any] = {}
    for name, check in (checks or {}).items():
        try:
            outcome = check()
            if inspect.isawaitable(outcome):
                outcome = await outcome
            results[name] = "ok" if outcome else "failing"
        except Exception as exc:  # a check that raises is a failing check, said as such
            results[name] = f"failing: {type(exc).__name__}: {exc}"
    breakers = breaker_states()
    status = "ok"
    if any(state != "closed" for state in breakers.values()):
        status = "degraded"
    if any(result != "ok" for result in results.values()):
        status = "unhealthy"
    report: dict[str, Any] = {
        **(extra or {}),
        "status": status,
        "uptime_s": round(time.time() - _started, 3),
        "checks": results,
        "breakers": breakers,
        "errors": error_stats(),
    }
    http = sys.modules.get("rollwise.toolkit.http")  # pools exist only if it was imported
    if http is not None:
        report["pools"] = http.pool_stats()
    if memory is not None:
        report["memory"] = memory.report()
    return report


def health_endpoint(
    checks: Mapping[str, Check] | None = None,
    *,
    memory: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> Callable[[Any], Awaitable[Any]]:
    """A Starlette endpoint answering the report as JSON: 200 while ``ok`` or ``degraded``,
    503 when ``unhealthy``."""
    from starlette.responses import JSONResponse

    async def endpoint(_request: Any) -> JSONResponse:
        report = await health_report(checks, memory=memory, extra=extra)
        return JSONResponse(report, status_code=503 if report["status"] == "unhealthy" else 200)

    return endpoint
