"""The data plane under real load: route changes and replica drains must fail no request.

wrk drives ≥ 1000 req/s through a two-worker proxy to real upstream processes while the test,
acting as the controller does, pushes 50 weight changes and drains 10 replicas: mark draining,
wait until the proxy reports nothing in flight, stop the process, route to a replacement.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from rollwise.backends.ports import free_port
from rollwise.client import unix_transport
from rollwise.routing.table import AppTable, ReplicaEntry, RevisionEntry, Table

from .helpers import ROOT, process, wait_for

pytestmark = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (.ci/run installs it)"
)

UPSTREAM = str(ROOT / "bench" / "proxy" / "upstream.py")
WRK_SCRIPT = str(ROOT / "bench" / "proxy" / "wrk.lua")
LOAD_SECONDS = 30  # an upper bound: wrk is stopped (SIGINT, it then reports) after the changes


class Replicas:
    """Upstream processes by address; each can be stopped and replaced."""

    def __init__(self, stack: ExitStack) -> None:
        self.stack = stack
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> str:
        port = free_port()
        proc = self.stack.enter_context(process([sys.executable, UPSTREAM, str(port)]))
        address = f"127.0.0.1:{port}"
        self.procs[address] = proc
        wait_for(lambda: httpx.get(f"http://{address}/small").status_code == 200)
        return address

    def stop(self, address: str) -> None:
        proc = self.procs.pop(address)
        proc.terminate()
        proc.wait(5)


@contextmanager
def wrk(port: int, path: str = "/small") -> Iterator[dict[str, Any]]:
    """Run wrk in the background until the block ends; the dict fills in with its report."""
    argv = ["wrk", "-t1", "-c32", f"-d{LOAD_SECONDS}s", "--timeout", "5s", "-s", WRK_SCRIPT]
    proc = subprocess.Popen(
        [*argv, f"http://127.0.0.1:{port}{path}"], stdout=subprocess.PIPE, text=True
    )
    result: dict[str, Any] = {}
    try:
        yield result
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        line = next(ln for ln in reversed(out.splitlines()) if ln.startswith("{"))
        result.update(json.loads(line))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def split(
    generation: int, port: int, revisions: dict[str, list[str]], weight: int, draining: set[str]
) -> Table:
    """Revision 1 (stable) and 2 (canary, ``weight`` %) of the app ``web``."""
    entries = tuple(
        RevisionEntry(
            name,
            labels=("stable",) if name == "1" else ("canary",),
            weight=weight if name == "2" else 100 - weight,
            replicas=tuple(ReplicaEntry(a, a in draining) for a in addresses),
        )
        for name, addresses in revisions.items()
    )
    return Table(generation, {"web": AppTable(f"127.0.0.1:{port}", entries)})


@pytest.mark.slow
def test_weight_changes_and_drains_under_load_fail_no_request(tmp_path: Path) -> None:
    sock = tmp_path / "admin.sock"
    port = free_port()
    argv = [sys.executable, "-m", "rollwise.routing.proxy", "--admin-socket", str(sock)]
    with ExitStack() as stack:
        stack.enter_context(process([*argv, "--workers", "2"]))
        admin = httpx.Client(transport=unix_transport(str(sock)), base_url="http://p")
        stack.callback(admin.close)
        wait_for(lambda: len(admin.get("/healthz").json()["workers"]) == 2)
        replicas = Replicas(stack)
        revisions: dict[str, list[str]] = {
            "1": [replicas.start(), replicas.start()],
            "2": [replicas.start(), replicas.start()],
        }
        draining: set[str] = set()
        generation = 0

        def push(weight: int) -> None:
            nonlocal generation
            generation += 1
            table = split(generation, port, revisions, weight, draining)
            answer = admin.put("/routes", json=table.to_json())
            assert answer.json()["generation"] == generation, answer.text

        def drain(revision: str, weight: int) -> None:
            old = revisions[revision][0]
            revisions[revision].append(replicas.start())
            draining.add(old)
            push(weight)
            wait_for(lambda: admin.get("/routes").json()["replicas"][old]["in_flight"] == 0)
            replicas.stop(old)
            revisions[revision].remove(old)
            draining.discard(old)
            push(weight)

        push(10)
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/small").status_code == 200)
        started = time.monotonic()
        with wrk(port) as result:
            time.sleep(1.0)  # let the load reach its pace before the first change
            for change in range(50):
                weight = (change * 37) % 101
                push(weight)
                if change % 5 == 4:
                    drain("1" if change % 10 == 4 else "2", weight)
                time.sleep(0.05)
            changes_done = time.monotonic() - started
            time.sleep(0.5)  # load on the last table too
        metrics = admin.get("/metrics").text
    assert changes_done < LOAD_SECONDS, "the changes must all happen under load"
    rate = result["requests"] / (result["duration_us"] / 1e6)
    assert rate >= 1000, result
    assert sum(result["errors"].values()) == 0, result
    failed = [ln for ln in metrics.splitlines() if ln.startswith("rollwise_proxy_failures_total")]
    assert all(ln.endswith(" 0.0") for ln in failed), failed
    served = {
        rev: sum(
            float(ln.rsplit(" ", 1)[1])
            for ln in metrics.splitlines()
            if ln.startswith("rollwise_proxy_requests_total{") and f'revision="{rev}"' in ln
        )
        for rev in ("1", "2")
    }
    assert min(served.values()) > 1000, served  # the weights really moved traffic
    print(f"{result['requests']} requests at {rate:.0f} req/s, 50 changes, 10 drains, 0 failed")


def test_the_proxy_benchmark_runs(tmp_path: Path) -> None:
    """A one-second smoke run of bench/proxy, so that the documented command keeps working."""
    argv = [sys.executable, str(ROOT / "bench" / "proxy" / "run.py"), "--duration", "1"]
    argv += ["--repeat", "1", "--cases", "small,a2a"]
    argv += ["--contestants", "direct,rollwise-1,rollwise-1-a2a"]
    done = subprocess.run(
        [*argv, "--out", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    runs = {(r["case"], r["contestant"]): r for r in report["runs"]}
    for key in (("small", "rollwise-1"), ("a2a", "rollwise-1"), ("a2a", "rollwise-1-a2a")):
        assert runs[key]["rps"] > 1000 and runs[key]["errors"] == 0, runs[key]
    assert ("small", "rollwise-1-a2a") not in runs  # the A2A contestant runs the A2A case
    table = (tmp_path / "proxy.md").read_text()
    assert "| small GET | rollwise-1 |" in table
    assert "| A2A SendMessage | rollwise-1-a2a |" in table
    assert "a2a: A2A awareness cost" in report["ratios"]


def test_the_request_path_benchmark_runs() -> None:
    """A tiny run of bench/proxy/path.py: every request it feeds is answered and counted."""
    argv = [sys.executable, str(ROOT / "bench" / "proxy" / "path.py"), "--requests", "200"]
    for case in ("small", "post", "a2a", "a2a-read", "a2a-aware"):
        done = subprocess.run([*argv, "--case", case], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["served"] == 5 * 200  # five timed runs, each request answered
        assert result["client_us"] > 0 and result["upstream_us"] > 0
