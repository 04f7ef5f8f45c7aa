"""The controller under a supervisor that follows the unit `rollwise service install` writes
(systemd does not run on this machine: the test's supervisor keeps the unit's promises: run
ExecStart, restart it RestartSec after it exits, SIGTERM to stop). kill -9 of the controller
and the proxy together is healed without a person."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

import httpx
import pytest

from rollwise.backends.ports import free_port
from rollwise.client import AdminClient
from rollwise.store import Store

from ..conftest import Cluster, stop_everything, write_spec
from ..helpers import Background, rollwise, wait_for


class UnitSupervisor:
    """Runs a unit's ExecStart and restarts it RestartSec after it exits (Restart=always)."""

    def __init__(self, unit: Path, log: Path) -> None:
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.read(unit)
        service = parser["Service"]
        assert service["Restart"] == "always" and service["KillMode"] == "process"
        self.argv = shlex.split(service["ExecStart"])
        self.delay = float(service["RestartSec"])
        self.log = log
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopping.is_set():
            with self.log.open("ab") as out:
                self.proc = subprocess.Popen(
                    self.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            self.starts += 1
            self.proc.wait()
            self.stopping.wait(self.delay)

    def __enter__(self) -> UnitSupervisor:
        self.thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stopping.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # systemctl stop
            self.proc.wait(60)
        self.thread.join(10)


def proxy_pid(state: Path) -> int:
    store = Store(state / "state.db")
    try:
        return int(store.get_kv("proxy")["pid"])
    finally:
        store.close()


@pytest.mark.solo
def test_a_supervised_controller_heals_kill_9_of_the_controller_and_the_proxy(
    tmp_path: Path,
) -> None:
    units, state = tmp_path / "units", (tmp_path / "state").resolve()
    rollwise(
        "service", "install", "--unit-dir", str(units), "--state-dir", str(state),
        "--", "--metrics-port", "0",
    )  # fmt: skip
    unit = units / "rollwise.service"
    if shutil.which("systemd-analyze"):
        subprocess.run(["systemd-analyze", "verify", str(unit)], check=True, capture_output=True)
    port = free_port()
    spec = write_spec(tmp_path / "rollwise.yaml", port, replicas=1)
    client = AdminClient(state)
    try:
        with UnitSupervisor(unit, tmp_path / "controller.log") as supervisor:
            wait_for(client.running, timeout=30)
            cluster = Cluster(state, spec, port, client, tmp_path / "requests.jsonl", 1)
            cluster.apply("1.0.0")
            cluster.wait_stable(1)
            with Background(cluster.url, rate=40) as load:
                wait_for(lambda: load.live.ok > 20 or None, timeout=20)
                controller = int((state / "controller.pid").read_text())
                os.kill(proxy_pid(state), signal.SIGKILL)
                os.kill(controller, signal.SIGKILL)
                killed = time.monotonic()

                def serving() -> bool:
                    answer = httpx.get(cluster.url + "/healthz", timeout=5.0)
                    return answer.status_code == 200

                wait_for(serving, timeout=30, every=0.02)
                took = time.monotonic() - killed
                answered = load.live.ok
                wait_for(lambda: load.live.ok > answered + 20 or None, timeout=20)
            print(f"serving again {took:.2f} s after kill -9 of the controller and the proxy")
            assert supervisor.starts == 2  # one restart, no person
            assert took < 2.0, f"serving again after {took:.2f} s"
            assert client.request("GET", "/apps/sample-agent")["stable"] == 1
    finally:
        client.close()
        stop_everything(state)
    rollwise("service", "uninstall", "--unit-dir", str(units))
    assert not unit.exists()
