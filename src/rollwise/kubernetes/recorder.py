"""rollwise's events of a cluster app as the cluster's own Events, regarding the revision's
Deployment: ``kubectl describe deployment web-r2`` and ``kubectl get events`` show why a
release stopped, as they do for Argo Rollouts' and Flagger's decisions.

Core ``v1`` Events (``involvedObject`` with the Deployment's uid, which ``kubectl describe``
selects on), written from a bounded queue by one task: the controller never waits for the
API server to hear of a decision, and an API server that refuses them loses the Events, not
the decisions (the store keeps those). A revision's first events (``RolloutStarted``) come
before its Deployment exists: they wait for it. The Role grants ``create`` on events.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass

import httpx
import structlog

from rollwise.kubernetes.names import MANAGED_BY
from rollwise.words import is_warning

__all__ = ["ClusterEvent", "EventRecorder"]

log = structlog.get_logger("rollwise.kubernetes")
QUEUE = 1000  # Events waiting to be written; more are dropped (the store has them all)
PENDING = 20  # events of one revision waiting for its Deployment
WAITING = 50  # revisions with events waiting for their Deployment
Key = tuple[str, int]  # (app, revision)
NOTE = 1024  # the API server's limit on an Event's message


@dataclass(frozen=True, slots=True)
class ClusterEvent:
    namespace: str
    deployment: str
    uid: str
    reason: str  # rollwise's event kind: RolloutAborted, ScaledUp...
    message: str


class EventRecorder:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.instance = socket.gethostname()  # a pod's name, in a cluster
        self._queue: asyncio.Queue[ClusterEvent] = asyncio.Queue(QUEUE)
        self._task: asyncio.Task[None] | None = None
        self._told = ""
        self._regards: dict[Key, tuple[str, str, str]] = {}  # namespace, Deployment, uid
        self._pending: dict[Key, list[tuple[str, str]]] = {}  # (reason, message)

    def regard(self, key: Key, namespace: str, deployment: str, uid: str) -> None:
        """The revision's Deployment exists: its events (and those that waited) are its."""
        self._regards[key] = (namespace, deployment, uid)
        for reason, message in self._pending.pop(key, []):
            self.offer(ClusterEvent(namespace, deployment, uid, reason, message))

    def tell(self, key: Key, reason: str, message: str) -> None:
        """One of the revision's events: written, or kept until its Deployment exists."""
        regards = self._regards.get(key)
        if regards is not None:
            self.offer(ClusterEvent(*regards, reason, message))
            return
        if key not in self._pending and len(self._pending) >= WAITING:
            del self._pending[next(iter(self._pending))]  # the oldest revision still waiting
        waiting = self._pending.setdefault(key, [])
        if len(waiting) < PENDING:
            waiting.append((reason, message))

    def offer(self, event: ClusterEvent) -> None:
        """Queue ``event`` (dropped when the queue is full); never waits."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="k8s-events")
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(event)

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                answer = await self.http.post(
                    f"/api/v1/namespaces/{event.namespace}/events", json=self.body(event)
                )
                answer.raise_for_status()
                self._told = ""
            except httpx.HTTPError as exc:
                why = str(exc) or type(exc).__name__
                if why != self._told:  # said once, until it changes
                    log.warning("a cluster Event could not be written", error=why)
                    self._told = why

    def body(self, event: ClusterEvent) -> dict[str, object]:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{event.deployment}.{time.time_ns():x}",
                "namespace": event.namespace,
                "labels": dict(MANAGED_BY),
            },
            "involvedObject": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": event.deployment,
                "namespace": event.namespace,
                "uid": event.uid,
            },
            "reason": event.reason,
            "message": event.message[:NOTE],
            "type": "Warning" if is_warning(event.reason) else "Normal",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": "rollwise"},
            "reportingComponent": "rollwise.dev/controller",
            "reportingInstance": self.instance,
        }

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
