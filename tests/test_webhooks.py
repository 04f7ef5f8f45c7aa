"""Webhooks: a real HTTP receiver on loopback gets the events, retried, and never in the way."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml

from .conftest import Cluster, write_spec
from .helpers import wait_for


class Receiver(ThreadingHTTPServer):
    """Records every POST; ``/flaky`` fails twice with 500, ``/slow`` answers after 3 s."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.flaky_calls = 0
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


def test_events_reach_webhooks_with_retries_without_blocking(
    cluster: Cluster, receiver: Receiver
) -> None:
    write_spec(cluster.spec_file, cluster.port, cluster.replicas)
    spec = yaml.safe_load(cluster.spec_file.read_text())
    url = receiver.url
    spec["spec"]["webhooks"] = [
        {"url": f"{url}/all"},
        {"url": f"{url}/slack", "format": "slack", "events": ["RolloutCompleted"]},
        {"url": f"{url}/flaky", "events": ["RolloutCompleted"], "retries": 3},
        {"url": f"{url}/slow", "timeout": "500ms", "retries": 0},
    ]
    cluster.spec_file.write_text(yaml.safe_dump(spec))
    cluster.apply()
    started = time.monotonic()
    cluster.deploy("1.1.0")
    cluster.wait_stable(2)
    assert time.monotonic() - started < 20, "a hanging hook must not slow the rollout"

    def all_kinds() -> list[str] | None:
        kinds = [b["kind"] for b in receiver.bodies("/all")]
        return kinds if "RolloutCompleted" in kinds else None

    kinds = wait_for(all_kinds, timeout=15)
    assert {"SpecApplied", "RolloutStarted", "StepCompleted"} <= set(kinds)
    completed = next(b for b in receiver.bodies("/all") if b["kind"] == "RolloutCompleted")
    assert completed["app"] == "sample-agent" and completed["revision"] == 2
    assert set(completed) == {"id", "ts", "app", "kind", "revision", "message", "data"}
    slack = wait_for(lambda: receiver.bodies("/slack"), timeout=15)
    assert slack == [
        {"text": f"[sample-agent revision 2] RolloutCompleted: {completed['message']}"}
    ]
    wait_for(lambda: receiver.flaky_calls >= 3, timeout=20)  # 500, 500, then delivered
    assert len(receiver.bodies("/flaky")) == 3
