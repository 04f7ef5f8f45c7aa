"""Faults of the state store: the SQLite file locked by another process, the state directory
full or read-only. The data plane keeps serving; a change that cannot be stored is refused
with a message that says why, changes nothing, and goes through once the fault is gone; a
reconcile pass that cannot save is counted, logged and retried."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rollwise.client import AdminClient
from rollwise.errors import StoreError

from ..conftest import Cluster, running_cluster, stop_everything
from ..helpers import Background, rollwise, start_controller, wait_for

pytestmark = pytest.mark.replicas(1)

HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()  # until the test closes our stdin
db.execute("ROLLBACK")
"""


@contextlib.contextmanager
def locked(db: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the store's write lock (a forgotten ``sqlite3`` shell)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.wait(10)
        holder.stdout.close()


def reconcile_failures(cluster: Cluster) -> float:
    port = cluster.client.request("GET", "/version")["metrics_port"]
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    series = re.findall(
        r'^rollwise_reconcile_failures_total\{app="sample-agent",.*\} (\S+)$', text, re.M
    )
    return sum(float(v) for v in series)


@pytest.mark.slow
def test_a_locked_store_refuses_changes_and_keeps_serving(cluster: Cluster) -> None:
    cluster.use_steps({"steps": [{"setWeight": 50}, {"pause": {"duration": "1s"}}]}, smoke=False)
    history = cluster.client.request("GET", "/apps/sample-agent/history")
    with Background(cluster.url, rate=40) as load:
        with locked(cluster.state_dir / "state.db"):
            with pytest.raises(StoreError, match="locked by another process"):
                cluster.deploy("1.1.0")
            # nothing changed, and reading still works
            assert cluster.client.request("GET", "/apps/sample-agent/history") == history
            assert cluster.get()["stable"] == 1
        number = cluster.deploy("1.1.0")
        assert number == 2  # no number was taken by the refused deploy
        view = wait_for(lambda: (v := cluster.get())["canary"] == 2 and v["step"] >= 1 and v)
        assert view["revisions"][-1]["weight"] == 50
        # the pause ends while the store is locked: the pass that saves it fails and retries
        with locked(cluster.state_dir / "state.db"):
            wait_for(lambda: reconcile_failures(cluster) >= 1, timeout=20, every=0.2)
            assert "locked by another process" in cluster.get()["error"]
        cluster.wait_stable(2, timeout=30)
    assert load.result().errors_total == 0, load.result().errors
    assert cluster.get()["reconcile_errors"] == 0
    log = (cluster.state_dir / "logs" / "controller.log").read_text()
    assert "reconcile pass failed" in log
    events = cluster.client.request("GET", "/apps/sample-agent/events")
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids))
    assert "RolloutCompleted" in [e["kind"] for e in events]


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs for the state directory (root only: mount)."""
    mount = tmp_path / "fs"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        stop_everything(mount / "state")
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write zeros into ``directory`` until its file system is full."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def remount(mount: Path, mode: str) -> bool:
    done = subprocess.run(["mount", "-o", f"remount,{mode}", str(mount)], capture_output=True)
    return done.returncode == 0


def controller_pid(cluster: Cluster) -> int:
    return int((cluster.state_dir / "controller.pid").read_text())


def test_a_full_state_directory(small_fs: Path, tmp_path: Path) -> None:
    with running_cluster(small_fs / "state", tmp_path, replicas=1) as cluster:
        cluster.use_steps({"steps": [{"setWeight": 50}, {"pause": {"duration": "300ms"}}]})
        history = cluster.client.request("GET", "/apps/sample-agent/history")
        pid = controller_pid(cluster)
        with Background(cluster.url, rate=40) as load:
            filler = fill(small_fs)
            with pytest.raises(StoreError, match="is full; free some space"):
                cluster.deploy("1.1.0")
            assert cluster.client.request("GET", "/apps/sample-agent/history") == history
            filler.unlink()
            assert cluster.deploy("1.1.0") == 2
            cluster.wait_stable(2, timeout=30)
        assert load.result().errors_total == 0, load.result().errors
        assert controller_pid(cluster) == pid


def test_a_read_only_state_directory(small_fs: Path, tmp_path: Path) -> None:
    """Linux refuses to remount a file system read-only while files are open for writing
    (the store, the logs), so the fault strikes at start: after a restart of the machine
    with the volume read-only. Nothing starts, the message says why, and once the volume is
    writable again the app comes back as it was."""
    state = small_fs / "state"
    with running_cluster(state, tmp_path, replicas=1) as cluster:
        cluster.deploy("1.1.0")
        cluster.wait_stable(2)
        port = cluster.port
    # the stopped processes may still be closing their files: busy until then
    wait_for(lambda: remount(small_fs, "ro"), timeout=10, every=0.2)
    try:
        done = rollwise("up", "--detach", state_dir=state, check=False)
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [
            f"error: cannot use the state directory {state}: Read-only file system; make it "
            "writable, free some space, or pick another with --state-dir (or ROLLWISE_STATE_DIR)"
        ]
        assert not (state / "admin.sock").exists() or not AdminClient(state).running()
    finally:
        assert remount(small_fs, "rw")
    start_controller(state)

    def serving() -> str | None:
        answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        return str(answer.json()["version"]) if answer.status_code == 200 else None

    assert wait_for(serving, timeout=30) == "1.1.0"
    with AdminClient(state) as client:
        assert client.request("GET", "/apps/sample-agent")["stable"] == 2
