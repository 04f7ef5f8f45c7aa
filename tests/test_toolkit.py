"""The agent toolkit: each decorator and helper, sync and async, against real failures (a real
HTTP dependency on loopback), with an injected clock for cache expiry."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from rollwise.toolkit import (
    CircuitOpenError,
    MemoryWatch,
    breaker_states,
    cache_get,
    cache_set,
    error_stats,
    handle_errors,
    monitor_operation,
    optimize_operation,
    performance_engine,
    profile_operation,
)
from tests.helpers import Dependency, wait_for

ROOT = Path(__file__).resolve().parents[1]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_monitor_counts_times_and_logs_sync_async_and_as_a_context_manager() -> None:
    @monitor_operation("t-sync")
    def ok() -> int:
        return 1

    @monitor_operation("t-sync")
    def bad() -> None:
        raise ValueError("nope")

    @monitor_operation("t-async")
    async def ok_async() -> int:
        await asyncio.sleep(0)
        return 2

    assert ok() == 1 and asyncio.run(ok_async()) == 2
    with pytest.raises(ValueError, match="nope"):
        bad()
    with monitor_operation("t-block"):
        time.sleep(0.01)
    assert sample("rollwise_toolkit_operations_total", operation="t-sync", outcome="ok") == 1
    assert sample("rollwise_toolkit_operations_total", operation="t-sync", outcome="error") == 1
    assert sample("rollwise_toolkit_operations_total", operation="t-async", outcome="ok") == 1
    assert sample("rollwise_toolkit_operation_seconds_count", operation="t-sync") == 2
    assert sample("rollwise_toolkit_operation_seconds_sum", operation="t-block") >= 0.01


def test_transient_errors_are_retried_with_bounded_backoff_and_counted() -> None:
    calls: list[float] = []

    @handle_errors(retry=True, name="t-retry", attempts=4, timeout=2.0, wait_initial=0.01)
    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionError("refused")
        return "ok"

    started = time.monotonic()
    assert flaky() == "ok"
    assert len(calls) == 3 and time.monotonic() - started < 1.0
    # exponential backoff: at least 10 ms, then 20 ms (plus up to 10 ms of jitter each)
    assert calls[1] - calls[0] >= 0.01 and calls[2] - calls[1] >= 0.02
    assert error_stats()["t-retry"] == {"connection": 2}
    assert sample("rollwise_toolkit_retries_total", operation="t-retry") == 2

    @handle_errors(retry=True, name="t-input", attempts=4, wait_initial=0.01)
    def wrong() -> None:
        calls.append(0.0)
        raise ValueError("bad input")

    before = len(calls)
    with pytest.raises(ValueError, match="bad input"):
        wrong()
    assert len(calls) == before + 1  # not transient: not retried
    assert error_stats()["t-input"] == {"input": 1}

    @handle_errors(retry=True, name="t-timeout", attempts=50, timeout=0.3, wait_initial=0.05)
    async def always_times_out() -> None:
        raise TimeoutError

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        asyncio.run(always_times_out())
    assert time.monotonic() - started < 1.0  # bounded by the timeout, not by 50 attempts


@pytest.fixture
def dependency() -> Iterator[Dependency]:
    with Dependency() as server:
        yield server


def test_a_breaker_opens_on_a_failing_dependency_and_closes_when_it_recovers(
    dependency: Dependency,
) -> None:
    @handle_errors(circuit_breaker="t-dep", threshold=3, recovery=0.3, name="t-dep-call")
    def call() -> int:
        return httpx.get(dependency.url, timeout=2).raise_for_status().status_code

    for _ in range(3):
        with pytest.raises(httpx.HTTPStatusError):
            call()
    assert breaker_states()["t-dep"] == "opened"
    assert sample("rollwise_toolkit_circuit_state", circuit="t-dep") == 2
    hits = dependency.hits
    with pytest.raises(CircuitOpenError, match="circuit t-dep is open"):
        call()
    assert dependency.hits == hits  # refused without calling the dependency
    assert error_stats()["t-dep-call"] == {"http_5xx": 3, "circuit_open": 1}
    dependency.failing = False
    time.sleep(0.35)  # the breaker's recovery time: the one real wait of this test
    assert call() == 200
    assert breaker_states()["t-dep"] == "closed"
    assert sample("rollwise_toolkit_circuit_state", circuit="t-dep") == 0
    assert sample("rollwise_toolkit_circuit_opened_total", circuit="t-dep") == 1


def test_results_are_cached_until_they_expire_and_shared_by_concurrent_calls() -> None:
    now = [1000.0]
    cached = optimize_operation("t-cache", ttl=60, timer=lambda: now[0])
    calls: list[int] = []

    @cached
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    assert [square(3), square(3), square(4)] == [9, 9, 16]
    assert calls == [3, 4]
    now[0] += 61  # expired
    assert square(3) == 9 and calls == [3, 4, 3]
    assert sample("rollwise_toolkit_cache_total", operation="t-cache", result="hit") == 1
    assert sample("rollwise_toolkit_cache_total", operation="t-cache", result="miss") == 3

    started: list[int] = []

    @optimize_operation("t-cache-async", ttl=60)
    async def slow(x: int) -> int:
        started.append(x)
        await asyncio.sleep(0.05)
        return x + 1

    async def many() -> list[int]:
        return list(await asyncio.gather(*(slow(1) for _ in range(5))))

    assert asyncio.run(many()) == [2] * 5 and started == [1]

    cache_set("k", {"v": 1}, ttl=0.05)
    assert cache_get("k") == {"v": 1}
    time.sleep(0.06)
    assert cache_get("k", "gone") == "gone"


def test_profile_measures_wall_cpu_and_memory() -> None:
    tracemalloc.start()
    try:
        with performance_engine.profile_operation("t-profile") as _:
            data = [bytes(1000) for _ in range(1000)]
        profiled = profile_operation("t-profile-fn")

        @profiled
        def spin() -> None:
            end = time.process_time() + 0.02
            while time.process_time() < end:
                pass

        spin()
    finally:
        tracemalloc.stop()
    assert profiled.last is not None and profiled.last.cpu_s >= 0.02
    assert len(data) == 1000
    assert sample("rollwise_toolkit_profile_memory_bytes", operation="t-profile") > 900_000


def test_the_missions_combined_example_runs_as_written() -> None:
    @monitor_operation("api_call")
    @handle_errors(retry=True, circuit_breaker="api_circuit")
    @optimize_operation("api_call")
    def api_call_with_full_monitoring():  # type: ignore[no-untyped-def]
        # Fully monitored, error-protected, and optimized function
        pass

    api_call_with_full_monitoring()  # type: ignore[no-untyped-call]
    api_call_with_full_monitoring()  # type: ignore[no-untyped-call]
    assert sample("rollwise_toolkit_operations_total", operation="api_call", outcome="ok") == 2
    assert sample("rollwise_toolkit_cache_total", operation="api_call", result="hit") == 1

    def parse_file(filename: str) -> dict[str, str]:
        return {"file": filename}

    @monitor_operation("parse_tsk")
    @handle_errors(retry=True)
    def parse_tsk_file(filename):  # type: ignore[no-untyped-def]
        with performance_engine.profile_operation("file_parse"):
            result = parse_file(filename)
            performance_engine.cache_set(f"parsed_{filename}", result, ttl=300)
            return result

    assert parse_tsk_file("a.tsk") == {"file": "a.tsk"}  # type: ignore[no-untyped-call]
    assert performance_engine.cache_get("parsed_a.tsk") == {"file": "a.tsk"}


@pytest.mark.solo
def test_the_toolkit_imports_fast_and_alone() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import rollwise.toolkit; "
        "ms = (time.perf_counter() - t) * 1000; "
        "bad = [m for m in sys.modules if m.startswith(('rollwise.controller', "
        "'rollwise.routing', 'rollwise.cli', 'rollwise.analysis'))]; "
        "print(ms, bad)"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(3)
    ]
    times = [float(r.stdout.split()[0]) for r in runs]
    assert all(r.stdout.strip().endswith("[]") for r in runs), runs[0].stdout
    assert min(times) < 150, times


def test_the_overhead_benchmark_smoke() -> None:
    run = subprocess.run(
        [sys.executable, "bench/toolkit/run.py", "--calls", "2000", "--no-write"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["monitor_overhead_us"] > 0


def test_env_config_as_the_mission_writes_it_and_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    from rollwise.errors import UsageError
    from rollwise.toolkit import load_env_config
    from rollwise.toolkit.settings import AgentSettings

    monkeypatch.setenv("TKT_A2A_PORT", "8000")
    monkeypatch.setenv("TKT_A2A_NAME", "echo")
    assert load_env_config("TKT_A2A_") == {"TKT_A2A_PORT": "8000", "TKT_A2A_NAME": "echo"}

    class Settings(AgentSettings):
        port: int
        name: str
        debug: bool = False

    settings = load_env_config("TKT_A2A_", Settings)
    assert (settings.port, settings.name, settings.debug) == (8000, "echo", False)
    monkeypatch.setenv("TKT_A2A_PORT", "eighty")
    with pytest.raises(UsageError, match=r"^TKT_A2A_PORT \(it holds 'eighty'\): Input should"):
        load_env_config("TKT_A2A_", Settings)


def test_the_extension_registry_drives_what_the_agent_declares_and_serves() -> None:
    from a2a.types.a2a_pb2 import AgentCard

    from rollwise.a2a.extensions import TIMESTAMP_URI, TimestampExtension
    from rollwise.toolkit import ExtensionConfig, ExtensionRegistry

    registry = ExtensionRegistry()
    registry.register(ExtensionConfig("timestamp", "1.0.0"))
    registry.register(ExtensionConfig("traceability", "1.0.0"))
    registry.toggle("traceability", enabled=False)
    assert [e.identifier for e in registry.active()] == ["timestamp"]
    assert registry.active()[0].as_dict() == {
        "id": "timestamp",
        "version": "1.0.0",
        "enabled": True,
    }
    card = registry.declare(AgentCard(name="echo"))
    assert [e.uri for e in card.capabilities.extensions] == [TIMESTAMP_URI]
    served = registry.executor(object())
    assert [type(e) for e in served.extensions] == [TimestampExtension]


def test_the_memory_watch_runs_cleanups_over_the_threshold_only() -> None:
    rss = [100 * 2**20]
    watch = MemoryWatch(threshold_mb=150, interval=0.01, rss=lambda: rss[0])

    @optimize_operation("t-mem")
    def cached(x: int) -> int:
        return x * 2

    cached(21)
    dropped: list[str] = []

    @watch.register
    def trim_history() -> None:
        dropped.append("history")

    def broken() -> None:
        raise RuntimeError("cannot trim")

    watch.register(broken, name="broken")
    assert watch.check() is False and not dropped
    assert sample("rollwise_toolkit_memory_rss_bytes") == 100 * 2**20
    rss[0] = 200 * 2**20
    assert watch.check() is True  # a failing cleanup does not stop the others
    assert dropped == ["history"] and len(cached.cache.cache) == 0  # type: ignore[attr-defined]
    assert sample("rollwise_toolkit_memory_cleanups_total", cleanup="toolkit caches") == 1
    report = watch.report()
    assert report["cleanup_runs"] == 1
    assert report["failed_cleanups"] == {"broken": "RuntimeError: cannot trim"}
    # on a thread for code without a loop, and as an asyncio task, on the real RSS too
    runs = watch.runs
    watch.start()
    wait_for(lambda: watch.runs > runs + 2 or None, timeout=5)
    watch.stop()

    async def as_task() -> int:
        real = MemoryWatch(threshold_mb=1, interval=0.01, clear_toolkit_caches=False)
        task = asyncio.create_task(real.run())
        while real.runs < 2:
            await asyncio.sleep(0.01)
        real.stop()
        await asyncio.wait_for(task, 1)
        return real.last_rss

    assert asyncio.run(as_task()) > 2**20
    with pytest.raises(ValueError, match="threshold_mb"):
        MemoryWatch(threshold_mb=0)


def test_pooled_clients_carry_the_callers_trace_and_the_health_endpoint_reports_them() -> None:
    """A real agent (uvicorn on loopback) with the trace middleware, a pooled client to a real
    dependency, and the health endpoint: the dependency sees the caller's trace id; an open
    breaker is ``degraded`` (200), a failing check ``unhealthy`` (503)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from rollwise.toolkit import TraceContextMiddleware, health_endpoint, http_client, pool_stats

    ready = {"db": True}

    @handle_errors(circuit_breaker="t-pool", threshold=1, recovery=60, name="t-pool-call")
    async def call(url: str) -> str:
        response = await http_client("t-pool", max_connections=4).get(url)
        return response.raise_for_status().text

    async def relay(request: Request) -> PlainTextResponse:
        try:
            return PlainTextResponse(await call(request.query_params["to"]))
        except Exception as exc:
            return PlainTextResponse(type(exc).__name__)

    app = Starlette(
        routes=[
            Route("/relay", relay),
            Route("/healthz", health_endpoint({"db": lambda: ready["db"]}, extra={"v": "1"})),
        ]
    )
    app.add_middleware(TraceContextMiddleware)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or None, timeout=10)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        parent = f"00-{trace_id}-00f067aa0ba902b7-01"
        with Dependency(failing=False) as ok, Dependency() as down:
            answer = httpx.get(
                f"{base}/relay", params={"to": ok.url}, headers={"traceparent": parent}
            )
            assert answer.text == "ok"
            assert ok.traceparent.split("-")[1] == trace_id  # the caller's trace goes on
            health = httpx.get(f"{base}/healthz")
            assert health.status_code == 200 and health.json()["status"] == "ok"
            assert health.json()["v"] == "1"
            assert httpx.get(f"{base}/relay", params={"to": down.url}).text == "HTTPStatusError"
            assert httpx.get(f"{base}/relay", params={"to": ok.url}).text == "CircuitOpenError"
            health = httpx.get(f"{base}/healthz").json()
            assert health["status"] == "degraded" and health["breakers"]["t-pool"] == "opened"
            assert health["pools"]["t-pool"]["ok"] == 1
            assert health["pools"]["t-pool"]["http_5xx"] == 1
            assert health["pools"]["t-pool"]["limits"]["max_connections"] == 4
            ready["db"] = False
            unhealthy = httpx.get(f"{base}/healthz")
            assert unhealthy.status_code == 503 and unhealthy.json()["checks"]["db"] == "failing"
        assert pool_stats()["t-pool"]["in_flight"] == 0
        assert sample("rollwise_toolkit_http_requests_total", pool="t-pool", outcome="ok") == 1
    finally:
        server.should_exit = True
        thread.join(timeout=10)
