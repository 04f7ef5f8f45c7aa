"""Controller benchmark: what N apps cost the controller idle, and how fast it acts among them.

    python bench/controller/run.py [--apps 1,50,200] [--idle 30] [--trials 5]

For each N: a fresh controller (``rollwise up``) with N apps of one replica each (the
minimal uvloop server of ``bench/proxy/upstream.py``), applied through the admin API.
Measured, on the controller process alone:

- ``apply`` latency: of each new app with its first release, and of 20 re-applies;
- idle CPU (% of one core) and RSS over ``--idle`` seconds once every app is Healthy;
- with every app under light load (1 req/s each), on ``--trials`` apps in turn: the time
  from ``deploy`` to the canary's first weight applied by the proxy (read back from its
  admin socket), and from ``abort`` to the last request the canary answered (a client
  asking the proxy for the canary with the override header, every millisecond, sees the
  first answer from stable).

It prints JSON, writes ``bench/results/controller.json`` and ``bench/results/controller.md``.
The goals: at 200 idle apps < 2 % of a core and < 250 MB; deploy-to-first-weight and abort
at N = 200 within 1.5× of N = 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

from rollwise.client import AdminClient, unix_transport
from rollwise.controller.launch import spawn_controller

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results"
UPSTREAM = HERE.parent / "proxy" / "upstream.py"
FIRST_WEIGHT = 10


def spec(name: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "rollwise/v1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "listen": f"127.0.0.1:{port}",
            "template": {
                "command": ["{python}", str(UPSTREAM), "{port}"],
                "readiness": {"path": "/small", "interval": "200ms"},
            },
            "strategy": {
                "canary": {
                    "steps": [{"setWeight": FIRST_WEIGHT}, {"pause": {}}],
                    "scaleDownDelaySeconds": "1s",
                }
            },
        },
    }


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def wait_until(check: Any, timeout: float, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"not done within {timeout}s")


@contextlib.contextmanager
def controller(state_dir: Path) -> Iterator[AdminClient]:
    proc = spawn_controller(state_dir, "--metrics-port", "0", "--log-format", "json")
    client = AdminClient(state_dir, timeout=120.0)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.request("POST", "/shutdown")
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(120)
        if proc.poll() is None:
            proc.kill()
        client.close()


class Proxy:
    """The proxy's own admin socket: what the data plane runs, not what the controller wants."""

    def __init__(self, state_dir: Path) -> None:
        transport = unix_transport(str(state_dir / "proxy.sock"))
        self.http = httpx.Client(transport=transport, base_url="http://proxy", timeout=10.0)

    def weight(self, app: str, revision: int) -> int | None:
        table = self.http.get("/routes", params={"app": app}).json().get("table") or {}
        for rev in table.get("apps", {}).get(app, {}).get("revisions", []):
            if rev["name"] == str(revision):
                return int(rev["weight"])
        return None


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def run_n(n: int, idle_s: float, trials: int, work: Path) -> dict[str, Any]:
    state_dir = work / f"state-{n}"
    names = [f"app-{i:03d}" for i in range(n)]
    ports = listen_ports(names)
    result: dict[str, Any] = {"apps": n}
    with controller(state_dir) as client:
        ctl = psutil.Process(int((state_dir / "controller.pid").read_text()))
        result |= apply_all(client, names, ports, work)
        result |= idle(client, ctl, n, idle_s)
        hot = names[:: max(1, n // trials)][:trials]
        with load(names, ports, work / f"load-{n}.json"):
            result |= trial_moves(client, Proxy(state_dir), hot, trials, ports)
    return result


def listen_ports(names: list[str], first: int = 20000) -> dict[str, int]:
    """Free ports below the kernel's ephemeral range, one per app: replicas take theirs from
    that range (port 0), so none of them can take an app's listener before it opens."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports: dict[str, int] = {}
    port = first
    for name in names:
        while port < low:
            port += 1
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            ports[name] = port
            break
    if len(ports) < len(names):
        raise RuntimeError(f"not enough free ports between {first} and {low}")
    return ports


def ms(values: list[float], q: float | None = None) -> float:
    return round((quantile(values, q) if q is not None else max(values)) * 1000, 2)


def apply_all(
    client: AdminClient, names: list[str], ports: dict[str, int], work: Path
) -> dict[str, Any]:
    """Every app applied with its first release (1.0.0), then 20 re-applies of a spec."""

    def timed(name: str, version: str | None) -> float:
        body = {"spec": spec(name, ports[name]), "base_dir": str(work), "version": version}
        start = time.perf_counter()
        client.request("PUT", "/apps", json=body)
        return time.perf_counter() - start

    created = [timed(name, "1.0.0") for name in names]
    updated = [timed(names[i % len(names)], None) for i in range(20)]
    return {
        "create_p50_ms": ms(created, 0.5),
        "create_p99_ms": ms(created, 0.99),
        "apply_p50_ms": ms(updated, 0.5),
        "apply_p99_ms": ms(updated, 0.99),
    }


def idle(client: AdminClient, ctl: psutil.Process, n: int, idle_s: float) -> dict[str, Any]:
    """The controller's CPU and RSS once every app is Healthy and nothing happens."""

    def all_healthy() -> bool:
        views = client.request("GET", "/apps")
        return len(views) == n and all(v["phase"] == "Healthy" and v["stable"] == 1 for v in views)

    wait_until(all_healthy, timeout=60 + n, every=0.5)
    time.sleep(5)  # the last readiness changes and warm-ups settle
    before = cpu_seconds(ctl)
    time.sleep(idle_s)
    return {
        "idle_cpu_pct": round(100 * (cpu_seconds(ctl) - before) / idle_s, 2),
        "rss_mb": round(ctl.memory_info().rss / 2**20, 1),
    }


@contextlib.contextmanager
def load(names: list[str], ports: dict[str, int], config_file: Path) -> Iterator[None]:
    """1 req/s on every app, from ``load.py``."""
    urls = [{"url": f"http://127.0.0.1:{ports[n]}/small", "rate": 1} for n in names]
    config_file.write_text(json.dumps({"urls": urls}))
    proc = subprocess.Popen([sys.executable, str(HERE / "load.py"), str(config_file)])
    try:
        time.sleep(2)
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class CanaryProbe(threading.Thread):
    """Asks the data plane for the canary (the override header) back to back, and keeps
    when each request was sent and who answered it."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.answers: list[tuple[float, str | None]] = []
        self.done = threading.Event()

    def run(self) -> None:
        with httpx.Client(headers={"x-rollwise-revision": "canary"}, timeout=5.0) as probe:
            while not self.done.is_set():
                sent = time.time()
                try:
                    answered = probe.get(self.url).headers.get("x-rollwise-revision")
                except httpx.HTTPError as exc:
                    answered = type(exc).__name__
                self.answers.append((sent, answered))
                time.sleep(0.001)  # a millisecond's resolution; not a core of its own

    def last(self, revision: int) -> float:
        """When the last request that ``revision`` answered was sent."""
        return max((sent for sent, who in self.answers if who == str(revision)), default=0.0)


def trial_moves(
    client: AdminClient, proxy: Proxy, hot: list[str], trials: int, ports: dict[str, int]
) -> dict[str, Any]:
    """Deploy a canary on each app of ``hot`` in turn until the proxy runs its first weight;
    abort it."""
    to_weight: list[float] = []
    to_stop: list[float] = []
    try:
        for trial in range(trials):
            name = hot[trial % len(hot)]
            start = time.time()
            answer = client.request(
                "POST", f"/apps/{name}/deploy", json={"version": f"2.0.{trial}"}
            )
            revision = int(answer["revision"])
            wait_until(lambda: proxy.weight(name, revision) == FIRST_WEIGHT, 30, every=0.01)  # noqa: B023 -- called at once
            to_weight.append(time.time() - start)
            probe = CanaryProbe(f"http://127.0.0.1:{ports[name]}/small")
            probe.start()
            time.sleep(1.0)  # the canary answers its share
            aborted = time.time()
            client.request("POST", f"/apps/{name}/abort", json={})
            time.sleep(1.0)
            probe.done.set()
            probe.join()
            answered = {who for _, who in probe.answers}
            assert probe.last(revision) > aborted - 1.0, f"the canary never answered: {answered}"
            to_stop.append(max(0.0, probe.last(revision) - aborted))
    finally:
        proxy.http.close()
    return {
        "deploy_to_first_weight_p50_ms": ms(to_weight, 0.5),
        "deploy_to_first_weight_max_ms": ms(to_weight),
        "abort_to_last_canary_request_p50_ms": ms(to_stop, 0.5),
        "abort_to_last_canary_request_max_ms": ms(to_stop),
    }


def markdown(results: list[dict[str, Any]]) -> str:
    columns = [
        ("apps", "apps"),
        ("idle_cpu_pct", "idle CPU % of a core"),
        ("rss_mb", "RSS MB"),
        ("create_p50_ms", "new app p50 ms"),
        ("create_p99_ms", "p99 ms"),
        ("apply_p50_ms", "apply p50 ms"),
        ("apply_p99_ms", "p99 ms"),
        ("deploy_to_first_weight_p50_ms", "deploy → first weight p50 ms"),
        ("deploy_to_first_weight_max_ms", "max ms"),
        ("abort_to_last_canary_request_p50_ms", "abort → last canary request p50 ms"),
        ("abort_to_last_canary_request_max_ms", "max ms"),
    ]
    lines = [
        "| " + " | ".join(title for _, title in columns) + " |",
        "|" + "---:|" * len(columns),
    ]
    for row in results:
        lines.append("| " + " | ".join(str(row.get(key, "")) for key, _ in columns) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", default="1,50,200", help="comma-separated app counts")
    parser.add_argument("--idle", type=float, default=30.0, help="idle window, seconds")
    parser.add_argument("--trials", type=int, default=5, help="deploy/abort trials per N")
    args = parser.parse_args()
    counts = [int(x) for x in args.apps.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="rollwise-bench-") as tmp:
        for n in counts:
            results.append(run_n(n, args.idle, args.trials, Path(tmp)))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d"),
        },
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "controller.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "controller.md").write_text(markdown(results))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
