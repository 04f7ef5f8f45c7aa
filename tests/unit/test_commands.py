"""Every command in every phase: what it does where it fits, and a refusal that changes
nothing where it does not."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from rollwise.errors import ConflictError, NotFoundError, UsageError
from rollwise.words import EventKind, PauseReason, Phase

from .harness import APP, Harness, canary

pytestmark = pytest.mark.anyio

STEPS = canary({"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}})


async def healthy(h: Harness) -> None:
    """1.0.0 replaced by 1.1.0: revision 1 warm, 2 stable, no rollout."""
    await h.release("1.0.0")
    h.apply(canary(scaleDownDelaySeconds="10m"))
    await h.release("1.1.0")


async def stepping(h: Harness) -> None:
    """A canary whose replicas are not ready yet."""
    await healthy(h)
    h.apply(STEPS)
    h.backend.auto_ready = False
    await h.commands.deploy("1.2.0", [], "deploy")
    await h.settle()


async def paused_step(h: Harness) -> None:
    await healthy(h)
    h.apply(STEPS)
    await h.release("1.2.0")


async def paused_user(h: Harness) -> None:
    await paused_step(h)
    await h.commands.promote()
    await h.commands.pause()
    await h.settle()


async def inconclusive(h: Harness) -> None:
    await healthy(h)
    h.apply(canary({"setWeight": 25}, {"analysis": {"maxDuration": "5s"}}, {"pause": {}}))
    await h.commands.deploy("1.2.0", [], "deploy")
    await h.until(lambda x: x.status.pause_reason == PauseReason.INCONCLUSIVE, limit_s=30)


async def aborted(h: Harness) -> None:
    await paused_step(h)
    await h.commands.abort()
    await h.settle()


async def verifying(h: Harness) -> None:
    await healthy(h)
    post = {"until": "duration", "duration": "10m"}
    h.apply({"blueGreen": {"postPromotionAnalysis": post, "analysis": {"latency": None}}})
    await h.release("1.2.0")


PHASES: dict[str, Callable[[Harness], Awaitable[None]]] = {
    "healthy": healthy,
    "stepping": stepping,
    "paused-step": paused_step,
    "paused-user": paused_user,
    "inconclusive": inconclusive,
    "aborted": aborted,
    "verifying": verifying,
}

# phase -> commands refused there (ConflictError); the others act
REFUSED = {
    "healthy": {"promote", "abort", "retry", "pause", "resume", "weight"},
    "stepping": {"retry", "resume"},
    "paused-step": {"retry", "resume"},
    "paused-user": {"retry", "pause"},
    "inconclusive": {"retry", "resume"},
    "aborted": {"promote", "abort", "pause", "resume", "weight"},
    "verifying": {"promote", "retry", "pause", "resume", "weight"},
}
COMMANDS: dict[str, Callable[[Harness], Awaitable[object]]] = {
    "promote": lambda h: h.commands.promote(),
    "abort": lambda h: h.commands.abort(),
    "retry": lambda h: h.commands.retry(),
    "pause": lambda h: h.commands.pause(),
    "resume": lambda h: h.commands.resume(),
    "undo": lambda h: h.commands.undo(),
    "weight": lambda h: h.commands.set_weight(40),
    "deploy": lambda h: h.commands.deploy("9.9.9", [], "deploy"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("phase", list(PHASES))
async def test_every_command_in_every_phase(harness: Harness, phase: str, command: str) -> None:
    await PHASES[phase](harness)
    before = harness.status.model_copy(deep=True)
    events = len(harness.kinds())
    if command in REFUSED[phase]:
        with pytest.raises(ConflictError, match=f"app {APP}|revision"):
            await COMMANDS[command](harness)
        assert harness.status == before, "a refused command changes nothing"
        assert len(harness.kinds()) == events
        return
    await COMMANDS[command](harness)
    assert len(harness.kinds()) > events, "every move is an event"
    await harness.settle()
    status = harness.status
    weights = harness.weights()
    assert sum(weights.values()) == 100, weights
    if command == "abort":
        assert status.phase == Phase.DEGRADED and max(weights, key=lambda k: weights[k]) == str(
            status.stable
        )
    elif command == "undo":
        assert EventKind.ROLLED_BACK in harness.kinds() or EventKind.ROLLBACK_STARTED in (
            harness.kinds()
        )
        assert status.stable != before.stable or status.canary is None
    elif command == "deploy":
        newest = max(r.number for r in harness.store.revisions(APP))
        assert newest in (status.canary, status.stable)
        assert status.verifying in (None, before.stable), "a verification is superseded"
    elif command == "retry":
        assert (status.canary, status.aborted) == (before.canary, False)
    elif command in ("pause", "weight"):
        assert status.pause_reason == PauseReason.USER
    elif command == "resume":
        assert status.pause_reason != PauseReason.USER


async def test_undo_is_instant_to_a_warm_revision_and_restarts_an_old_one(
    harness: Harness,
) -> None:
    await healthy(harness)
    started = len(harness.backend.runs)
    await harness.commands.undo()
    await harness.settle()
    assert harness.status.stable == 1 and harness.weights() == {"1": 100, "2": 0}
    assert len(harness.backend.runs) == started, "nothing started: routes only"
    assert harness.messages(EventKind.ROLLED_BACK) == ["rolled back to revision 1 (1.0.0)"]

    await harness.later()  # revision 2 is warm until its delay ends, then drains
    await harness.later()
    assert (APP, 2) in harness.backend.stopped
    await harness.commands.undo(to_revision=2)
    await harness.settle()
    status = harness.status
    assert (status.stable, status.phase) == (2, Phase.HEALTHY), "started again, no steps"
    assert EventKind.ROLLBACK_STARTED in harness.kinds()


async def test_undo_after_an_abort_returns_to_the_serving_stable(harness: Harness) -> None:
    """Argo's undo: the revision before the current one. After 1.2.0 was aborted over a
    stable 1.1.0, that is 1.1.0, not the 1.0.0 before it."""
    await aborted(harness)
    assert harness.status.phase == Phase.DEGRADED
    await harness.commands.undo()
    await harness.settle()
    status = harness.status
    assert (status.phase, status.stable, status.canary, status.aborted) == (
        Phase.HEALTHY,
        2,
        None,
        False,
    )
    assert harness.weights()["2"] == 100
    message = "rolled back to revision 2 (1.1.0): revision 3 was aborted"
    assert harness.messages(EventKind.ROLLED_BACK) == [message]
    assert status.message == message
    assert harness.outcome(3) == ("aborted", "manual")  # the history keeps why it ended
    await harness.commands.undo()  # and again: now the revision stable before 1.1.0
    await harness.settle()
    assert harness.status.stable == 1


async def test_undo_during_a_rollout_drops_the_canary(harness: Harness) -> None:
    await paused_step(harness)
    await harness.commands.undo()
    await harness.settle()
    status = harness.status
    assert (status.stable, status.canary, status.phase) == (2, None, Phase.HEALTHY)
    assert harness.outcome(3) == ("rolled back", "manual")


async def test_commands_name_what_is_wrong(harness: Harness) -> None:
    await healthy(harness)
    with pytest.raises(UsageError, match="version '' cannot be used"):
        await harness.commands.deploy("", [], "deploy")
    with pytest.raises(UsageError, match=r"not in 0\.\.100"):
        await harness.commands.set_weight(101)
    with pytest.raises(NotFoundError):
        await harness.commands.undo(to_revision=42)
    with pytest.raises(ConflictError, match="already runs revision 2"):
        await harness.commands.undo(to_revision=2)
    with pytest.raises(ConflictError, match="still in use"):
        await harness.commands.cleanup(1)


async def test_deploy_supersedes_the_rollout_in_progress(harness: Harness) -> None:
    await paused_step(harness)
    await harness.commands.deploy("1.3.0", [], "deploy")
    await harness.settle()
    assert harness.outcome(3) == ("superseded", "replaced by revision 4")
    assert harness.status.canary == 4
    assert harness.messages(EventKind.ROLLOUT_SUPERSEDED) == ["revision 3 superseded by revision 4"]


async def test_deploy_with_set_overrides_the_template(harness: Harness) -> None:
    await harness.release("1.0.0")
    await harness.commands.deploy("1.1.0", ["template.env.MODE=fast", "replicas=2"], "deploy")
    await harness.settle()
    run = harness.backend.runs[(APP, 2)]
    assert run.workload.template.env == {"MODE": "fast"} and run.desired == 2
    with pytest.raises(Exception, match="replicas"):
        await harness.commands.deploy("1.2.0", ["replicas=two"], "deploy")
    assert harness.status.stable == 2, "a bad --set changes nothing"


async def test_cleanup_removes_what_a_stopped_revision_left(harness: Harness) -> None:
    await aborted(harness)
    with pytest.raises(ConflictError, match="still in use"):
        await harness.commands.cleanup(3)  # `retry` may start it again
    await harness.commands.deploy("1.3.0", [], "deploy")
    await harness.settle()
    await harness.later()  # drained and stopped
    assert (APP, 3) in harness.backend.stopped
    assert await harness.commands.cleanup(3) == []  # the fake backend keeps no log files
    assert EventKind.REVISION_CLEANED_UP in harness.kinds()
