"""``BlueGreenDeployment``: the mission's blue-green API over the controller's blue-green.

    result = await BlueGreenDeployment().deploy("1.2.0")
    result.success

The app comes from ``rollwise.yaml`` in the working directory (or ``spec_file=``); its
strategy is set to blue-green with the constructor's settings: readiness every
``health_check_interval`` seconds, ``health_check_threshold`` failures to be unready, and a
post-promotion analysis of ``monitoring_duration`` seconds whose failure switches the
previous version back. Revisions alternate between the two environments: odd revisions are
blue, even ones green.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from rollwise.deployments.session import Closing, Session, config_overrides, version_of

__all__ = [
    "BlueGreenDeployment",
    "DeploymentEnvironment",
    "DeploymentResult",
    "DeploymentStatus",
    "EnvironmentState",
]


class DeploymentEnvironment(StrEnum):
    BLUE = "blue"
    GREEN = "green"

    @classmethod
    def of(cls, revision: int) -> DeploymentEnvironment:
        return cls.BLUE if revision % 2 else cls.GREEN


class DeploymentStatus(StrEnum):
    STAGED = "staged"  # the preview is ready and waits for swap_endpoints()
    ACTIVE = "active"  # it serves every request
    FAILED = "failed"  # it did not become active; the previous version serves


@dataclass(frozen=True, slots=True)
class EnvironmentState:
    """One environment as measured by the proxy over a monitoring window."""

    environment: DeploymentEnvironment
    version: str | None
    revision: int | None
    active: bool
    ready_replicas: int
    desired_replicas: int
    requests: int
    failures: int
    window_seconds: float

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @property
    def healthy(self) -> bool:
        return self.revision is not None and self.ready_replicas >= self.desired_replicas > 0


@dataclass(frozen=True, slots=True)
class DeploymentResult:
    success: bool
    status: DeploymentStatus
    version: str
    revision: int | None
    environment: DeploymentEnvironment | None
    previous_version: str | None
    duration_seconds: float
    message: str
    state: EnvironmentState | None = None  # what ``monitor_deployment`` measured


class BlueGreenDeployment(Closing):
    def __init__(
        self,
        health_check_interval: float = 5.0,
        health_check_threshold: int = 3,
        monitoring_duration: float = 30.0,
        *,
        max_error_rate: float = 0.01,
        min_requests: int = 20,
        preview_listen: str | None = None,
        scale_down_delay: float = 30.0,
        app: str | None = None,
        spec_file: str | Path | None = None,
        state_dir: str | Path | None = None,
        timeout: float = 600.0,
        session: Session | None = None,
    ) -> None:
        self.health_check_interval = health_check_interval
        self.health_check_threshold = health_check_threshold
        self.monitoring_duration = monitoring_duration
        self.max_error_rate = max_error_rate
        self.min_requests = min_requests
        self.preview_listen = preview_listen
        self.scale_down_delay = scale_down_delay
        self.timeout = timeout
        self.session = session or Session(app, spec_file, state_dir)

    async def deploy(self, version: str, config: dict[str, Any] | None = None) -> DeploymentResult:
        """Release ``version``: preview, swap once ready, then the monitoring window."""
        return await self._release(version, config, auto_promote=True)

    async def deploy_to_staging(
        self, version: str, config: dict[str, Any] | None = None
    ) -> DeploymentResult:
        """Start ``version`` as the preview and stop there; ``swap_endpoints()`` goes on."""
        return await self._release(version, config, auto_promote=False)

    async def swap_endpoints(self) -> DeploymentResult:
        """Make the staged preview the active environment (every new request, at once)."""
        started = time.monotonic()
        view = await self.session.view()
        revision = view["canary"]
        before = version_of(view, view["stable"])
        if revision is None or view["phase"] != "Paused":
            return DeploymentResult(
                False,
                DeploymentStatus.FAILED,
                version_of(view, revision) or "",
                revision,
                None,
                before,
                0.0,
                f"nothing staged to swap: {self.session.app} is {view['phase']}",
            )
        await self.session.command("promote")
        return await self._outcome(revision, before, started)

    async def monitor_deployment(
        self,
        environment: DeploymentEnvironment | None = None,
        duration: float | None = None,
    ) -> DeploymentResult:
        """Watch an environment (default: the active one) for ``duration`` seconds of real
        requests through the proxy: a success when all its replicas are ready and its
        failure rate is at most ``max_error_rate``; ``state`` holds what was measured."""
        started = time.monotonic()
        window = self.monitoring_duration if duration is None else duration
        since = time.time()
        await asyncio.sleep(window)  # the measurement window itself: requests arrive meanwhile
        view = await self.session.view()
        revision = _revision_in(view, environment)
        stats = await self.session.client.request(
            "GET", f"/apps/{self.session.app}/stats", params={"since": int(since)}
        )
        counts = stats["revisions"].get(str(revision), {"requests": 0, "failures": 0})
        health = next(
            (r["health"] for r in view["revisions"] if r["number"] == revision),
            {"ready": 0, "desired": 0},
        )
        state = EnvironmentState(
            environment=environment or DeploymentEnvironment.of(revision or 1),
            version=version_of(view, revision),
            revision=revision,
            active=revision is not None and revision == view["stable"],
            ready_replicas=int(health["ready"]),
            desired_replicas=int(health["desired"]),
            requests=int(counts["requests"]),
            failures=int(counts["failures"]),
            window_seconds=window,
        )
        good = state.healthy and state.error_rate <= self.max_error_rate
        status = DeploymentStatus.ACTIVE if state.active else DeploymentStatus.STAGED
        return DeploymentResult(
            good,
            status if revision is not None else DeploymentStatus.FAILED,
            state.version or "",
            revision,
            state.environment,
            version_of(view, view["stable"]) if not state.active else None,
            round(time.monotonic() - started, 3),
            f"{state.environment} ({state.version}): {state.ready_replicas}/"
            f"{state.desired_replicas} ready, {state.failures}/{state.requests} failed over "
            f"{window:g}s" + ("" if good else f" (at most {self.max_error_rate:.2%} allowed)"),
            state,
        )

    async def _release(
        self, version: str, config: dict[str, Any] | None, auto_promote: bool
    ) -> DeploymentResult:
        started = time.monotonic()
        sets = config_overrides(config)  # a bad key changes nothing
        await self.session.apply(lambda spec: self._shape(spec, auto_promote))
        view = await self.session.view()
        before = version_of(view, view["stable"])
        answer = await self.session.client.request(
            "POST",
            f"/apps/{self.session.app}/deploy",
            json={"version": version, "set": sets},
        )
        revision = int(answer["revision"])
        if auto_promote:
            return await self._outcome(revision, before, started)
        view, ok = await self.session.wait(
            lambda v: (
                (v["canary"] == revision and v["phase"] == "Paused")
                or (v["stable"] == revision and v["phase"] == "Healthy")
            ),
            self.timeout,
        )
        return DeploymentResult(
            ok,
            DeploymentStatus.STAGED if ok else DeploymentStatus.FAILED,
            version,
            revision,
            DeploymentEnvironment.of(revision),
            before,
            round(time.monotonic() - started, 3),
            view["message"] or ("staged" if ok else "did not reach the preview"),
        )

    async def _outcome(self, revision: int, before: str | None, started: float) -> DeploymentResult:
        view, ok = await self.session.wait(
            lambda v: v["stable"] == revision and v["canary"] is None and v["phase"] == "Healthy",
            self.timeout,
        )
        return DeploymentResult(
            ok,
            DeploymentStatus.ACTIVE if ok else DeploymentStatus.FAILED,
            version_of(view, revision) or "",
            revision,
            DeploymentEnvironment.of(revision),
            before,
            round(time.monotonic() - started, 3),
            view["message"] or ("active" if ok else f"{view['phase']}"),
        )

    def _shape(self, spec: dict[str, Any], auto_promote: bool) -> None:
        body = spec["spec"]
        readiness = body["template"].setdefault("readiness", {})
        readiness["interval"] = self.health_check_interval
        readiness["failureThreshold"] = self.health_check_threshold
        blue_green: dict[str, Any] = {
            "autoPromotionEnabled": auto_promote,
            "scaleDownDelaySeconds": self.scale_down_delay,
        }
        if self.preview_listen:
            blue_green["previewListen"] = self.preview_listen
        if self.monitoring_duration > 0:
            blue_green["postPromotionAnalysis"] = {
                "until": "duration",
                "duration": self.monitoring_duration,
                "maxErrorRate": self.max_error_rate,
                "minRequests": self.min_requests,
            }
        body["strategy"] = {"blueGreen": blue_green}


def _revision_in(view: dict[str, Any], environment: DeploymentEnvironment | None) -> int | None:
    if environment is None:
        return int(view["stable"]) if view["stable"] is not None else None
    for rev in sorted(view["revisions"], key=lambda r: -int(r["number"])):
        if DeploymentEnvironment.of(int(rev["number"])) is environment:
            return int(rev["number"])
    return None
