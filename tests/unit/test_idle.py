"""An idle app costs nothing: its loop sleeps until something can change a pass's outcome."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .harness import APP, Harness, canary

pytestmark = pytest.mark.anyio


async def passes_after(harness: Harness, seconds: float) -> int:
    start = harness.worker.passes
    await asyncio.sleep(seconds)
    return harness.worker.passes - start


async def test_an_idle_app_runs_no_pass_and_reads_nothing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.release("1.0.0")
    loop = asyncio.create_task(harness.worker.run())
    try:
        await passes_after(harness, 0.05)  # the loop's first pass
        reads: list[str] = []
        run = harness.store._run

        def counted(sql: str, *args: Any) -> Any:
            reads.append(sql)
            return run(sql, *args)

        monkeypatch.setattr(harness.store, "_run", counted)
        assert await passes_after(harness, 0.3) == 0
        assert reads == [], "an idle app does no store read"
        assert harness.worker.view()["phase"] == "Healthy"
        assert reads and all("analysis_runs" in sql for sql in reads), (
            "a view reads only the analyses from the store"
        )
    finally:
        loop.cancel()


async def test_a_health_change_wakes_the_pass(harness: Harness) -> None:
    await harness.release("1.0.0")
    harness.apply(canary({"setWeight": 50}, {"pause": {}}))
    harness.backend.auto_ready = False
    await harness.commands.deploy("1.1.0", [], "deploy")
    loop = asyncio.create_task(harness.worker.run())
    try:
        await passes_after(harness, 0.05)
        assert harness.weights().get("2") == 0
        assert await passes_after(harness, 0.2) == 0, "waiting for replicas is not polling"
        harness.backend.set_ready(APP, 2, 2)
        await passes_after(harness, 0.05)
        assert harness.weights()["2"] == 50
    finally:
        loop.cancel()


async def test_a_pause_wakes_its_pass_at_its_end(harness: Harness) -> None:
    await harness.release("1.0.0")
    harness.apply(canary({"setWeight": 50}, {"pause": {"duration": "2s"}}))
    await harness.commands.deploy("1.1.0", [], "deploy")
    loop = asyncio.create_task(harness.worker.run())
    try:
        await passes_after(harness, 0.05)
        assert harness.status.phase == "Paused"
        harness.clock.advance(2)  # the loop sleeps until then on the real clock: wake it
        harness.worker.wake.set()
        await passes_after(harness, 0.05)
        assert harness.status.stable == 2
    finally:
        loop.cancel()
