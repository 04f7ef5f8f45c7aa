"""Webhooks: events POSTed to the URLs an app's spec names, never in the rollout's way.

``Events.emit`` hands each event to ``Webhooks.offer``, which only puts it on a bounded
queue; a background task delivers (at most ``CONCURRENCY`` at a time) with the hook's timeout,
retrying connection errors and 5xx answers with exponential backoff (stamina). A full queue
drops the oldest event with a warning rather than slow a reconcile pass; a hook that keeps
failing is logged and counted (``rollwise_webhook_deliveries_total{result}``), nothing more.
The log names the hook by its origin only (``https://hooks.slack.com/…``): the path of a Slack
or Teams incoming webhook is its credential, and log lines travel further than specs do.

Bodies: ``format: json`` (default) sends the event as stored (``id, ts, app, kind, revision,
message, data``, and ``runbook`` when the spec has one for the kind); ``format: slack``
sends ``{"text": ...}`` (the runbook as a second line), which Slack, Mattermost and
Discord's Slack-compatible endpoint accept.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import stamina
import structlog
from prometheus_client import CollectorRegistry, Counter

from rollwise.spec.models import Webhook

__all__ = ["Webhooks", "body_for", "shown_url"]

QUEUE_SIZE = 1000
CONCURRENCY = 4

log = structlog.get_logger("rollwise.webhooks")


def body_for(hook: Webhook, event: dict[str, Any]) -> dict[str, Any]:
    if hook.format == "slack":
        revision = f" revision {event['revision']}" if event.get("revision") is not None else ""
        text = f"[{event['app']}{revision}] {event['kind']}: {event['message']}"
        book = event.get("runbook")
        if book:
            steps = "; ".join(book["steps"])
            text += f"\nRunbook: {steps}" + (f" ({book['link']})" if book.get("link") else "")
        return {"text": text}
    return event


def shown_url(url: str) -> str:
    """``url`` without its path and query, which may hold the hook's credential."""
    parts = httpx.URL(url)
    port = f":{parts.port}" if parts.port is not None else ""
    rest = "/…" if parts.raw_path not in (b"", b"/") else ""
    return f"{parts.scheme}://{parts.host}{port}{rest}"


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError)


class Webhooks:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.queue: asyncio.Queue[tuple[Webhook, dict[str, Any]]] = asyncio.Queue(QUEUE_SIZE)
        self.client = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        self.slots = asyncio.Semaphore(CONCURRENCY)
        self.tasks: set[asyncio.Task[None]] = set()
        self.runner: asyncio.Task[None] | None = None
        self.deliveries = Counter(
            "rollwise_webhook_deliveries",
            "Webhook deliveries by result (ok, failed, dropped)",
            ["app", "result"],
            registry=registry,
        )

    def start(self) -> None:
        self.runner = asyncio.get_running_loop().create_task(self._run(), name="webhooks")

    def offer(self, hooks: list[Webhook], event: dict[str, Any]) -> None:
        """Queue an event for every hook that wants its kind; never blocks."""
        for hook in hooks:
            if hook.events and event["kind"] not in hook.events:
                continue
            if self.queue.full():
                _, dropped = self.queue.get_nowait()
                self.queue.task_done()
                self.deliveries.labels(dropped["app"], "dropped").inc()
                log.warning("webhook queue full; oldest event dropped", kind=dropped["kind"])
            self.queue.put_nowait((hook, event))

    async def _run(self) -> None:
        while True:
            hook, event = await self.queue.get()
            await self.slots.acquire()
            task = asyncio.get_running_loop().create_task(self._deliver(hook, event))
            self.tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.slots.release()
        self.queue.task_done()

    async def _deliver(self, hook: Webhook, event: dict[str, Any]) -> None:
        body = body_for(hook, event)
        try:
            async for attempt in stamina.retry_context(
                on=_retryable,
                attempts=hook.retries + 1,
                wait_initial=0.2,
                wait_max=5.0,
                timeout=None,
            ):
                with attempt:
                    resp = await self.client.post(hook.url, json=body, timeout=hook.timeout)
                    resp.raise_for_status()
        except httpx.HTTPError as exc:
            self.deliveries.labels(event["app"], "failed").inc()
            shown = shown_url(hook.url)
            error = str(exc) or type(exc).__name__
            for spelling in {hook.url, str(httpx.URL(hook.url))}:  # as written, as httpx says it
                error = error.replace(spelling, shown)
            log.warning(
                "webhook delivery failed",
                url=shown,
                kind=event["kind"],
                app=event["app"],
                error=error,
            )
            return
        self.deliveries.labels(event["app"], "ok").inc()

    async def aclose(self, grace_s: float = 2.0) -> None:
        """Give queued deliveries a moment (shutdown events matter), then stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s):
                await self.queue.join()
        if self.runner is not None:
            self.runner.cancel()
        for task in list(self.tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await self.client.aclose()
