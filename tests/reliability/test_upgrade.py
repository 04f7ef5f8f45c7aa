"""A zero-downtime upgrade of rollwise itself: ``rollwise restart`` from another build while
an app serves under load and a canary is paused. The controller leaves the proxy and the
replicas serving, the new build's controller adopts them and replaces the proxy with its
own (the old one drains): no request fails, and the paused canary goes on from where it was.

The other build is a copy of this source tree with one line changed in the proxy package,
put first on ``PYTHONPATH`` (what installing another rollwise does to the interpreter)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from rollwise.store import Store

from ..conftest import NOT_MEASURED, running_cluster
from ..helpers import ROOT, Background, wait_for
from ..test_strategies import wait_phase
from .test_listeners import _stored_pid


def another_build(into: Path) -> tuple[dict[str, str], str]:
    """A copy of rollwise whose proxy differs by a line; the environment that runs it and
    its data plane's build id."""
    shutil.copytree(ROOT / "src" / "rollwise", into / "rollwise")
    marker = into / "rollwise" / "routing" / "proxy" / "__init__.py"
    marker.write_text(marker.read_text() + "\n# the next build\n")
    env = {**os.environ, **NOT_MEASURED, "PYTHONPATH": str(into)}
    probe = "from rollwise.routing.dataplane import build_id; print(build_id())"
    built = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    return env, built.stdout.strip()


@pytest.mark.solo
def test_restart_onto_another_build_under_load_with_a_paused_canary_fails_no_request(
    tmp_path: Path,
) -> None:
    env, build = another_build(tmp_path / "build")
    with running_cluster(tmp_path / "state", tmp_path, 1) as cluster:
        cluster.use_steps({"steps": [{"setWeight": 20}, {"pause": {}}]})
        cluster.deploy("1.1.0")
        wait_phase(cluster, "Paused", timeout=30)
        with Background(cluster.url, rate=80) as load:
            wait_for(lambda: load.live.ok > 80 or None, timeout=20)
            old_proxy = _stored_pid(cluster)
            old_controller = int((cluster.state_dir / "controller.pid").read_text())
            argv = [sys.executable, "-m", "rollwise", "restart"]
            argv += ["--state-dir", str(cluster.state_dir)]
            restarted = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
            assert restarted.returncode == 0, restarted.stderr
            assert "the proxy and the replicas kept serving" in restarted.stdout
            new_proxy = wait_for(lambda: (p := _stored_pid(cluster)) != old_proxy and p, 30)
            wait_for(lambda: not psutil.pid_exists(old_proxy) or None, timeout=30)
            answered = load.live.ok
            wait_for(lambda: load.live.ok > answered + 80 or None, timeout=30)
        report = load.result()
        assert report.errors_total == 0, report.errors
        # the new controller and proxy are the other build's
        new_controller = int((cluster.state_dir / "controller.pid").read_text())
        assert new_controller != old_controller
        for pid in (new_controller, new_proxy):
            assert psutil.Process(pid).environ().get("PYTHONPATH") == str(tmp_path / "build")
        store = Store(cluster.state_dir / "state.db")
        assert store.get_kv("proxy")["build"] == build
        store.close()
        # the canary is where it was, and goes on
        view = cluster.get()
        assert (view["phase"], view["canary"], view["stable"]) == ("Paused", 2, 1), view
        assert view["actual_weights"] == {"1": 80, "2": 20}
        cluster.cli("promote", "sample-agent")
        cluster.wait_stable(2)


def test_restart_keeps_the_up_options_and_says_when_no_controller_runs(tmp_path: Path) -> None:
    from rollwise.cli.lifecycle import up_options

    argv = [sys.executable, "-m", "rollwise", "up", "--state-dir", "/s", "--proxy-workers", "2"]
    assert up_options([*argv, "--detach", "--record", "r.jsonl"]) == [
        "--proxy-workers",
        "2",
        "--record",
        "r.jsonl",
    ]
    assert up_options(["rollwise", "up", "--state-dir=/s", "-d"]) == []
    done = subprocess.run(
        [sys.executable, "-m", "rollwise", "restart", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done
    assert "rollwise up" in done.stderr and "Traceback" not in done.stderr
