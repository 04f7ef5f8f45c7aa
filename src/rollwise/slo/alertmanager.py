"""Burn-rate alerts to an Alertmanager, through its API v2 (``POST /api/v2/alerts``).

As Prometheus does: a firing alert is sent again every resend interval with ``endsAt`` four
intervals ahead (so that it resolves by itself if rollwise stops sending), and a resolved one
once with ``endsAt`` at its end. Alertmanager groups, deduplicates and routes them; a
delivery that fails is retried with backoff and logged, never waited for.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import stamina
import structlog

from rollwise.store import AlertRow

__all__ = ["ALERT_NAME", "Alertmanager", "alert_payload"]

ALERT_NAME = "ErrorBudgetBurn"

log = structlog.get_logger("rollwise.alertmanager")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def alert_payload(
    row: AlertRow, summary: str, runbook: str | None, now: float, resend_s: float
) -> dict[str, Any]:
    """One alert as Alertmanager's API v2 takes it."""
    annotations = {"summary": summary, **{k: str(v) for k, v in row.numbers.items()}}
    if runbook:
        key = "runbook_url" if runbook.startswith(("http://", "https://")) else "runbook"
        annotations[key] = runbook
    ends = row.resolved_at if row.resolved_at is not None else now + 4 * resend_s
    return {
        "labels": {
            "alertname": ALERT_NAME,
            "app": row.app,
            "slo": row.slo,
            "severity": row.severity,
            "window": row.windows,
        },
        "annotations": annotations,
        "startsAt": _iso(row.since),
        "endsAt": _iso(ends),
    }


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError)


class Alertmanager:
    def __init__(self) -> None:
        self.client = httpx.AsyncClient(timeout=5.0)

    async def send(self, url: str, alerts: list[dict[str, Any]]) -> bool:
        """POST ``alerts`` to the Alertmanager at ``url``; whether it took them."""
        try:
            async for attempt in stamina.retry_context(
                on=_retryable, attempts=4, wait_initial=0.2, wait_max=5.0, timeout=None
            ):
                with attempt:
                    resp = await self.client.post(f"{url.rstrip('/')}/api/v2/alerts", json=alerts)
                    resp.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("alertmanager delivery failed", url=url, error=str(exc) or repr(exc))
            return False
        return True

    async def aclose(self) -> None:
        await self.client.aclose()
