"""Data-plane benchmark: rollwise's proxy side by side with HAProxy and nginx, in one run.

    python bench/proxy/run.py [--duration 5] [--repeat 3] [--connections 64] [--cases ...]

Every contestant proxies to the same upstream (nginx serving fixed bodies when installed,
else ``upstream.py``) and gets the same ``wrk`` load: fixed connections, fixed duration, one
warm-up second first, in ``--repeat`` rounds whose median is reported (a ratio of two
contestants' req/s is the median of the rounds' ratios). Contestants: direct
to the upstream; rollwise with 1 worker, with 1 worker and statistics off (what the analysis
bookkeeping costs), with 1 worker sending 1 % of requests as OpenTelemetry spans to a
receiver in this process (what tracing costs), with 2 workers, with 1 worker reading A2A
(the app's table has ``a2a``: what reading calls and answers and keeping conversations
costs), and (``--base SRC``) with 1 worker of another source tree, e.g. the last release's,
for a before/after in one run; HAProxy with ``nbthread 1``; nginx with
``worker_processes 1``. Cases: a small GET, a 64 KiB response, a POST of 16 KiB, the small
GET split 90/10 across two upstreams, and an A2A ``SendMessage`` (a 200-byte JSON-RPC call
answered by a completed task of 500 bytes whose task and context ids are new each time,
as nginx's ``$request_id``: every request starts a conversation the proxy must learn).

It prints JSON, writes ``bench/results/proxy.json`` and ``bench/results/proxy.md``, and skips
(saying so) whatever is not installed; it installs nothing itself. Requires wrk.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from bench.proxy.answers import SEND_MESSAGE, TASK_ANSWER  # noqa: E402

from rollwise.backends.ports import free_port  # noqa: E402
from rollwise.client import unix_transport  # noqa: E402

RESULTS = HERE.parent / "results"


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    path: str
    method: str = "GET"
    body_bytes: int = 0
    split: bool = False
    body: str = ""  # sent as JSON


A2A_FAILURES = ["-32603", "-32006", "server-error", "failed", "rejected"]


CASES = {
    c.name: c
    for c in (
        Case("small", "small GET", "/small"),
        Case("big", "GET 64 KiB", "/big"),
        Case("post", "POST 16 KiB", "/post", method="POST", body_bytes=16384),
        Case("split", "small GET, 10% canary", "/small", split=True),
        Case("a2a", "A2A SendMessage", "/", method="POST", body=SEND_MESSAGE),
    )
}
CONTESTANTS = (
    "direct",
    "rollwise-1",
    "rollwise-1-nostats",
    "rollwise-1-trace1pct",
    "rollwise-2",
    "rollwise-1-a2a",
    "rollwise-1-a2a-noaffinity",
    "rollwise-base",
    "haproxy",
    "nginx",
)


@dataclass
class Upstreams:
    stable: int
    canary: int


@dataclass
class Run:
    contestant: str
    case: str
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    p999_ms: float = 0.0
    errors: int = 0
    cpu_s: float | None = None
    peak_rss_mb: float | None = None
    processes: int = 0
    error_detail: dict[str, int] = field(default_factory=dict)
    rps_rounds: list[float] = field(default_factory=list)


# processes


@contextmanager
def spawn(argv: list[str], log: Path, **kw: Any) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kw
        )
    try:
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/small", timeout=1.0)
        except httpx.HTTPError:
            time.sleep(0.05)
        else:
            return
    raise RuntimeError(f"nothing answers on port {port}")


class Sampler:
    """CPU seconds and peak RSS of a process tree while the load runs."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak: dict[int, int] = {}
        self.cpu0 = self._cpu()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _procs(self) -> list[psutil.Process]:
        return [self.root, *self.root.children(recursive=True)]

    def _cpu(self) -> float:
        total = 0.0
        for p in self._procs():
            with contextlib.suppress(psutil.NoSuchProcess):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def _run(self) -> None:
        while not self.stop.is_set():
            for p in self._procs():
                with contextlib.suppress(psutil.NoSuchProcess):
                    self.peak[p.pid] = max(self.peak.get(p.pid, 0), p.memory_info().rss)
            self.stop.wait(0.1)

    def finish(self) -> tuple[float, float, int]:
        cpu = self._cpu() - self.cpu0
        self.stop.set()
        self.thread.join()
        return cpu, max(self.peak.values(), default=0) / 2**20, len(self.peak)


# load


def wrk(port: int, case: Case, seconds: float, connections: int, threads: int) -> dict[str, Any]:
    env = dict(
        os.environ, WRK_METHOD=case.method, WRK_BODY_BYTES=str(case.body_bytes), WRK_BODY=case.body
    )
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(HERE / "wrk.lua"),
        f"http://127.0.0.1:{port}{case.path}",
    ]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in reversed(out.splitlines()) if ln.startswith("{"))
    return dict(json.loads(line))


def measure(
    name: str,
    case: Case,
    port: int,
    pid: int | None,
    args: argparse.Namespace,
) -> Run:
    wrk(port, case, 1, args.connections, args.threads)  # warm-up: pools, caches
    sampler = Sampler(pid) if pid is not None else None
    result = wrk(port, case, args.duration, args.connections, args.threads)
    run = Run(contestant=name, case=case.name)
    if sampler is not None:
        run.cpu_s, run.peak_rss_mb, run.processes = sampler.finish()
        run.cpu_s = round(run.cpu_s, 2)
        run.peak_rss_mb = round(run.peak_rss_mb, 1)
    run.rps = round(result["requests"] / (result["duration_us"] / 1e6), 1)
    lat = result["latency_us"]
    run.p50_ms = lat["p50"] / 1000
    run.p99_ms = lat["p99"] / 1000
    run.p999_ms = lat["p999"] / 1000
    run.error_detail = {k: v for k, v in result["errors"].items() if v}
    run.errors = sum(result["errors"].values())
    return run


# contestants


def nginx_upstream(tmp: Path, ups: Upstreams) -> list[str]:
    a2a = TASK_ANSWER % {"id": "$request_id", "context": "c$request_id"}
    (tmp / "www").mkdir(exist_ok=True)
    (tmp / "www" / "big").write_bytes(b"x" * 65536)
    servers = "".join(
        f"""
  server {{
    listen 127.0.0.1:{port} reuseport backlog=1024;
    keepalive_requests 1000000;
    client_max_body_size 1m;
    client_body_buffer_size 32k;
    location = /small {{ return 200 "hello, world\\n"; }}
    location = /post {{ return 200 "ok\\n"; }}
    location = /big {{ root {tmp / "www"}; }}
    location = / {{ default_type application/json; return 200 '{a2a}'; }}
  }}"""
        for port in (ups.stable, ups.canary)
    )
    conf = tmp / "upstream-nginx.conf"
    conf.write_text(_nginx_main(tmp, "upstream") + "http {\n  access_log off;" + servers + "\n}\n")
    return ["nginx", "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"]


def _nginx_main(tmp: Path, name: str) -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}worker_processes 1;\npid {tmp / name}.pid;\n"
        f"error_log {tmp / name}-error.log warn;\n"
        "events { worker_connections 4096; }\n"
    )


def nginx_proxy(tmp: Path, port: int, ups: Upstreams, case: Case) -> list[str]:
    servers = f"server 127.0.0.1:{ups.stable}" + (" weight=9" if case.split else "") + ";"
    if case.split:
        servers += f" server 127.0.0.1:{ups.canary} weight=1;"
    temp = "".join(
        f"  {kind}_temp_path {tmp / ('ngx-' + kind)};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = tmp / "proxy-nginx.conf"
    conf.write_text(
        _nginx_main(tmp, "proxy")
        + "http {\n  access_log off;\n"
        + temp
        + f"  upstream app {{ {servers} keepalive 64; keepalive_requests 1000000; }}\n"
        + f"  server {{\n    listen 127.0.0.1:{port} backlog=1024;\n"
        + "    keepalive_requests 1000000;\n    client_max_body_size 1m;\n"
        + "    client_body_buffer_size 32k;\n"
        + "    location / {\n      proxy_pass http://app;\n      proxy_http_version 1.1;\n"
        + '      proxy_set_header Connection "";\n    }\n  }\n}\n'
    )
    return ["nginx", "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"]


def haproxy_proxy(tmp: Path, port: int, ups: Upstreams, case: Case) -> list[str]:
    servers = f"  server s 127.0.0.1:{ups.stable}" + (" weight 90" if case.split else "") + "\n"
    if case.split:
        servers += f"  server c 127.0.0.1:{ups.canary} weight 10\n"
    conf = tmp / "haproxy.cfg"
    conf.write_text(
        "global\n  nbthread 1\n  maxconn 4000\n"
        "defaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n"
        "  timeout server 30s\n  option http-keep-alive\n  http-reuse always\n"
        f"frontend f\n  bind 127.0.0.1:{port}\n  default_backend b\n"
        "backend b\n  balance roundrobin\n" + servers
    )
    return ["haproxy", "-db", "-f", str(conf)]


def rollwise_table(port: int, ups: Upstreams, case: Case, a2a: bool = False) -> dict[str, Any]:
    revisions = [
        {
            "name": "1",
            "version": "stable",
            "labels": ["stable"],
            "weight": 90 if case.split else 100,
            "replicas": [{"address": f"127.0.0.1:{ups.stable}"}],
        }
    ]
    if case.split:
        revisions.append(
            {
                "name": "2",
                "version": "canary",
                "labels": ["canary"],
                "weight": 10,
                "replicas": [{"address": f"127.0.0.1:{ups.canary}"}],
            }
        )
    app: dict[str, Any] = {"listen": f"127.0.0.1:{port}", "revisions": revisions}
    if a2a:  # as the controller writes it for an app with a2a: (controller/routes.py)
        affinity = {"maxConversations": 100_000, "ttl": 3600, "idle": 30.0}
        app["a2a"] = {"failureOutcomes": A2A_FAILURES, "affinity": affinity}
    return {"generation": 1, "apps": {"bench": app}}


@contextmanager
def contestant(
    name: str, tmp: Path, ups: Upstreams, case: Case, base: Path | None = None
) -> Iterator[tuple[int, int | None]]:
    """Start one proxy for one case; yields its public port and the pid to measure."""
    if name == "direct":
        yield ups.stable, None
        return
    port = free_port()
    log = tmp / f"{name}.log"
    if name.startswith("rollwise"):
        sock = tmp / f"{name}.sock"
        workers = "1" if name == "rollwise-base" else name.split("-")[1]
        argv = [sys.executable, "-m", "rollwise.routing.proxy", "--admin-socket", str(sock)]
        argv += ["--workers", workers, "--grace", "1"]
        env = dict(os.environ)
        if name == "rollwise-base":  # another source tree's proxy, e.g. the last release's
            assert base is not None
            env["PYTHONPATH"] = str(base)
        if name.endswith("nostats"):
            argv.append("--no-stats")
        sink = None
        if name.endswith("trace1pct"):  # 1 % of requests as spans, to a receiver that takes them
            sink = _OtlpSink()
            argv += ["--trace-sample", "0.01", "--otlp-endpoint", sink.url]
        with spawn(argv, log, env=env) as proc, sink or contextlib.nullcontext():
            admin = httpx.Client(transport=unix_transport(str(sock)), base_url="http://p")
            deadline = time.monotonic() + 15
            while True:
                try:
                    admin.get("/healthz").raise_for_status()
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            table = rollwise_table(port, ups, case, a2a="-a2a" in name)
            if name.endswith("-noaffinity"):
                del table["apps"]["bench"]["a2a"]["affinity"]
            admin.put("/routes", json=table).raise_for_status()
            admin.close()
            wait_port(port)
            yield port, proc.pid
        return
    argv = (haproxy_proxy if name == "haproxy" else nginx_proxy)(tmp, port, ups, case)
    with spawn(argv, log) as proc:
        wait_port(port)
        yield port, proc.pid


class _OtlpSink(ThreadingHTTPServer):
    """An OTLP/HTTP endpoint that takes every export and counts the bytes."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.received = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> _OtlpSink:
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown()
        self.server_close()


class _SinkHandler(BaseHTTPRequestHandler):
    server: _OtlpSink

    def do_POST(self) -> None:
        self.server.received += len(self.rfile.read(int(self.headers["content-length"])))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


# report


def medians(runs: list[Run]) -> list[Run]:
    """One run per contestant and case: the one with the median requests/s of its rounds."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.contestant, run.case), []).append(run)
    out = []
    for group in groups.values():
        ranked = sorted(group, key=lambda r: r.rps)
        chosen = ranked[(len(ranked) - 1) // 2]
        chosen.rps_rounds = [r.rps for r in group]
        out.append(chosen)
    return out


def per_round(mine: Run, other: Run) -> float:
    """``mine`` / ``other`` in req/s: the median of the rounds' ratios. Contestants of one round
    run minutes apart at most and share the machine's mood; a median of medians would pair a
    quiet round of one with a noisy round of the other."""
    pairs = [a / b for a, b in zip(mine.rps_rounds, other.rps_rounds, strict=False) if b]
    return statistics.median(pairs) if pairs else mine.rps / other.rps


def ratios(runs: list[Run]) -> dict[str, Any]:
    by = {(r.contestant, r.case): r for r in runs}
    out: dict[str, Any] = {}
    for case in CASES:
        mine = by.get(("rollwise-1", case))
        if mine is None:
            continue
        for other in ("haproxy", "nginx"):
            theirs = by.get((other, case))
            if theirs is not None and theirs.rps:
                out[f"{case}: rollwise-1 / {other} rps"] = round(per_round(mine, theirs), 3)
                out[f"{case}: rollwise-1 / {other} p99"] = round(mine.p99_ms / theirs.p99_ms, 2)
        off = by.get(("rollwise-1-nostats", case))
        if off is not None and off.rps:
            out[f"{case}: statistics cost"] = round(1 - per_round(mine, off), 3)
        traced = by.get(("rollwise-1-trace1pct", case))
        if traced is not None and mine.rps:
            out[f"{case}: tracing 1 % cost"] = round(1 - per_round(traced, mine), 3)
        two = by.get(("rollwise-2", case))
        if two is not None:
            out[f"{case}: rollwise-2 / rollwise-1 rps"] = round(per_round(two, mine), 3)
        aware = by.get(("rollwise-1-a2a", case))
        if aware is not None and mine.rps:
            out[f"{case}: A2A awareness cost"] = round(1 - per_round(aware, mine), 3)
            for other in ("haproxy", "nginx"):
                theirs = by.get((other, case))
                if theirs is not None and theirs.rps:
                    out[f"{case}: rollwise-1-a2a / {other} rps"] = round(
                        per_round(aware, theirs), 3
                    )
        base = by.get(("rollwise-base", case))
        if base is not None and base.rps:
            out[f"{case}: rollwise-1 / rollwise-base rps"] = round(per_round(mine, base), 3)
    rss = [r.peak_rss_mb for r in runs if r.contestant.startswith("rollwise") and r.peak_rss_mb]
    if rss:
        out["rollwise peak RSS per worker (MB)"] = max(rss)
    return out


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Proxy benchmark, {report['date']}, {report['machine']}; wrk {report['load']}, "
        f"median of {report['rounds']} rounds (req/s of each round in the JSON).",
        "",
        "| case | contestant | req/s | p50 ms | p99 ms | p99.9 ms | errors | CPU s | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["runs"]:
        lines.append(
            f"| {CASES[r['case']].title} | {r['contestant']} | {r['rps']:.0f} | "
            f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['p999_ms']:.2f} | {r['errors']} | "
            f"{_opt(r['cpu_s'])} | {_opt(r['peak_rss_mb'])} |"
        )
    lines += ["", "| ratio (req/s: median of the rounds' ratios) | value |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in report["ratios"].items()]
    if report["skipped"]:
        lines += ["", "Skipped: " + "; ".join(report["skipped"]) + "."]
    return "\n".join(lines) + "\n"


def _opt(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--contestants", default=",".join(CONTESTANTS))
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the report")
    parser.add_argument(
        "--base",
        type=Path,
        help="the src/ of another rollwise tree (e.g. a git worktree of the last release): "
        "its proxy runs as the contestant rollwise-base",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk); nothing to measure with")
    skipped: list[str] = []
    contestants = [c for c in args.contestants.split(",") if c]
    if args.base is None and "rollwise-base" in contestants:
        contestants.remove("rollwise-base")
    for tool in ("haproxy", "nginx"):
        if tool in contestants and shutil.which(tool) is None:
            contestants.remove(tool)
            skipped.append(f"{tool} (not installed)")
    use_nginx = shutil.which("nginx") is not None
    if not use_nginx:
        skipped.append("nginx upstream (not installed; the built-in upstream.py served)")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="rollwise-bench-") as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)
        ups = Upstreams(free_port(), free_port())
        with _upstreams(tmp, ups, use_nginx):
            for _ in range(args.repeat):  # rounds, so that a noisy minute hits everyone
                for case_name in args.cases.split(","):
                    case = CASES[case_name]
                    for name in contestants:
                        if (name == "direct" and case.split) or (
                            "-a2a" in name and case.name != "a2a"
                        ):
                            continue
                        with contestant(name, tmp, ups, case, args.base) as (port, pid):
                            run = measure(name, case, port, pid, args)
                        print(json.dumps(run.__dict__), file=sys.stderr, flush=True)
                        runs.append(run)
    runs = medians(runs)
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}",
        "load": f"-t{args.threads} -c{args.connections} -d{args.duration:g}s",
        "rounds": args.repeat,
        "upstream": "nginx" if use_nginx else "upstream.py",
        "runs": [r.__dict__ for r in runs],
        "ratios": ratios(runs),
        "skipped": skipped,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "proxy.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "proxy.md").write_text(markdown(report))
    print(json.dumps(report, indent=2))


@contextmanager
def _upstreams(tmp: Path, ups: Upstreams, use_nginx: bool) -> Iterator[None]:
    if use_nginx:
        with spawn(nginx_upstream(tmp, ups), tmp / "upstream.log"):
            wait_port(ups.stable)
            wait_port(ups.canary)
            yield
        return
    server = [sys.executable, str(HERE / "upstream.py")]
    with (
        spawn([*server, str(ups.stable)], tmp / "upstream-stable.log"),
        spawn([*server, str(ups.canary)], tmp / "upstream-canary.log"),
    ):
        wait_port(ups.stable)
        wait_port(ups.canary)
        yield


if __name__ == "__main__":
    main()
