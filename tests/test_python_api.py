"""The mission's Python API, used as written, against real controllers, proxies and agents."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import httpx
import psutil
import pytest

from rollwise import (
    BlueGreenDeployment,
    CanaryDeployment,
    CanaryPhase,
    DeploymentEnvironment,
    DeploymentStatus,
    RollbackManager,
    RollbackReason,
    RollbackStatus,
    TrafficConfig,
)
from rollwise.backends.ports import free_port
from rollwise.errors import UsageError

from .conftest import Cluster, write_spec


def test_blue_green_and_rollback_on_the_running_controller(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No arguments: the rollwise.yaml of the working directory, the default state directory.
    monkeypatch.chdir(cluster.spec_file.parent)
    monkeypatch.setenv("ROLLWISE_STATE_DIR", str(cluster.state_dir))

    async def main() -> None:
        deployment = BlueGreenDeployment(health_check_interval=0.2, monitoring_duration=2.0)
        result = await deployment.deploy("1.2.0")
        assert result.success, result
        assert (result.status, result.version, result.previous_version) == (
            DeploymentStatus.ACTIVE,
            "1.2.0",
            "1.0.0",
        )
        assert result.environment is DeploymentEnvironment.GREEN  # revision 2
        watched = await deployment.monitor_deployment(duration=0.5)  # the mission's type
        assert watched.success and watched.status is DeploymentStatus.ACTIVE, watched
        assert watched.version == "1.2.0" and "2/2 ready" in watched.message
        assert watched.state is not None and watched.state.active and watched.state.healthy

        with pytest.raises(UsageError, match="config key 'debug' is not a spec field"):
            await deployment.deploy_to_staging("1.3.0", config={"replicas": 3, "debug": True})
        assert (await deployment.session.view())["canary"] is None  # refused: nothing changed
        staged = await deployment.deploy_to_staging(
            "1.3.0", config={"replicas": 1, "env.AGENT_GREETING": "hi", "env": {"MODE": "x"}}
        )
        assert staged.success and staged.status is DeploymentStatus.STAGED
        staged_view = await deployment.session.view()
        assert [r["health"]["desired"] for r in staged_view["revisions"] if r["number"] == 3] == [1]
        assert staged.environment is DeploymentEnvironment.BLUE  # revision 3
        async with httpx.AsyncClient(base_url=cluster.url) as client:
            still = await client.get("/healthz")
            assert still.json()["version"] == "1.2.0"  # staging changes no live traffic
        swapped = await deployment.swap_endpoints()
        assert swapped.success and swapped.version == "1.3.0"
        await deployment.close()

        refused = await RollbackManager(current_version="9.9.9").rollback()
        assert not refused.success and refused.status is RollbackStatus.FAILED
        assert "not 9.9.9" in refused.message

        back = await RollbackManager(current_version="1.3.0", previous_version="1.2.0").rollback(
            reason=RollbackReason.HEALTH_CHECK_FAILURE
        )
        assert back.success, back
        assert (back.from_version, back.target_version, back.instant) == ("1.3.0", "1.2.0", True)
        assert back.to_version == back.target_version
        async with httpx.AsyncClient(base_url=cluster.url) as client:
            assert (await client.get("/healthz")).json()["version"] == "1.2.0"

        manager = RollbackManager()
        history = await manager.history()
        assert [s.version for s in history] == ["1.0.0", "1.2.0", "1.3.0"]
        manager.add_active_deployment("release-42", "canary", "1.4.0")
        assert manager.active_deployments == {"release-42": ("canary", "1.4.0")}
        manager.remove_active_deployment("release-42")
        assert await manager.stop_deployments() == []  # nothing in flight
        await manager.close()

    asyncio.run(main())


def test_the_missions_module_exports_every_name_from_both_places() -> None:
    """The mission's module exported its 20 names together; ``rollwise`` and
    ``rollwise.deployments`` both do."""
    import rollwise
    import rollwise.deployments

    names = [
        *("BlueGreenDeployment", "DeploymentEnvironment", "DeploymentStatus"),
        *("EnvironmentState", "DeploymentResult", "CanaryDeployment", "CanaryPhase"),
        *("TrafficConfig", "MetricsSnapshot", "CanaryDeploymentResult", "RollbackManager"),
        *("RollbackStatus", "RollbackReason", "DeploymentSnapshot", "RollbackResult"),
        *("SmokeTests", "TestStatus", "TestSeverity", "TestResult", "SmokeTestSuite"),
    ]
    assert len(names) == 20
    for name in names:
        assert getattr(rollwise, name) is getattr(rollwise.deployments, name), name


def test_an_embedded_controller_when_none_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    write_spec(tmp_path / "rollwise.yaml", port)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ROLLWISE_STATE_DIR", str(tmp_path / "state"))

    async def main() -> list[int]:
        deployment = BlueGreenDeployment(health_check_interval=0.2, monitoring_duration=0)
        assert deployment.session.embedded is None
        result = await deployment.deploy("1.0.0")
        assert result.success and result.status is DeploymentStatus.ACTIVE, result
        assert deployment.session.embedded is not None  # started in this process
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{port}/healthz")
            assert answer.json()["version"] == "1.0.0"
        view = await deployment.session.view()
        pids = [r["pid"] for rev in view["revisions"] for r in rev["health"]["replicas"]]
        await deployment.close()  # stops the embedded controller and what it started
        return pids

    pids = asyncio.run(main())
    assert pids and not any(psutil.pid_exists(p) for p in pids)


def test_canary_api_steps_metrics_and_manual_traffic(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(cluster.spec_file.parent)
    monkeypatch.setenv("ROLLWISE_STATE_DIR", str(cluster.state_dir))

    async def main() -> None:
        refused = await CanaryDeployment(stable_version="9.9.9").deploy("2.0.0")
        assert not refused.success and "nothing was deployed" in refused.message

        canary = CanaryDeployment(
            stable_version="1.0.0", traffic_steps=[50, 100], validation_duration=1.0, min_requests=5
        )
        result = await canary.deploy("1.1.0")  # no traffic: inconclusive, so it goes on
        assert result.success, result
        assert (result.phase, result.final_canary_percentage) == (CanaryPhase.PROMOTED, 100)

        async with httpx.AsyncClient(base_url=cluster.url) as client:
            for _ in range(30):
                assert (await client.get("/healthz")).status_code == 200
        baseline = await canary.get_baseline_metrics(window=60)
        assert baseline.version == "1.1.0" and baseline.requests >= 30
        assert baseline.p99_ms is not None and baseline.p50_ms is not None
        # the same judges as the controller: half failing against none is shown worse, both
        # as two whole windows and second by second over the same seconds
        worse = dataclasses.replace(baseline, failures=baseline.requests // 2, seconds={})
        assert canary.metrics_degraded(baseline, worse)
        failing = {
            s: {**b, "failures": b["requests"] // 2 + b["requests"] % 2}
            for s, b in baseline.seconds.items()
        }
        assert canary.metrics_degraded(baseline, dataclasses.replace(baseline, seconds=failing))
        assert not canary.metrics_degraded(baseline, baseline)

        slow = CanaryDeployment(traffic_steps=[20, 100], validation_duration=60, min_requests=5)
        rollout = asyncio.create_task(slow.deploy("1.2.0"))
        await slow.session.wait(lambda v: v["set_weight"] == 20, 30)
        config = await slow.route_traffic(70, 30)
        assert config == TrafficConfig(70, 30)
        view = await slow.session.view()
        assert view["set_weight"] == 70 and view["pause_reason"] == "user"
        await slow.session.command("promote", {"full": True})
        done = await rollout
        assert done.success and done.version == "1.2.0"
        with pytest.raises(UsageError):
            TrafficConfig(70, 20)

        strict = CanaryDeployment(
            traffic_steps=[50, 100], validation_duration=0.5, min_requests=5, require_traffic=True
        )
        aborted = await strict.deploy("1.3.0")  # no traffic, and traffic is required
        assert not aborted.success and aborted.phase is CanaryPhase.ABORTED
        for deployment in (canary, slow, strict):
            await deployment.close()

    asyncio.run(main())
