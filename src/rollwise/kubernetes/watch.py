"""A list and a watch kept in step: client-go's reflector, in small.

What the backend knows of pods comes from here, never from polling:

- list (the list's ``resourceVersion``), then watch from that version, asking for bookmarks
  (``allowWatchBookmarks``), so that a quiet watch still moves its version on and a
  reconnect does not start from a version the server has forgotten;
- each event updates the objects and moves the version on; a ``BOOKMARK`` moves it alone;
- ``410 Gone`` (an ``ERROR`` event, or the answer to a watch request): the version is too
  old, so list again and tell the differences as events;
- a stream that ends (the server's timeout) or breaks: watch again from the last version;
  failures in a row back off (0.2 s doubling to 5 s); 429 and 5xx are such failures.

lightkube's own ``watch`` neither asks for bookmarks nor lists again after 410, so this reads
the stream with the httpx client lightkube configures (same kubeconfig, TLS and token).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import structlog

__all__ = ["Obj", "Reflector", "object_key"]

Obj = dict[str, Any]
log = structlog.get_logger("rollwise.kubernetes")
BACKOFF_S = (0.2, 5.0)


def object_key(obj: Obj) -> str:
    meta = obj.get("metadata", {})
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


class _Expired(Exception):
    """The watch's version is older than what the server keeps (410 Gone)."""


class Reflector:
    """The objects at ``path`` matching ``selector``, kept current by a watch.

    ``on_change(type, obj)`` is called for every change (``ADDED``, ``MODIFIED``,
    ``DELETED``), also for the differences found by a new list; ``synced`` is set once the
    first list is in.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        path: str,
        selector: str,
        on_change: Callable[[str, Obj], None],
        timeout_s: int = 300,
    ) -> None:
        self.http = http
        self.path = path
        self.selector = selector
        self.on_change = on_change
        self.timeout_s = timeout_s
        self.objects: dict[str, Obj] = {}
        self.version = ""
        self.synced = asyncio.Event()
        self.lists = 0  # how many times it listed (1 + one per 410)

    async def run(self) -> None:
        """List and watch until cancelled (run again: it watches on from its version)."""
        failures = 0
        listed = self.synced.is_set()
        while True:
            try:
                if not listed:
                    await self._list()
                    listed = True
                await self._watch()
                failures = 0
            except _Expired:
                listed = False
                failures = 0
            except (httpx.HTTPError, ValueError) as exc:  # ValueError: a broken JSON line
                failures += 1
                delay = min(BACKOFF_S[0] * 2 ** (failures - 1), BACKOFF_S[1])
                log.warning("watch failed", path=self.path, error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)

    async def _list(self) -> None:
        answer = await self.http.get(self.path, params={"labelSelector": self.selector})
        answer.raise_for_status()
        body = answer.json()
        fresh = {object_key(obj): obj for obj in body.get("items", [])}
        old, self.objects = self.objects, fresh
        self.version = body.get("metadata", {}).get("resourceVersion", "")
        self.lists += 1
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                self.on_change("ADDED", obj)
            elif before != obj:
                self.on_change("MODIFIED", obj)
        for key in old.keys() - fresh.keys():
            self.on_change("DELETED", old[key])
        self.synced.set()

    async def _watch(self) -> None:
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "labelSelector": self.selector,
            "resourceVersion": self.version,
            "timeoutSeconds": str(self.timeout_s),
        }
        timeout = httpx.Timeout(10.0, read=self.timeout_s + 30.0)
        async with self.http.stream("GET", self.path, params=params, timeout=timeout) as stream:
            if stream.status_code == 410:
                raise _Expired
            stream.raise_for_status()
            async for line in stream.aiter_lines():
                if line.strip():
                    self._event(json.loads(line))

    def _event(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type", ""), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Expired
            raise ValueError(f"watch error: {obj.get('message', obj)}")
        version = obj.get("metadata", {}).get("resourceVersion")
        if version:
            self.version = version
        if kind == "BOOKMARK":
            return
        key = object_key(obj)
        if kind == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj
        self.on_change(kind, obj)
