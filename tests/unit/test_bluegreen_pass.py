"""The blue-green strategy, one pass at a time: preview, promotion, swap, checks after it."""

from __future__ import annotations

from typing import Any

import pytest

from rollwise.words import EventKind, PauseReason, Phase, preview_app

from .harness import APP, REPLICAS, Harness

pytestmark = pytest.mark.anyio


def blue_green(**settings: Any) -> dict[str, Any]:
    settings.setdefault("previewListen", "127.0.0.1:10")
    settings.setdefault("analysis", {"latency": None})
    return {"blueGreen": settings}


async def test_the_preview_waits_for_promote_then_swaps_at_full_capacity(
    harness: Harness,
) -> None:
    harness.apply(blue_green(autoPromotionEnabled=False, previewReplicaCount=1))
    await harness.release("1.0.0")
    assert harness.status.stable == 1 and harness.weights() == {"1": 100}

    harness.backend.auto_ready = False
    await harness.commands.deploy("1.1.0", [], "deploy")
    await harness.settle()
    assert harness.desired(2) == 1 and harness.status.message == "waiting for revision 2: 0/1 ready"
    harness.backend.set_ready(APP, 2, 1)
    await harness.settle()
    status = harness.status
    assert (status.phase, status.pause_reason) == (Phase.PAUSED, PauseReason.BLUE_GREEN)
    preview = harness.router.tables[preview_app(APP)]
    assert preview.listen == "127.0.0.1:10" and preview.weights() == {"2": 100}
    assert harness.weights() == {"1": 100, "2": 0}, "the preview takes no live request"

    await harness.commands.promote()
    await harness.settle()
    assert harness.desired(2) == REPLICAS and harness.status.stable == 1
    assert "before it takes all traffic" in harness.status.message
    harness.backend.set_ready(APP, 2, REPLICAS)
    await harness.settle()
    status = harness.status
    assert (status.phase, status.stable, status.canary) == (Phase.HEALTHY, 2, None)
    assert harness.weights() == {"1": 0, "2": 100}
    assert preview_app(APP) not in harness.router.tables
    story = ["PreviewReady", "RolloutPaused", "PromoteRequested", "RolloutCompleted"]
    assert [k for k in harness.kinds() if k in story][-4:] == story


async def test_auto_promotion_after_its_seconds(harness: Harness) -> None:
    harness.apply(blue_green(autoPromotionSeconds="45s"))
    await harness.release("1.0.0")
    await harness.commands.deploy("1.1.0", [], "deploy")
    ready_at = harness.clock.now
    wake_at = await harness.settle()
    assert harness.status.message == "auto-promotion in 45s"
    assert wake_at == pytest.approx(ready_at + 45)
    await harness.later()
    assert harness.status.stable == 2


async def test_the_blue_green_scale_down_delay_keeps_the_old_active_warm(
    harness: Harness,
) -> None:
    harness.apply(blue_green(scaleDownDelaySeconds="2m"))
    await harness.release("1.0.0")
    await harness.release("1.1.0")
    warm = harness.status.warm
    assert [(w.revision, w.until - harness.clock.now) for w in warm] == [(1, 120)]
    await harness.later()  # the delay ends
    await harness.later()  # drained
    assert harness.backend.stopped == [(APP, 1)]


def traffic(harness: Harness, active: int, preview: int, preview_failures: int) -> None:
    """100 requests a second on each, one of the active's failing (1 %)."""

    def serve(second: int) -> None:
        harness.metrics.serve(active, second, 100, 1)
        harness.metrics.serve(preview, second, 100, preview_failures)

    harness.traffic = serve


async def test_a_failing_pre_promotion_analysis_aborts_the_preview(harness: Harness) -> None:
    harness.apply(blue_green(prePromotionAnalysis={"until": "pass"}))
    await harness.release("1.0.0")
    await harness.commands.deploy("1.1.0", [], "deploy")
    traffic(harness, 1, 2, preview_failures=25)
    await harness.until(lambda h: h.status.aborted)
    assert harness.outcome(2) == ("aborted", "analysis failure")
    assert harness.status.stable == 1 and harness.weights()["1"] == 100


async def test_a_passing_pre_promotion_analysis_promotes(harness: Harness) -> None:
    harness.apply(blue_green(prePromotionAnalysis={"until": "pass", "maxDuration": "10m"}))
    await harness.release("1.0.0")
    await harness.commands.deploy("1.1.0", [], "deploy")
    traffic(harness, 1, 2, preview_failures=1)
    await harness.until(lambda h: h.status.canary is None)
    assert harness.status.stable == 2 and EventKind.ANALYSIS_PASSED in harness.kinds()


async def test_a_failing_post_promotion_analysis_switches_back(harness: Harness) -> None:
    post = {"until": "duration", "duration": "1m", "maxErrorRate": "5%", "minRequests": 50}
    harness.apply(blue_green(postPromotionAnalysis=post, scaleDownDelaySeconds="1s"))
    await harness.release("1.0.0")
    await harness.commands.deploy("1.1.0", [], "deploy")
    await harness.settle()
    status = harness.status
    assert (status.stable, status.verifying, status.phase) == (2, 1, Phase.PROGRESSING)
    assert [w.revision for w in status.warm] == [1]
    assert EventKind.ACTIVE_SWITCHED in harness.kinds()
    harness.clock.advance(10)
    await harness.settle()
    assert harness.status.warm, "the previous active stays warm while it is verified"

    def failing(second: int) -> None:
        harness.metrics.serve(2, second, 100, 30)

    harness.traffic = failing
    await harness.until(lambda h: h.status.phase == Phase.DEGRADED)
    status = harness.status
    assert (status.stable, status.verifying) == (1, None)
    assert status.message.endswith("revision 1 is active again")
    assert harness.weights()["1"] == 100
    assert harness.outcome(2) == ("aborted", "analysis failure")
    assert harness.outcome(1) == ("promoted", "switched back")


async def test_a_quiet_post_promotion_analysis_completes(harness: Harness) -> None:
    post = {"until": "duration", "duration": "30s"}
    harness.apply(blue_green(postPromotionAnalysis=post))
    await harness.release("1.0.0")
    await harness.commands.deploy("1.1.0", [], "deploy")
    await harness.until(lambda h: h.status.phase == Phase.HEALTHY, limit_s=120)
    assert harness.status.verifying is None and harness.outcome(2) == ("promoted", "")


async def test_abort_while_verifying_switches_back(harness: Harness) -> None:
    post = {"until": "duration", "duration": "10m"}
    harness.apply(blue_green(postPromotionAnalysis=post))
    await harness.release("1.0.0")
    await harness.commands.deploy("1.1.0", [], "deploy")
    await harness.settle()
    await harness.commands.abort()
    await harness.settle()
    assert harness.status.stable == 1 and harness.status.phase == Phase.DEGRADED
    assert harness.outcome(2) == ("aborted", "manual")
