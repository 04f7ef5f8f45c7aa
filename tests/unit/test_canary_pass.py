"""The canary strategy, one pass at a time: every step kind, the guards, background analysis."""

from __future__ import annotations

import pytest

from rollwise.words import EventKind, PauseReason, Phase

from .harness import APP, REPLICAS, Harness, canary

pytestmark = pytest.mark.anyio


async def test_a_first_release_skips_the_steps(harness: Harness) -> None:
    harness.apply(canary({"setWeight": 10}, {"pause": {}}))
    await harness.release("1.0.0")
    status = harness.status
    assert (status.phase, status.stable, status.canary) == (Phase.HEALTHY, 1, None)
    assert harness.weights() == {"1": 100}
    assert harness.desired(1) == REPLICAS
    assert harness.kinds() == ["RolloutStarted", "RolloutCompleted"]
    assert harness.outcome(1) == ("promoted", "")


async def test_set_weight_scales_the_canary_before_routing_to_it(harness: Harness) -> None:
    await harness.release("1.0.0")
    harness.apply(canary({"setWeight": 25}, {"pause": {}}))
    harness.backend.auto_ready = False
    await harness.commands.deploy("1.1.0", [], "deploy")
    await harness.settle()
    assert harness.desired(2) == 1  # 25 % of 4
    assert harness.weights() == {"1": 100, "2": 0}
    assert harness.status.message == "waiting for revision 2: 0/1 ready"

    harness.backend.set_ready(APP, 2, 1)
    await harness.settle()
    assert harness.weights() == {"1": 75, "2": 25}
    status = harness.status
    assert (status.phase, status.pause_reason, status.step) == (
        Phase.PAUSED,
        PauseReason.CANARY_STEP,
        1,
    )
    assert harness.desired(1) == REPLICAS, "stable keeps its capacity until promotion"


async def test_a_timed_pause_ends_on_the_clock(harness: Harness) -> None:
    await harness.release("1.0.0")
    harness.apply(canary({"setWeight": 50}, {"pause": {"duration": "30s"}}))
    await harness.commands.deploy("1.1.0", [], "deploy")
    paused_at = harness.clock.now
    wake_at = await harness.settle()
    assert harness.status.message == "CanaryPauseStep (30s)"
    assert wake_at == pytest.approx(paused_at + 30)  # the pass asks for its end, no polling

    harness.clock.advance(29)
    await harness.settle()
    assert harness.status.phase == Phase.PAUSED
    await harness.later()
    status = harness.status
    assert (status.phase, status.stable, status.canary) == (Phase.HEALTHY, 2, None)
    assert [w.revision for w in status.warm] == [1]
    assert harness.weights() == {"1": 0, "2": 100}
    assert harness.outcome(1) == ("replaced", "replaced by revision 2")


async def test_an_indefinite_pause_waits_for_promote(harness: Harness) -> None:
    await harness.release("1.0.0")
    harness.apply(canary({"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}))
    await harness.commands.deploy("1.1.0", [], "deploy")
    await harness.settle()
    assert await harness.settle() == float("inf"), "nothing to wait for but a person"
    await harness.commands.promote()
    await harness.settle()
    assert harness.weights() == {"1": 40, "2": 60} and harness.status.step == 3
    await harness.commands.promote()
    await harness.settle()
    assert harness.status.stable == 2
    completed = harness.messages(EventKind.STEP_COMPLETED)
    assert completed[1] == "step 2/4 (pause) completed by promote"


async def test_promote_full_skips_every_step(harness: Harness) -> None:
    await harness.release("1.0.0")
    harness.apply(canary({"setWeight": 20}, {"pause": {}}, {"analysis": {}}))
    await harness.commands.deploy("1.1.0", [], "deploy")
    await harness.settle()
    await harness.commands.promote(full=True)
    await harness.settle()
    assert harness.status.stable == 2 and harness.weights()["2"] == 100


def healthy(harness: Harness, canary_failures: int = 1) -> None:
    """100 requests a second on each revision, one of the baseline's failing (1 %) and
    ``canary_failures`` of the canary's (the same, unless told)."""

    def serve(second: int) -> None:
        harness.metrics.serve(1, second, 100, 1)
        harness.metrics.serve(2, second, 100, canary_failures)

    harness.traffic = serve


async def test_analysis_until_pass_promotes_a_good_canary(harness: Harness) -> None:
    await harness.release("1.0.0")
    analysis = {"until": "pass", "maxDuration": "10m"}
    harness.apply(canary({"setWeight": 50}, {"analysis": analysis}))
    await harness.commands.deploy("1.1.0", [], "deploy")
    healthy(harness)
    took = await harness.until(lambda h: h.status.canary is None)
    assert harness.status.stable == 2
    assert EventKind.ANALYSIS_PASSED in harness.kinds()
    assert took < 300, "a canary as good as stable at 100 req/s passes within 5 minutes"
    passed = harness.messages(EventKind.ANALYSIS_PASSED)[0]
    assert "shown ≤ 1.5× the baseline's" in passed
    runs = harness.store.analyses(APP)
    assert runs[-1].outcome == "pass" and runs[-1].kind == "step 1"


async def test_analysis_aborts_a_failing_canary_with_its_evidence(harness: Harness) -> None:
    await harness.release("1.0.0")
    harness.apply(canary({"setWeight": 50}, {"analysis": {"until": "pass"}}))
    await harness.commands.deploy("1.1.0", [], "deploy")
    healthy(harness, canary_failures=20)
    await harness.until(lambda h: h.status.aborted)
    status = harness.status
    assert (status.phase, status.stable, status.canary) == (Phase.DEGRADED, 1, 2)
    assert status.message.startswith("RolloutAborted: failure rate")
    assert harness.weights() == {"1": 100, "2": 0}, "no new request reaches the canary"
    draining = harness.router.tables[APP].revision(2)
    assert draining is not None and all(r.draining for r in draining.replicas)
    assert harness.outcome(2) == ("aborted", "analysis failure")
    assert [r.revision for r in status.retiring] == [2]


async def test_no_traffic_is_inconclusive_and_pauses_for_a_person(harness: Harness) -> None:
    await harness.release("1.0.0")
    analysis = {"until": "pass", "maxDuration": "20s"}
    harness.apply(canary({"setWeight": 50}, {"analysis": analysis}, {"setWeight": 80}))
    await harness.commands.deploy("1.1.0", [], "deploy")
    await harness.until(lambda h: h.status.phase == Phase.PAUSED, limit_s=60)
    status = harness.status
    assert status.pause_reason == PauseReason.INCONCLUSIVE and not status.aborted
    assert status.message.startswith("AnalysisInconclusive:")
    with pytest.raises(Exception, match="nothing to resume"):
        await harness.commands.resume()
    await harness.commands.promote()  # a person accepts it
    await harness.settle()
    assert harness.status.stable == 2


async def test_on_inconclusive_wait_keeps_judging(harness: Harness) -> None:
    await harness.release("1.0.0")
    analysis = {"until": "pass", "maxDuration": "5s"}
    settings = {"latency": None, "onInconclusive": "wait"}
    harness.apply(canary({"setWeight": 50}, {"analysis": analysis}, analysis=settings))
    await harness.commands.deploy("1.1.0", [], "deploy")
    await harness.until(lambda h: "still judging" in h.status.message, limit_s=30)
    assert harness.status.phase == Phase.PROGRESSING
    healthy(harness)
    await harness.until(lambda h: h.status.canary is None)
    assert harness.status.stable == 2


@pytest.mark.parametrize(
    ("scale", "desired"),
    [({"replicas": 3}, 3), ({"weight": 75}, 3), ({"matchTrafficWeight": True}, 1)],
)
async def test_set_canary_scale(harness: Harness, scale: dict[str, object], desired: int) -> None:
    await harness.release("1.0.0")
    harness.apply(canary({"setCanaryScale": scale}, {"setWeight": 10}, {"pause": {}}))
    await harness.commands.deploy("1.1.0", [], "deploy")
    await harness.settle()
    assert harness.weights()["2"] == 10
    assert harness.desired(2) == desired


async def test_set_header_route_reaches_the_canary_until_abort(harness: Harness) -> None:
    await harness.release("1.0.0")
    route = {"name": "beta", "match": [{"headerName": "X-Beta", "headerValue": "1"}]}
    harness.apply(canary({"setHeaderRoute": route}, {"pause": {}}))
    await harness.commands.deploy("1.1.0", [], "deploy")
    await harness.settle()
    table = harness.router.tables[APP]
    assert [(r.revision, r.match) for r in table.header_routes] == [("2", (("X-Beta", "1"),))]
    assert harness.weights() == {"1": 100, "2": 0}
    await harness.commands.abort()
    await harness.settle()
    assert harness.router.tables[APP].header_routes == ()


async def test_background_analysis_aborts_during_a_pause(harness: Harness) -> None:
    await harness.release("1.0.0")
    settings = {"latency": None, "startingStep": 1}
    harness.apply(canary({"setWeight": 50}, {"pause": {}}, analysis=settings))
    await harness.commands.deploy("1.1.0", [], "deploy")
    await harness.settle()
    assert EventKind.ANALYSIS_STARTED in harness.kinds()
    healthy(harness, canary_failures=30)
    await harness.until(lambda h: h.status.aborted, limit_s=120)
    assert harness.outcome(2) == ("aborted", "analysis failure")
    assert harness.messages(EventKind.ANALYSIS_FAILED)[0].startswith("background analysis")


async def test_a_crash_loop_aborts_and_stable_keeps_serving(harness: Harness) -> None:
    await harness.release("1.0.0")
    harness.apply(canary({"setWeight": 50}, {"pause": {}}))
    harness.backend.auto_ready = False
    await harness.commands.deploy("1.1.0", [], "deploy")
    await harness.settle()
    harness.backend.crash_loop(APP, 2)
    await harness.settle()
    assert harness.outcome(2) == ("aborted", "crash loop")
    assert "last log line: boom: crashing at start" in harness.status.message
    assert harness.weights() == {"1": 100, "2": 0}


async def test_no_progress_within_the_deadline_aborts_but_a_pause_does_not(
    harness: Harness,
) -> None:
    await harness.release("1.0.0")
    harness.apply(canary({"setWeight": 50}, {"pause": {}}), progressDeadlineSeconds="1m")
    await harness.commands.deploy("1.1.0", [], "deploy")
    await harness.settle()
    harness.clock.advance(3600)  # paused: no deadline
    await harness.settle()
    assert harness.status.phase == Phase.PAUSED

    harness.backend.auto_ready = False
    await harness.commands.deploy("1.2.0", [], "deploy")  # never ready
    deployed = harness.clock.now
    await harness.later()  # the superseded revision 2 drains and stops
    assert harness.backend.stopped == [(APP, 2)]
    harness.backend.runs[(APP, 3)].stuck = "ErrImagePull: manifest unknown"
    wake_at = await harness.settle()
    assert wake_at == pytest.approx(deployed + 60, abs=0.01), "woken for the deadline"
    await harness.later()
    assert harness.outcome(3) == ("aborted", "deployment timeout")
    assert "made no progress for 1m" in harness.status.message
    assert harness.status.message.endswith("; replica 0: ErrImagePull: manifest unknown")


async def test_a_weight_set_by_hand_scales_first_and_holds_the_steps(harness: Harness) -> None:
    await harness.release("1.0.0")
    harness.apply(canary({"setWeight": 10}, {"pause": {"duration": "1s"}}, {"setWeight": 20}))
    await harness.commands.deploy("1.1.0", [], "deploy")
    await harness.settle()
    await harness.commands.set_weight(70)
    await harness.settle()
    assert harness.weights() == {"1": 30, "2": 70} and harness.desired(2) == 3
    harness.clock.advance(60)
    await harness.settle()
    assert harness.status.pause_reason == PauseReason.USER and harness.weights()["2"] == 70
    await harness.commands.resume()
    await harness.settle()
    assert harness.status.stable == 2
