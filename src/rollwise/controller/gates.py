"""Release gates that run beside the reconcile loop: smoke suites against a revision's own
replicas (before its first request, or before a blue-green swap) and against the live
listener (after promotion).

A suite may take its timeouts times its retries, and a reconcile pass must never wait for it
(an ``abort`` takes the same lock), so each gate runs as a task: a pass starts it and later
passes read its verdict. Verdicts live in memory only: a controller that restarts mid-gate
runs the suite again, which is harmless (smoke tests change nothing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import httpx

from rollwise.smoke import SmokeTestSuite, Target, run_suite
from rollwise.spec.smoke import SmokeTest

__all__ = ["SmokeGates"]


class SmokeGates:
    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._tasks: dict[str, asyncio.Task[SmokeTestSuite]] = {}

    def verdict(
        self, key: str, tests: Sequence[SmokeTest], targets: Sequence[Target]
    ) -> SmokeTestSuite | None:
        """The suite's result for ``key`` once it finished; ``None`` while it runs (the
        first call starts it on every target at once)."""
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.create_task(self._run(list(tests), list(targets)), name=f"smoke {key}")
            task.add_done_callback(lambda _: self._wake())
            self._tasks[key] = task
            return None
        return task.result() if task.done() else None

    def forget(self, revision: int) -> None:
        """Drop a revision's gates (a new rollout of it starts them afresh)."""
        for key in [k for k in self._tasks if k.split("/")[0] == str(revision)]:
            self._tasks.pop(key).cancel()

    def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    @staticmethod
    async def run_now(tests: Sequence[SmokeTest], targets: Sequence[Target]) -> SmokeTestSuite:
        """Every test on every target (one replica each), as one suite."""
        async with httpx.AsyncClient() as client:
            suites = await asyncio.gather(*(run_suite(tests, t, client=client) for t in targets))
        return SmokeTestSuite.merge(list(suites))

    async def _run(self, tests: list[SmokeTest], targets: list[Target]) -> SmokeTestSuite:
        return await self.run_now(tests, targets)
