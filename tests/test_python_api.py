"""The mission's Python API, used as written, against real controllers, proxies and agents."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import psutil
import pytest

from rollwise import (
    BlueGreenDeployment,
    DeploymentEnvironment,
    DeploymentStatus,
    RollbackManager,
    RollbackReason,
    RollbackStatus,
)
from rollwise.backends.ports import free_port

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
        state = await deployment.monitor_deployment(duration=0.5)
        assert state.active and state.version == "1.2.0" and state.healthy

        staged = await deployment.deploy_to_staging("1.3.0")
        assert staged.success and staged.status is DeploymentStatus.STAGED
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
        assert (back.from_version, back.to_version, back.instant) == ("1.3.0", "1.2.0", True)
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
