"""Release gates that run beside the reconcile loop: the agent-card check and the smoke
suites against a revision's own replicas (before its first request, or before a blue-green
swap), and smoke suites against the live listener (after promotion).

A gate may take seconds (a suite's timeouts times its retries), and a reconcile pass must
never wait for it (an ``abort`` takes the same lock), so each gate runs as a task: a pass
starts it and later passes read its result. Results live in memory only: a controller that
restarts mid-gate runs it again, which is harmless (gates change nothing outside).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["Gates"]

T = TypeVar("T")


class Gates:
    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._tasks: dict[str, asyncio.Task[Any]] = {}

    def result(self, key: str, start: Callable[[], Awaitable[T]]) -> T | None:
        """The gate's result once it finished; ``None`` while it runs (the first call
        starts ``start()``; the reconcile loop is woken when it ends). An exception inside
        the gate is raised here, once it finished."""
        task = self._tasks.get(key)
        if task is None:

            async def run() -> T:
                return await start()

            task = asyncio.create_task(run(), name=f"gate {key}")
            task.add_done_callback(lambda _: self._wake())
            self._tasks[key] = task
            return None
        if not task.done():
            return None
        value: T = task.result()
        return value

    def forget(self, revision: int) -> None:
        """Drop a revision's gates (a new rollout of it runs them afresh)."""
        for key in [k for k in self._tasks if k.split("/")[0] == str(revision)]:
            self._tasks.pop(key).cancel()

    def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
