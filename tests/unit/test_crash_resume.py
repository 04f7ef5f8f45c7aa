"""A controller killed in any persisted phase, and started again, resumes where it was: the
same routes, the same phase, and the rollout ends as it would have."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from rollwise.words import PauseReason, Phase

from .harness import APP, REPLICAS, Harness, canary
from .test_commands import aborted, inconclusive, paused_step, stepping, verifying

pytestmark = pytest.mark.anyio


async def analysing(h: Harness) -> None:
    await h.release("1.0.0")
    h.apply(canary({"setWeight": 50}, {"analysis": {"until": "pass", "maxDuration": "10m"}}))
    await h.commands.deploy("1.1.0", [], "deploy")

    def serve(second: int) -> None:
        h.metrics.serve(1, second, 100)
        h.metrics.serve(2, second, 100)

    h.traffic = serve
    await h.until(lambda x: x.status.message.startswith("analysing"), limit_s=30)


async def promoting(h: Harness) -> None:
    """Steps done; the canary scales to full capacity before it takes all traffic."""
    await h.release("1.0.0")
    h.apply(canary({"setWeight": 25}))
    h.backend.auto_ready = False
    await h.commands.deploy("1.1.0", [], "deploy")
    await h.settle()
    h.backend.set_ready(APP, 2, 1)
    await h.settle()
    assert "before it takes all traffic" in h.status.message


async def scale_down_delay(h: Harness) -> None:
    await h.release("1.0.0")
    h.apply(canary(scaleDownDelaySeconds="1m"))
    await h.release("1.1.0")
    assert h.status.warm


async def retiring(h: Harness) -> None:
    await scale_down_delay(h)
    h.router.in_flight = {a: 1 for a in h.backend.addresses(APP, 1)}  # long requests
    await h.later()  # the delay ends: revision 1 drains
    assert h.status.retiring


async def preview(h: Harness) -> None:
    h.apply({"blueGreen": {"autoPromotionEnabled": False}})
    await h.release("1.0.0")
    await h.release("1.1.0")
    assert h.status.pause_reason == PauseReason.BLUE_GREEN


async def finish(h: Harness) -> None:
    """End whatever rollout there is: promote, resume, or let time and traffic pass."""
    h.backend.auto_ready = True
    for run in h.backend.runs.values():
        run.ready = run.desired
    h.router.in_flight = {}
    for _ in range(10):
        status = h.status
        over = status.canary is None or status.aborted
        if over and status.verifying is None and not status.retiring and not status.warm:
            return
        if status.pause_reason is not None:
            await h.commands.promote()
        h.clock.advance(600)
        await h.settle()
    raise AssertionError(f"the rollout did not end: {h.status}")


PHASES: dict[str, Callable[[Harness], Awaitable[None]]] = {
    "stepping": stepping,
    "paused": paused_step,
    "analysing": analysing,
    "inconclusive": inconclusive,
    "promoting": promoting,
    "aborted": aborted,
    "verifying": verifying,
    "scale-down-delay": scale_down_delay,
    "retiring": retiring,
    "preview": preview,
}


@pytest.mark.parametrize("phase", list(PHASES))
async def test_a_restart_resumes_each_phase(harness: Harness, phase: str) -> None:
    await PHASES[phase](harness)
    before = harness.status.model_copy(deep=True)
    routes = dict(harness.router.tables)
    stopped = list(harness.backend.stopped)

    harness.restart()
    await harness.settle()
    after = harness.status
    assert after.model_dump(exclude={"message", "updated"}) == before.model_dump(
        exclude={"message", "updated"}
    )
    assert harness.router.tables == routes, "the data plane keeps exactly its routes"
    assert harness.backend.stopped == stopped, "nothing that ran was stopped"

    await finish(harness)
    status = harness.status
    assert status.phase in (Phase.HEALTHY, Phase.DEGRADED) and status.stable is not None
    assert harness.weights()[str(status.stable)] == 100
    running = {number for app, number in harness.backend.runs}
    assert running == {status.stable}, "only stable runs once it is over"
    assert harness.desired(status.stable) in (REPLICAS, 2)
