"""``CanaryDeployment``: the mission's canary API over the controller's canary steps.

    result = await CanaryDeployment(traffic_steps=[10, 25, 50, 100]).deploy("1.3.0")
    result.success, result.final_canary_percentage

Each traffic step below 100 becomes ``setWeight`` followed by an analysis of
``validation_duration`` seconds (the canary's failure rate against ``max_error_rate``); the
controller scales the canary before each weight and promotes after the last step. Metrics are
the proxy's own per-revision counters and latency histograms.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from rollwise.analysis import AnalysisRun, ArmSecond
from rollwise.deployments.session import Closing, Session, config_overrides, version_of
from rollwise.errors import UsageError
from rollwise.spec.models import AnalysisSettings, AnalysisStep, ErrorRateJudge, LatencyJudge

__all__ = [
    "CanaryDeployment",
    "CanaryDeploymentResult",
    "CanaryPhase",
    "MetricsSnapshot",
    "TrafficConfig",
]


class CanaryPhase(StrEnum):
    PROGRESSING = "progressing"
    PAUSED = "paused"
    PROMOTED = "promoted"
    ABORTED = "aborted"


@dataclass(frozen=True, slots=True)
class TrafficConfig:
    canary_percentage: int
    stable_percentage: int

    def __post_init__(self) -> None:
        if self.canary_percentage + self.stable_percentage != 100 or not (
            0 <= self.canary_percentage <= 100
        ):
            raise UsageError(
                f"canary {self.canary_percentage}% + stable {self.stable_percentage}% must make "
                "100% with both in 0..100"
            )


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """A revision's requests through the proxy over a window, as the proxy counted them."""

    version: str | None
    revision: int | None
    requests: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    window_seconds: float
    taken_at: float
    # per unix second: {"requests", "failures", "hist"} as the proxy counted them
    seconds: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class CanaryDeploymentResult:
    success: bool
    phase: CanaryPhase
    version: str
    revision: int | None
    final_canary_percentage: int
    steps_completed: int
    duration_seconds: float
    message: str


class CanaryDeployment(Closing):
    def __init__(
        self,
        stable_version: str | None = None,
        traffic_steps: Sequence[int] = (10, 25, 50, 100),
        validation_duration: float = 30.0,
        *,
        max_error_rate: float = 0.01,
        min_requests: int = 20,
        error_tolerance: float = 0.01,
        latency_tolerance: float = 0.2,
        require_traffic: bool = False,
        scale_down_delay: float = 30.0,
        app: str | None = None,
        spec_file: str | Path | None = None,
        state_dir: str | Path | None = None,
        timeout: float = 900.0,
        session: Session | None = None,
    ) -> None:
        steps = list(traffic_steps)
        if not steps or any(not 0 < s <= 100 for s in steps) or steps != sorted(steps):
            raise UsageError(f"traffic_steps {steps} must rise within 1..100, e.g. [10, 50, 100]")
        self.stable_version = stable_version
        self.traffic_steps = steps
        self.validation_duration = validation_duration
        self.max_error_rate = max_error_rate
        self.min_requests = min_requests
        self.error_tolerance = error_tolerance
        self.latency_tolerance = latency_tolerance
        self.require_traffic = require_traffic
        self.scale_down_delay = scale_down_delay
        self.timeout = timeout
        self.session = session or Session(app, spec_file, state_dir)

    async def deploy(
        self, version: str, config: dict[str, Any] | None = None
    ) -> CanaryDeploymentResult:
        """Release ``version`` through the traffic steps; the result says how far it got.

        An analysis that saw too few requests pauses the rollout as inconclusive: with
        ``require_traffic`` that aborts it, otherwise it goes on (no evidence of harm).
        """
        started = time.monotonic()
        sets = config_overrides(config)  # a bad key changes nothing
        await self.session.apply(self._shape)
        view = await self.session.view()
        stable = version_of(view, view["stable"])
        if self.stable_version is not None and stable != self.stable_version:
            return self._result(
                False,
                CanaryPhase.ABORTED,
                version,
                None,
                0,
                0,
                started,
                f"{self.session.app} runs {stable} as stable, not {self.stable_version}; "
                "nothing was deployed",
            )
        answer = await self.session.client.request(
            "POST", f"/apps/{self.session.app}/deploy", json={"version": version, "set": sets}
        )
        revision = int(answer["revision"])
        deadline = time.monotonic() + self.timeout
        while True:
            view, settled = await self.session.wait(
                lambda v: (
                    (v["stable"] == revision and v["phase"] == "Healthy")
                    or v["pause_reason"] == "inconclusive"
                ),
                max(0.0, deadline - time.monotonic()),
            )
            if not settled or view["pause_reason"] != "inconclusive":
                break
            if self.require_traffic:
                view = await self.session.command("abort")
                break
            await self.session.command("promote")
        promoted = view["stable"] == revision and view["phase"] == "Healthy"
        aborted = view["phase"] == "Degraded"
        phase = (
            CanaryPhase.PROMOTED
            if promoted
            else CanaryPhase.ABORTED
            if aborted
            else CanaryPhase.PAUSED
            if view["phase"] == "Paused"
            else CanaryPhase.PROGRESSING
        )
        weight = 100 if promoted else int(view["set_weight"]) if view["canary"] == revision else 0
        return self._result(
            promoted,
            phase,
            version,
            revision,
            weight,
            len(self.traffic_steps) if promoted else int(view["step"]) // 2,  # setWeight+analysis
            started,
            view["message"] or phase.value,
        )

    async def route_traffic(self, canary_percentage: int, stable_percentage: int) -> TrafficConfig:
        """Split by hand during a rollout (the canary is scaled first); steps pause."""
        config = TrafficConfig(canary_percentage, stable_percentage)
        revision = (await self.session.view())["canary"]
        await self.session.command("weight", {"weight": canary_percentage})
        await self.session.wait(
            lambda v: v["canary"] != revision or v["set_weight"] == canary_percentage, self.timeout
        )
        return config

    async def get_baseline_metrics(self, window: float | None = None) -> MetricsSnapshot:
        """The stable revision over the last ``window`` seconds (default: validation_duration)."""
        view = await self.session.view()
        return await self._metrics(view, view["stable"], window)

    async def get_canary_metrics(self, window: float | None = None) -> MetricsSnapshot:
        view = await self.session.view()
        return await self._metrics(view, view["canary"], window)

    def metrics_degraded(self, baseline: MetricsSnapshot, current: MetricsSnapshot) -> bool:
        """Is ``current`` (the canary) shown worse than ``baseline``, by the judges the
        controller runs? The failure-rate e-process (a pass margin of ``error_tolerance``) and
        the p99 latency judge (tolerance ``latency_tolerance``) at α = 0.01, over the seconds
        both snapshots cover; snapshots of different windows are compared as two whole blocks
        (failures only). Fewer than ``min_requests`` canary requests is never degraded."""
        if current.requests < self.min_requests:
            return False
        settings = AnalysisSettings(
            error_rate=ErrorRateJudge(margin=self.error_tolerance),
            latency=LatencyJudge(
                quantile=0.99, tolerance=self.latency_tolerance, initial_delay=0.0
            ),
        )
        run = AnalysisRun(settings, AnalysisStep(min_requests=self.min_requests))
        shared = sorted(set(current.seconds) & set(baseline.seconds), key=int)
        if shared:
            for second in shared:
                run.feed(
                    int(second),
                    ArmSecond.from_stats(current.seconds[second]),
                    ArmSecond.from_stats(baseline.seconds[second]),
                )
        else:
            run.feed(0, _block(current), _block(baseline))
        return run.verdict(current.window_seconds).outcome == "fail"

    async def _metrics(
        self, view: dict[str, Any], revision: int | None, window: float | None
    ) -> MetricsSnapshot:
        seconds = self.validation_duration if window is None else window
        now = time.time()
        stats = await self.session.client.request(
            "GET", f"/apps/{self.session.app}/stats", params={"since": int(now - seconds)}
        )
        counted = stats["revisions"].get(str(revision), {})
        latency = counted.get("latency_ms", {})
        return MetricsSnapshot(
            version=version_of(view, revision),
            revision=revision,
            requests=int(counted.get("requests", 0)),
            failures=int(counted.get("failures", 0)),
            p50_ms=latency.get("p50"),
            p95_ms=latency.get("p95"),
            p99_ms=latency.get("p99"),
            window_seconds=seconds,
            taken_at=now,
            seconds=counted.get("seconds", {}),
        )

    def _shape(self, spec: dict[str, Any]) -> None:
        steps: list[dict[str, Any]] = []
        for weight in self.traffic_steps:
            if weight >= 100:
                break
            steps.append({"setWeight": weight})
            steps.append(
                {
                    "analysis": {
                        "until": "duration",
                        "duration": self.validation_duration,
                        "maxErrorRate": self.max_error_rate,
                        "minRequests": self.min_requests,
                    }
                }
            )
        canary: dict[str, Any] = {"steps": steps, "scaleDownDelaySeconds": self.scale_down_delay}
        judges = (spec["spec"].get("strategy") or {}).get("canary", {}).get("analysis")
        if judges is not None:
            canary["analysis"] = judges  # the spec's own judges settings stay
        spec["spec"]["strategy"] = {"canary": canary}

    def _result(
        self,
        success: bool,
        phase: CanaryPhase,
        version: str,
        revision: int | None,
        weight: int,
        steps: int,
        started: float,
        message: str,
    ) -> CanaryDeploymentResult:
        return CanaryDeploymentResult(
            success=success,
            phase=phase,
            version=version,
            revision=revision,
            final_canary_percentage=weight,
            steps_completed=steps,
            duration_seconds=round(time.monotonic() - started, 3),
            message=message,
        )


def _block(snapshot: MetricsSnapshot) -> ArmSecond:
    """A whole snapshot as one block of counts (latency needs seconds to be judged)."""
    return ArmSecond.from_stats({"requests": snapshot.requests, "failures": snapshot.failures})
