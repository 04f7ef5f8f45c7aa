"""Helpers shared by the tests: polling with a timeout, real processes that are always reaped."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from rollwise.backends.ports import free_port
from rollwise.load import LoadConfig, LoadReport, run_load

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float = 20.0, every: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail with its last value otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError):
            last = None
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


VIEW_KEYS = ("phase", "message", "step", "stable", "canary", "pause_reason")


def wait_for_view(
    read: Callable[[], dict[str, Any]],
    check: Callable[[dict[str, Any]], bool],
    timeout: float,
    what: str = "not reached",
) -> dict[str, Any]:
    """Poll an app's view (``read``) until ``check`` holds; fail with what the last view
    seen said (its phase, message, step, revisions), which tells why far better than None."""
    seen: list[dict[str, Any]] = []

    def reached() -> dict[str, Any] | None:
        seen[:] = [read()]
        return seen[0] if check(seen[0]) else None

    try:
        return wait_for(reached, timeout=timeout, every=0.1)
    except AssertionError:
        last = {k: seen[0].get(k) for k in VIEW_KEYS} if seen else {}
        raise AssertionError(f"{what}; last view: {json.dumps(last)}") from None


SPEC_HEAD = (
    "apiVersion: rollwise/v1\nkind: Rollout\nmetadata: {name: a}\nspec:\n"
    "  template: {command: [x]}\n"
)


def assert_spec_refused(section: str, cases: dict[str, str]) -> None:
    """Each case (YAML after ``section``, under a minimal spec) is refused with one line
    that says where (``rollwise.yaml:LINE``) and, in it, what."""
    from rollwise.errors import SpecError
    from rollwise.spec import parse_spec

    for text, says in cases.items():
        try:
            parse_spec(SPEC_HEAD + section + text)
        except SpecError as exc:
            message = str(exc)
            assert says in message and message.startswith("rollwise.yaml:"), message
        else:
            raise AssertionError(f"not refused: {section + text!r}")


def rollwise(
    *args: str, state_dir: Path | None = None, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "rollwise", *args]
    if state_dir is not None:
        argv += ["--state-dir", str(state_dir)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"rollwise {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result


def start_controller(state_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    """``rollwise up --detach`` without the interpreter that only waits: the same launch
    code, called in-process (the tests start dozens of controllers)."""
    from rollwise.controller.launch import spawn_controller

    return spawn_controller(state_dir, "--log-format", "console", "--metrics-port", "0", *args)


@contextmanager
def process(
    argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Background:
    """Constant-rate A2A load in a thread, stopped on demand; the report says what failed."""

    def __init__(
        self, url: str, rate: float = 100, text: str = "ping", stream: bool = False
    ) -> None:
        self.stop = asyncio.Event()
        self.report: LoadReport | None = None
        self.live = LoadReport()  # fills while the load runs
        self.loop = asyncio.new_event_loop()
        config = LoadConfig(
            url=url + "/", rate=rate, duration=120, a2a=True, text=text, stream=stream
        )

        def main() -> None:
            load = run_load(config, stop=self.stop, report=self.live)
            self.report = self.loop.run_until_complete(load)

        self.thread = threading.Thread(target=main, daemon=True)

    def __enter__(self) -> Background:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)
        if not self.thread.is_alive():  # else closing raises, and hides why the test failed
            self.loop.close()

    def result(self) -> LoadReport:
        assert self.report is not None
        return self.report


class Dependency(ThreadingHTTPServer):
    """A real downstream service on loopback that fails (500) while ``failing`` is set; it
    keeps the ``traceparent`` of the last request."""

    # socketserver's default backlog is 5: under a loaded test machine the accepting thread
    # falls behind, connections wait for SYN retries, and calls time out as if it had failed
    request_queue_size = 128

    def __init__(self, failing: bool = True) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.failing = failing
        self.hits = 0
        self.traceparent = ""

    def __enter__(self) -> Dependency:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown()
        self.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _Handler(BaseHTTPRequestHandler):
    server: Dependency

    def do_GET(self) -> None:
        self.server.hits += 1
        self.server.traceparent = self.headers.get("traceparent", "")
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        body = b"" if self.server.failing else b"ok"
        self.send_response(500 if self.server.failing else 200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *_: Any) -> None:
        pass


def serving(port: int, *argv: str) -> Iterator[str]:
    """A Prometheus-family server on loopback ``port`` (a generator for a fixture), once it
    says it is ready."""
    url = f"http://127.0.0.1:{port}"
    with process([*argv, f"--web.listen-address=127.0.0.1:{port}"]):
        wait_for(lambda: httpx.get(f"{url}/-/ready").status_code == 200, timeout=30)
        yield url


def prometheus_scraping(work: Path, job: str, target: str) -> Iterator[str]:
    """A real Prometheus (Debian's) scraping ``target`` (``host:port``) every second, its
    files in ``work`` (a generator for a fixture)."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    yield from serving(
        free_port(),
        "prometheus",
        f"--config.file={work / 'prometheus.yml'}",
        f"--storage.tsdb.path={work / 'tsdb'}",
    )


def promql(url: str, query: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{url}/api/v1/query", params={"query": query}).json()
    return list(body["data"]["result"])


def controller_metrics(state_dir: Path) -> str:
    """The controller's ``/metrics`` (its port, picked at start, is in the store)."""
    from rollwise.store import Store

    store = Store(state_dir / "state.db")
    try:
        port = store.get_kv("metrics_port")
    finally:
        store.close()
    return httpx.get(f"http://127.0.0.1:{port}/metrics").text
