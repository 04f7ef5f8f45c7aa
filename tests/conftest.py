"""Fixtures that run a real controller (with its proxy and replicas) on a temporary state dir."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from rollwise.backends.ports import free_port
from rollwise.backends.process import kill_marked
from rollwise.backends.replica import REPLICA_MARKER
from rollwise.client import AdminClient
from rollwise.errors import RollwiseError
from rollwise.spec import load_spec
from rollwise.store import Store

from .helpers import (
    EXAMPLES,
    prometheus_scraping,
    rollwise,
    start_controller,
    wait_for,
    wait_for_view,
)
from .kube.apiserver import FakeApiServer


@dataclass
class Cluster:
    state_dir: Path
    spec_file: Path
    port: int
    client: AdminClient
    record: Path
    replicas: int = 2

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self) -> dict[str, Any]:
        return dict(self.client.request("GET", "/apps/sample-agent"))

    def cli(self, *args: str, check: bool = True) -> Any:
        return rollwise(*args, state_dir=self.state_dir, check=check)

    def apply(self, version: str | None = None) -> None:
        """``rollwise apply -f spec_file`` through the admin API (no interpreter start)."""
        body = {
            "spec": load_spec(self.spec_file).model_dump(mode="json", by_alias=True),
            "base_dir": str(self.spec_file.parent),
            "version": version,
        }
        self.client.request("PUT", "/apps", json=body)

    def use_steps(
        self,
        canary: dict[str, Any],
        smoke: bool = True,
        extra: dict[str, Any] | None = None,
        **env: str,
    ) -> None:
        """Apply the example spec with these canary settings (more ``spec`` fields, and
        template env)."""
        write_spec(
            self.spec_file,
            self.port,
            self.replicas,
            canary=canary,
            env=env,
            smoke_tests=None if smoke else [],
            extra=extra,
        )
        self.apply()

    def use_blue_green(self, blue_green: dict[str, Any], smoke: bool = True) -> None:
        write_spec(
            self.spec_file,
            self.port,
            self.replicas,
            blue_green=blue_green,
            smoke_tests=None if smoke else [],
        )
        self.apply()

    def deploy(self, version: str, *sets: str) -> int:
        """``rollwise deploy sample-agent --version V [--set ...]`` through the admin API."""
        body = {"version": version, "set": list(sets)}
        return int(self.client.request("POST", "/apps/sample-agent/deploy", json=body)["revision"])

    def wait_stable(self, revision: int, timeout: float = 60.0) -> dict[str, Any]:
        def done(view: dict[str, Any]) -> bool:
            ok = view["stable"] == revision and view["canary"] is None
            return bool(ok and view["phase"] == "Healthy")

        return wait_for_view(self.get, done, timeout, f"revision {revision} not stable")

    def pids(self, revision: int) -> list[int]:
        view = self.get()
        for rev in view["revisions"]:
            if rev["number"] == revision:
                return [r["pid"] for r in rev["health"]["replicas"] if r["pid"]]
        return []


NOT_MEASURED = {"COVERAGE_PROCESS_CONFIG": "", "COVERAGE_PROCESS_START": ""}

# Quick steps for tests that are not about the steps themselves.
FAST_CANARY = {
    "steps": [{"setWeight": 50}, {"pause": {"duration": "300ms"}}],
    "scaleDownDelaySeconds": "1s",
}


def write_spec(
    path: Path,
    port: int,
    replicas: int = 2,
    canary: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    blue_green: dict[str, Any] | None = None,
    smoke_tests: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """The example spec on ``port`` with the given strategy; its smoke tests unless
    ``smoke_tests`` replaces them (``[]`` for releases that fail on purpose); ``extra``
    fields of ``spec`` set as given."""
    spec = yaml.safe_load((EXAMPLES / "rollwise.yaml").read_text())
    if blue_green is not None:
        spec["spec"]["strategy"] = {"blueGreen": blue_green}
    else:
        spec["spec"]["strategy"] = {"canary": canary if canary is not None else FAST_CANARY}
    if smoke_tests is not None:
        spec["spec"]["smokeTests"] = smoke_tests
    spec["spec"]["listen"] = f"127.0.0.1:{port}"
    spec["spec"]["replicas"] = replicas
    spec["spec"]["template"]["cwd"] = str(EXAMPLES)
    spec["spec"]["template"]["env"]["AGENT_PUBLIC_URL"] = f"http://127.0.0.1:{port}/"
    # the apps are not rollwise: when the suite measures coverage, their replicas are not
    # traced (an empty value turns coverage's process start off)
    spec["spec"]["template"]["env"].update(NOT_MEASURED)
    spec["spec"]["template"]["env"].update(env or {})
    spec["spec"]["template"]["readiness"]["interval"] = "200ms"
    spec["spec"].update(extra or {})
    path.write_text(yaml.safe_dump(spec))
    return path


def stop_everything(state_dir: Path) -> None:
    """What ``rollwise down`` does, then kill whatever the store still records (tests leave
    nothing)."""
    pid_file = state_dir / "controller.pid"
    with (
        AdminClient(state_dir) as client,
        contextlib.suppress(RollwiseError, AssertionError, httpx.HTTPError),
    ):
        client.request("POST", "/shutdown")
        wait_for(lambda: not pid_file.exists(), timeout=60)  # then the kill below
    pids = []
    db = state_dir / "state.db"
    if db.exists():
        store = Store(db)
        pids = [r.pid for r in store.replicas()]
        proxy = store.get_kv("proxy")
        if proxy:
            pids.append(int(proxy["pid"]))
        store.close()
    if pid_file.exists():
        pids.append(int(pid_file.read_text()))
    left: list[psutil.Process] = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            left.append(psutil.Process(pid))
    # a controller killed or started mid-way may have started what the store does not
    # record yet: its replicas carry the state dir in their environment, it and its proxy
    # in their argv
    kill_marked(REPLICA_MARKER, str(state_dir), set())
    for proc in psutil.process_iter(["pid", "cmdline"]):
        argv = proc.info["cmdline"] or []
        if any(str(state_dir) in arg for arg in argv) and "rollwise" in " ".join(argv):
            left.append(proc)
    # A controller removes its pid file before it ends, and a process measured by coverage
    # writes its data as it ends (or on SIGTERM): one killed meanwhile leaves a broken data
    # file, its lines counted as never run. So: a moment to end, then SIGTERM, then SIGKILL.
    _, alive = psutil.wait_procs(left, timeout=2)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(alive, timeout=5)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()


@contextlib.contextmanager
def running_cluster(
    state_dir: Path, work: Path, replicas: int = 2, *options: str
) -> Iterator[Cluster]:
    """A controller on ``state_dir`` (spec and request record in ``work``; more ``rollwise
    up`` options) with sample-agent 1.0.0 stable; everything stopped afterwards."""
    record = work / "requests.jsonl"
    client = AdminClient(state_dir)
    try:
        # inside: a controller that fails at start may leave its proxy (the next adopts it)
        start_controller(state_dir, "--record", str(record), *options)
        # after the controller bound its own ports (--metrics-port 0 takes one the kernel
        # picks, which may be one free_port() handed out but nobody bound yet)
        port = free_port()
        spec_file = write_spec(work / "rollwise.yaml", port, replicas=replicas)
        c = Cluster(state_dir, spec_file, port, client, record, replicas)
        c.apply("1.0.0")  # the admin API: `rollwise apply` would cost an interpreter start
        c.wait_stable(1)
        yield c
    finally:
        client.close()
        stop_everything(state_dir)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest tests first: spread over the workers, none of them is the last to end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item: a fixture's teardown can tell a failed test."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def print_controller_log(state_dir: Path, lines: int = 60) -> None:
    """The end of the controller's log, printed into the failed test's report."""
    log = state_dir / "logs" / "controller.log"
    if log.exists():
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        print(f"--- last {len(tail)} lines of {log.name} ---", *tail, sep="\n")


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A controller, its proxy and sample-agent 1.0.0 with 2 replicas, or with the number
    given by ``@pytest.mark.replicas(N)`` (every replica costs an interpreter start)."""
    marker = request.node.get_closest_marker("replicas")
    replicas = int(marker.args[0]) if marker else 2
    with running_cluster(tmp_path / "state", tmp_path, replicas) as c:
        yield c
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            print_controller_log(c.state_dir)


def load_json(text: str) -> Any:
    return json.loads(text)


class Receiver(ThreadingHTTPServer):
    """Records every POST; ``/flaky`` fails twice with 500, ``/slow`` answers after 3 s,
    ``/gone/…`` always answers 410, a path in ``answers`` with its status."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.flaky_calls = 0
        self.answers: dict[str, int] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for p, body in self.posts if p == path]


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        status = 200
        with self.server.lock:
            self.server.posts.append((self.path, body))
            if self.path == "/flaky":
                self.server.flaky_calls += 1
                status = 500 if self.server.flaky_calls <= 2 else 200
            elif self.path.startswith("/gone/"):
                status = 410
            status = self.server.answers.get(self.path, status)
        if self.path == "/slow":
            time.sleep(3)
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def prometheus(tmp_path: Path, cluster: Cluster) -> Iterator[str]:
    """A real Prometheus (Debian's) scraping the controller's ``/metrics`` every second."""
    store = Store(cluster.state_dir / "state.db")
    metrics_port = store.get_kv("metrics_port")
    store.close()
    yield from prometheus_scraping(tmp_path, "rollwise", f"127.0.0.1:{metrics_port}")


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    """The fake Kubernetes API server (tests/kube/) on a free loopback port."""
    with FakeApiServer().serve() as server:
        yield server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
