"""The mission's five usage examples of the deployment API, as written, on a real controller.

    python examples/deployment_api.py [--state-dir DIR]

Each example is the mission's code with two changes only: the import line (``rollwise``, not
``src.deployment``) and the endpoint URL (the app's own listener, not api.example.com).
Examples act on ``rollwise.yaml`` of the working directory, so each runs in a directory of its
own, with an app of its own brought to the state the example presumes (1.1.0 serving, or 1.2.0
over a warm 1.1.0), in its own process; the five run side by side against one controller (the
one running for ``--state-dir``, else one started here). The mission's defaults stand: 5 s
health checks, 30 s of blue-green monitoring, 30 s of canary validation per step, so a run
takes about two minutes. Exit code 0 when every example ran to its end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from rollwise.backends.ports import free_port
from rollwise.client import AdminClient
from rollwise.controller.launch import spawn_controller

HERE = Path(__file__).resolve().parent


# --- the mission's examples (the import line and the endpoint URL differ) --------------------


async def blue_green_example() -> None:
    from rollwise import BlueGreenDeployment

    deployment = BlueGreenDeployment(
        health_check_interval=5.0,
        health_check_threshold=3,
        monitoring_duration=30.0,
    )

    result = await deployment.deploy("1.2.0")
    if result.success:
        print(f"Deployed successfully in {result.duration_seconds:.2f}s")


async def canary_example() -> None:
    from rollwise import CanaryDeployment

    canary = CanaryDeployment(
        stable_version="1.1.0",
        traffic_steps=[10, 25, 50, 100],
        validation_duration=30.0,
    )

    result = await canary.deploy("1.2.0")
    if not result.success:
        print(f"Failed at {result.final_canary_percentage}% traffic")


async def rollback_example() -> None:
    from rollwise import RollbackManager, RollbackReason

    manager = RollbackManager(
        current_version="1.2.0",
        previous_version="1.1.0",
    )

    manager.add_active_deployment("deploy-123", "canary", "1.2.0")

    result = await manager.rollback(reason=RollbackReason.HEALTH_CHECK_FAILURE)
    if result.success:
        print(f"Rolled back to {result.target_version}")


async def smoke_example(endpoint_url: str) -> None:
    from rollwise import SmokeTests

    smoke = SmokeTests(
        endpoint_url=endpoint_url,
        timeout=30.0,
        fail_fast=False,
    )

    result = await smoke.run_all()
    print(f"Tests: {result.passed}/{result.total_tests} passed")
    if not result.success:
        for test in result.test_results:
            if test.status.value == "failed":
                print(f"  ✗ {test.test_name}: {test.message}")


async def pipeline_example(endpoint_url: str) -> None:
    from rollwise import (
        BlueGreenDeployment,
        RollbackManager,
        RollbackReason,
        SmokeTests,
    )

    # Initialize components
    deployment = BlueGreenDeployment()
    smoke = SmokeTests(endpoint_url=endpoint_url)
    rollback = RollbackManager(current_version="1.1.0")

    # Register deployment
    rollback.add_active_deployment("deploy-456", "blue-green", "1.2.0")

    # Deploy
    deploy_result = await deployment.deploy("1.2.0")
    if not deploy_result.success:
        await rollback.rollback(reason=RollbackReason.DEPLOYMENT_TIMEOUT)
        return

    # Test
    smoke_result = await smoke.run_all()
    if not smoke_result.success:
        await rollback.rollback(reason=RollbackReason.HEALTH_CHECK_FAILURE)
        return

    # Complete
    rollback.remove_active_deployment("deploy-456")
    print("Deployment successful!")


# --- running them ---------------------------------------------------------------------------

ALONE = {
    "blue-green": blue_green_example,
    "canary": canary_example,
    "rollback": rollback_example,
}  # smoke and pipeline take the app's URL
# what each example presumes: versions released before it runs, the last one serving
BEFORE = {
    "blue-green": ["1.1.0"],
    "canary": ["1.1.0"],
    "rollback": ["1.1.0", "1.2.0"],
    "smoke": ["1.1.0"],
    "pipeline": ["1.1.0"],
}


def _spec(name: str, port: int) -> dict[str, Any]:
    """The sample agent as app ``name`` on ``port``: one replica, released directly."""
    spec: dict[str, Any] = yaml.safe_load((HERE / "rollwise.yaml").read_text())
    spec["metadata"]["name"] = name
    body = spec["spec"]
    body["replicas"] = 1
    body["listen"] = f"127.0.0.1:{port}"
    body["template"]["cwd"] = str(HERE)
    body["template"]["env"]["AGENT_PUBLIC_URL"] = f"http://127.0.0.1:{port}/"
    body["strategy"] = {"canary": {"steps": [], "scaleDownDelaySeconds": "10m"}}
    return spec


def _prepare(client: AdminClient, work: Path) -> dict[str, tuple[Path, str]]:
    """A directory and an app per example, at the state the example presumes."""
    prepared: dict[str, tuple[Path, str]] = {}
    for name in BEFORE:
        directory = work / name
        directory.mkdir(parents=True, exist_ok=True)
        port = free_port()
        spec = _spec(f"example-{name}", port)
        (directory / "rollwise.yaml").write_text(yaml.safe_dump(spec))
        client.request("PUT", "/apps", json={"spec": spec, "base_dir": str(directory)})
        prepared[name] = (directory, f"http://127.0.0.1:{port}")
    for number, version in enumerate(["1.1.0", "1.2.0"], start=1):
        apps = [name for name, versions in BEFORE.items() if version in versions]
        for name in apps:
            path = f"/apps/example-{name}/deploy"
            client.request("POST", path, json={"version": version})
        for name in apps:
            _wait_stable(client, f"example-{name}", number)
    return prepared


def _wait_stable(client: AdminClient, app: str, revision: int, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        view = client.request("GET", f"/apps/{app}")
        if view["stable"] == revision and view["canary"] is None and view["phase"] == "Healthy":
            return
        time.sleep(0.2)
    raise SystemExit(f"{app} did not reach revision {revision}: {view['message']}")


def run_one(name: str, url: str) -> None:
    """One example, in this process (the working directory holds its rollwise.yaml)."""
    if name == "smoke":
        asyncio.run(smoke_example(url))
    elif name == "pipeline":
        asyncio.run(pipeline_example(url))
    else:
        asyncio.run(ALONE[name]())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, help="a controller's state directory")
    parser.add_argument("--example", choices=sorted(BEFORE), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.example:
        run_one(args.example, args.url or "")
        return 0
    with tempfile.TemporaryDirectory(prefix="rollwise-examples-") as tmp:
        work = Path(tmp)
        state = (args.state_dir or work / "state").resolve()
        started = None
        failed = 0
        with AdminClient(state) as client:
            if not client.running():
                started = spawn_controller(state, "--metrics-port", "0")
            try:
                prepared = _prepare(client, work)
                env = {**os.environ, "ROLLWISE_STATE_DIR": str(state)}
                procs = {
                    name: subprocess.Popen(
                        [sys.executable, __file__, "--example", name, "--url", url],
                        cwd=directory,
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                    for name, (directory, url) in prepared.items()
                }
                for name, proc in procs.items():
                    out, _ = proc.communicate(timeout=600)
                    print(f"--- {name} (exit {proc.returncode})")
                    print(out.rstrip())
                    failed += proc.returncode != 0
            finally:
                if started is not None:
                    client.request("POST", "/shutdown")
                    started.wait(60)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
