"""The fault-injection suite (see soak.py): a short run in ``make test``; the soak by
``ROLLWISE_SOAK_ROLLOUTS=60 .venv/bin/pytest tests/reliability/test_faults.py -s`` prints its
report (JSON) and writes it to ``ROLLWISE_SOAK_REPORT`` when set (docs/reliability.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .soak import Soak

ROLLOUTS = int(os.environ.get("ROLLWISE_SOAK_ROLLOUTS", "4"))


@pytest.mark.timeout(60 + 30 * ROLLOUTS)
@pytest.mark.slow
def test_rollouts_survive_kill_9_of_controller_proxy_and_replicas(tmp_path: Path) -> None:
    rollouts = ROLLOUTS
    seed = int(os.environ.get("ROLLWISE_SOAK_SEED", "20261122"))
    report = Soak(tmp_path, seed).run(rollouts).as_json()
    print(json.dumps(report, indent=2))
    if os.environ.get("ROLLWISE_SOAK_REPORT"):
        Path(os.environ["ROLLWISE_SOAK_REPORT"]).write_text(json.dumps(report, indent=2))
    assert report["rollouts"] == rollouts
    assert report["faults_total"] >= 2 * rollouts
    assert report["violations"] == [], report
