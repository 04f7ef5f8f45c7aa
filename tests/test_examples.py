"""The mission's usage examples of the deployment API run as written against a real
controller (examples/deployment_api.py), with ResourceWarnings as errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rollwise.controller.status import RolloutStatus
from rollwise.store import Store

from .conftest import stop_everything
from .helpers import EXAMPLES


def stable_version(store: Store, app: str) -> str:
    status = RolloutStatus.model_validate(store.get_status(app))
    assert status.stable is not None and status.canary is None, status
    return store.revision(app, status.stable).version


@pytest.mark.slow
@pytest.mark.timeout(240)  # the mission's own 30 s waits make it about two minutes
def test_the_missions_examples_run_as_written(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {**os.environ, "PYTHONWARNINGS": "error::ResourceWarning"}  # the examples' too
    argv = [sys.executable, str(EXAMPLES / "deployment_api.py"), "--state-dir", str(state)]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=400, env=env, cwd=tmp_path
        )
    finally:
        stop_everything(state)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "ResourceWarning" not in out and "Traceback" not in out, out
    deployed = re.search(r"--- blue-green \(exit 0\)\nDeployed successfully in ([\d.]+)s", out)
    assert deployed and float(deployed.group(1)) >= 30, out  # the 30 s of monitoring ran
    assert "--- canary (exit 0)\n\n" in out, out  # it prints only when it fails
    assert "--- rollback (exit 0)\nRolled back to 1.1.0" in out
    assert "--- smoke (exit 0)\nTests: 3/3 passed" in out
    assert "--- pipeline (exit 0)\nDeployment successful!" in out
    store = Store(state / "state.db")
    try:
        assert stable_version(store, "example-blue-green") == "1.2.0"
        assert stable_version(store, "example-canary") == "1.2.0"
        assert stable_version(store, "example-rollback") == "1.1.0"
        assert stable_version(store, "example-pipeline") == "1.2.0"
    finally:
        store.close()
