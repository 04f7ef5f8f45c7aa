"""The wall clock stepping by two hours, forward then back, in the middle of a canary's
timed pause: the pause still lasts what the spec says, nothing passes its progress deadline,
and no request fails. The step is real for every process of the cluster (controller, proxy,
replicas): libfaketime moves their ``CLOCK_REALTIME``, and leaves the monotonic clock alone,
as an NTP step or a hand-set clock would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..conftest import Cluster, running_cluster
from ..helpers import Background, wait_for

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
PAUSE_S = 4.0


def seen_offset(env: dict[str, str]) -> float:
    """How far from the real time a process started now sees the wall clock."""
    out = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout) - time.time()


def paused_rollout_lasts(cluster: Cluster, version: str, step: object) -> float:
    """Deploy ``version``, call ``step()`` once its canary is in the timed pause, and return
    how long the pause lasted, on the monotonic clock."""
    number = cluster.deploy(version)
    wait_for(lambda: (v := cluster.get())["canary"] == number and v["step"] >= 1, timeout=30)
    paused = time.monotonic()
    step()  # type: ignore[operator]
    view = cluster.wait_stable(number, timeout=30)
    assert view["phase"] == "Healthy", view
    return time.monotonic() - paused


@pytest.mark.slow
@pytest.mark.solo  # libfaketime reads its offset file on each clock read: slow among others
def test_a_stepped_wall_clock_moves_no_pause_and_no_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not LIBFAKETIME.exists():
        pytest.skip("libfaketime is not installed (apt-get install faketime)")
    offset_file = tmp_path / "faketime"
    offset_file.write_text("+0\n")
    env = {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(offset_file),
        "FAKETIME_CACHE_DURATION": "1",  # re-read the offset every second
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # inherited by the controller and everything it starts
    faked = {**os.environ}

    def jump(offset: str, seconds: float) -> None:
        offset_file.write_text(offset + "\n")
        wait_for(lambda: abs(seen_offset(faked) - seconds) < 60, timeout=10, every=0.2)

    with running_cluster(tmp_path / "state", tmp_path, replicas=1) as cluster:
        # progressDeadlineSeconds stays at its default, 10m: a +2h step would pass it
        cluster.use_steps(
            {"steps": [{"setWeight": 50}, {"pause": {"duration": f"{PAUSE_S:.0f}s"}}]},
            smoke=False,
        )
        with Background(cluster.url, rate=40) as load:
            forward = paused_rollout_lasts(cluster, "1.1.0", lambda: jump("+2h", 7200))
            back = paused_rollout_lasts(cluster, "1.2.0", lambda: jump("-2h", -7200))
        report = load.result()
    assert PAUSE_S - 0.5 <= forward <= PAUSE_S + 4, forward
    assert PAUSE_S - 0.5 <= back <= PAUSE_S + 4, back
    assert report.errors_total == 0, report.errors
