"""``rollwise load``: open-loop, constant-rate HTTP load with a per-version breakdown.

Open loop means request *i* is sent at ``start + i / rate`` whether or not earlier ones have
answered, so a slow server shows up as latency and errors rather than as a lower rate (the
coordinated-omission trap of closed-loop tools). Load is bounded in count and time, and only
loopback targets are allowed unless ``--allow-remote`` is given.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table

from rollwise.errors import UsageError

__all__ = ["LoadConfig", "LoadReport", "run_load"]

MAX_IN_FLIGHT = 2000
MAX_REQUESTS = 1_000_000
VERSION_HEADER = "x-rollwise-version"


@dataclass(frozen=True)
class LoadConfig:
    url: str
    rate: float
    duration: float
    a2a: bool = False
    allow_remote: bool = False
    text: str = "ping"
    timeout: float = 10.0
    stream: bool = False  # A2A: SendStreamingMessage, each stream read to its end


@dataclass
class LoadReport:
    sent: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    version_errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def errors_total(self) -> int:
        return sum(self.errors.values())

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def as_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "ok": self.ok,
            "errors": dict(self.errors),
            "errors_total": self.errors_total,
            "versions": dict(self.versions),
            "version_errors": dict(self.version_errors),
            "elapsed_s": round(self.elapsed, 3),
            "rate": round(self.sent / self.elapsed, 1) if self.elapsed else 0.0,
            "latency_ms": {
                f"p{int(q * 1000) / 10:g}": round(v * 1000, 3)
                for q in (0.5, 0.9, 0.99, 0.999)
                if (v := self.percentile(q)) is not None
            },
        }

    def table(self) -> Table:
        data = self.as_json()
        table = Table(title="load", box=None, header_style="bold")
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_row("requests", str(data["sent"]))
        table.add_row("ok", str(data["ok"]))
        table.add_row("errors", str(data["errors_total"]))
        for kind, count in sorted(self.errors.items()):
            table.add_row(f"  {kind}", str(count))
        table.add_row("rate (req/s)", str(data["rate"]))
        for name, value in data["latency_ms"].items():
            table.add_row(f"latency {name} (ms)", f"{value:.2f}")
        for version, count in sorted(self.versions.items()):
            table.add_row(f"version {version}", f"{count} ({self.version_errors[version]} errors)")
        return table


def _check_target(config: LoadConfig) -> None:
    parts = urlsplit(config.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{config.url!r} is not an http(s) URL; write e.g. http://127.0.0.1:8080/")
    if config.rate <= 0 or config.duration <= 0:
        raise UsageError("--rate and --duration must be positive")
    if config.rate * config.duration > MAX_REQUESTS:
        raise UsageError(f"rate × duration is over {MAX_REQUESTS} requests; lower one of them")
    if config.allow_remote:
        return
    host = parts.hostname
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise UsageError(
            f"{host} is not a loopback address; pass --allow-remote to load a remote target"
        )


def _body(config: LoadConfig, n: int) -> bytes | None:
    if not config.a2a:
        return None
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": n,
            "method": "SendStreamingMessage" if config.stream else "SendMessage",
            "params": {
                "message": {
                    "messageId": f"load-{n}",
                    "role": "ROLE_USER",
                    "parts": [{"text": config.text}],
                }
            },
        }
    ).encode()


A2A_HEADERS = {"A2A-Version": "1.0", "content-type": "application/json"}
_FAILED_TASKS = ("failed", "rejected")


async def _read(resp: httpx.Response, config: LoadConfig, started: float) -> tuple[float, str]:
    """Read an answer to its end: when its first byte came (a stream's latency is its first
    event's), and what went wrong (``""``: nothing)."""
    from rollwise.a2a.labels import ERROR_OUTCOMES
    from rollwise.a2a.outcomes import EventStream, read_answer

    if resp.status_code >= 500:
        await resp.aread()
        return time.perf_counter() - started, f"http {resp.status_code}"
    if not config.a2a:
        await resp.aread()
        return time.perf_counter() - started, ""
    first = 0.0
    events = (
        EventStream()
        if resp.headers.get("content-type", "").startswith("text/event-stream")
        else None
    )
    pieces = []
    async for chunk in resp.aiter_bytes():
        first = first or time.perf_counter() - started
        if events is not None:
            events.feed(chunk)
        else:
            pieces.append(chunk)
    first = first or time.perf_counter() - started
    answer = events.finish() if events is not None else read_answer(b"".join(pieces), 200)
    if answer is None:
        return first, "not an A2A answer"
    outcome = answer.outcome
    if outcome in _FAILED_TASKS:
        return first, f"a2a task {outcome}"
    if outcome in ERROR_OUTCOMES:
        return first, f"a2a error {outcome}"
    return first, ""


async def _one(client: httpx.AsyncClient, config: LoadConfig, n: int, report: LoadReport) -> None:
    """Request ``n``, counted in ``report`` by its version and outcome."""
    started = time.perf_counter()
    try:
        request = client.build_request(
            "POST" if config.a2a else "GET",
            config.url,
            content=_body(config, n),
            headers=A2A_HEADERS if config.a2a else {},
        )
        resp = await client.send(request, stream=True)
        try:
            first, wrong = await _read(resp, config, started)
        finally:
            await resp.aclose()
        version = resp.headers.get(VERSION_HEADER, "-")
        report.versions[version] += 1
        if wrong:
            report.errors[wrong] += 1
            report.version_errors[version] += 1
        else:
            report.ok += 1
        report.latencies.append(first)
    except httpx.TimeoutException:
        report.errors["timeout"] += 1
    except httpx.ConnectError:
        report.errors["connect"] += 1
    except (httpx.HTTPError, ValueError) as exc:
        report.errors[type(exc).__name__] += 1


async def run_load(
    config: LoadConfig,
    console: Console | None = None,
    stop: asyncio.Event | None = None,
    report: LoadReport | None = None,
) -> LoadReport:
    """Send ``rate × duration`` requests on schedule; return what came back (in ``report``
    when given: it fills while the load runs)."""
    _check_target(config)
    report = report if report is not None else LoadReport()
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    in_flight: set[asyncio.Task[None]] = set()

    async with httpx.AsyncClient(timeout=config.timeout, limits=limits, trust_env=False) as client:
        total = int(config.rate * config.duration)
        start = time.perf_counter()
        live = Live(console=console, refresh_per_second=4) if console else None
        if live:
            live.start()
        try:
            for n in itertools.count():
                if n >= total or (stop is not None and stop.is_set()):
                    break
                delay = start + n / config.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if len(in_flight) >= MAX_IN_FLIGHT:
                    report.errors["client overloaded"] += 1
                    continue
                report.sent += 1
                task = asyncio.create_task(_one(client, config, n, report))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                if live and n % max(1, int(config.rate / 4)) == 0:
                    report.elapsed = time.perf_counter() - start
                    live.update(report.table())
            if in_flight:
                await asyncio.wait(in_flight, timeout=config.timeout + 1)
            if in_flight:
                # Left running, they would end as read errors of our own making when the
                # client's pool closes under them: say what they are, then stop them.
                report.errors["unanswered"] += len(in_flight)
                for task in in_flight:
                    task.cancel()
                await asyncio.wait(in_flight)
        finally:
            report.elapsed = time.perf_counter() - start
            if live:
                live.update(report.table())
                live.stop()
    return report
