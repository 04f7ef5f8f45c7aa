"""Agent metrics: the replicas' own counters, scraped from real ``/metrics`` endpoints on
loopback and judged beside the proxy's statistics; and, end to end, a canary whose downstream
dependency fails behind answers that still succeed is aborted on the agent's own metric."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import ValidationError

from rollwise.analysis.agent_source import ReplicaScraper
from rollwise.analysis.run import AnalysisRun
from rollwise.analysis.series import ArmSecond
from rollwise.analysis.source import SecondCounts, Series
from rollwise.spec.models import AgentMetric, AnalysisSettings, AnalysisStep
from rollwise.spec.selector import SeriesSelector
from tests.conftest import Cluster
from tests.helpers import Background, Dependency
from tests.test_strategies import wait_phase

DOWNSTREAM = {
    "name": "downstream",
    "failures": 'rollwise_toolkit_operations_total{operation="downstream",outcome="error"}',
    "total": 'rollwise_toolkit_operations{operation="downstream"}',
}


def test_selectors_read_as_people_write_them() -> None:
    selector = SeriesSelector.parse('calls_total{op="a", outcome!="ok"}')
    assert selector.matches("calls_total", {"op": "a", "outcome": "error"})
    assert not selector.matches("calls_total", {"op": "a", "outcome": "ok"})
    assert not selector.matches("calls_created", {"op": "a", "outcome": "error"})
    assert SeriesSelector.parse("calls").matches("calls_total", {})  # a counter's suffix
    assert str(selector) == 'calls_total{op="a",outcome!="ok"}'
    for bad, says in [
        ("calls{", "is not a series selector"),
        ('calls{op=a"}', 'write label="value"'),
        ("", "is not a series selector"),
    ]:
        with pytest.raises(ValidationError, match=says):
            AnalysisSettings.model_validate(
                {"agentMetrics": [{"name": "x", "failures": bad, "total": "calls"}]}
            )
    metric = {"name": "x", "failures": "f", "total": "t"}
    with pytest.raises(ValidationError, match="the name x is used twice"):
        AnalysisSettings.model_validate({"agentMetrics": [metric, metric]})


class Replica(ThreadingHTTPServer):
    """A replica's ``/metrics`` (Prometheus text) with counters the test sets."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Metrics)
        self.ok = 0.0
        self.error = 0.0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _Metrics(BaseHTTPRequestHandler):
    server: Replica

    def do_GET(self) -> None:
        name = "rollwise_toolkit_operations"
        body = (
            f"# TYPE {name} counter\n"
            f'{name}_total{{operation="downstream",outcome="ok"}} {self.server.ok}\n'
            f'{name}_total{{operation="downstream",outcome="error"}} {self.server.error}\n'
            f'{name}_total{{operation="other",outcome="error"}} 99\n'
        ).encode()
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def replicas() -> Iterator[dict[int, list[Replica]]]:
    servers = {1: [Replica(), Replica()], 2: [Replica()]}
    for group in servers.values():
        for server in group:
            threading.Thread(target=server.serve_forever, daemon=True).start()
    yield servers
    for group in servers.values():
        for server in group:
            server.shutdown()
            server.server_close()


def test_the_scraper_sums_each_revisions_increase_per_second_and_stops_when_unasked(
    replicas: dict[int, list[Replica]],
) -> None:
    metric = AgentMetric.model_validate(DOWNSTREAM)

    async def scenario() -> None:
        scraper = ReplicaScraper(lambda _app, rev: [r.address for r in replicas.get(rev, [])])
        scraper.IDLE_S = 1.2
        source = scraper.source(metric)

        async def until(enough: Callable[[Series], bool]) -> Series:
            """Ask as an analysis does, on every pass, until the series has enough."""
            while True:
                scraper.watch("a", [metric], [1, 2])
                series = await source.seconds("a", 0)
                if enough(series):
                    return series
                await asyncio.sleep(0.02)

        await until(lambda _: len(scraper.apps["a"].last) == 3)  # each one's starting point
        for server in replicas[1]:
            server.ok, server.error = 45.0, 5.0
        replicas[2][0].ok = 30.0
        series = await until(lambda s: sum(s.get(1, {}).values(), SecondCounts()).requests == 100)
        series = await until(lambda s: bool(s.get(2)))
        assert sum(series[1].values(), SecondCounts()) == SecondCounts(100, 10)
        assert sum(series[2].values(), SecondCounts()) == SecondCounts(30, 0)
        last = max(series[2])
        assert await source.seconds("a", last + 1) == {1: {}, 2: {}}
        replicas[2][0].ok = 4.0  # the replica restarted: its counter starts again
        series = await until(lambda s: sum(s[2].values(), SecondCounts()).requests == 34)
        assert min(series[2]) == last and len(series[2]) == 2
        # nobody asks any more: the loop ends and the app is forgotten
        await asyncio.wait_for(_forgotten(scraper, "a"), timeout=6)
        scrapes = scraper.scrapes
        await asyncio.sleep(1.2)
        assert scraper.scrapes == scrapes
        await scraper.aclose()

    asyncio.run(scenario())


async def _forgotten(scraper: ReplicaScraper, app: str) -> None:
    while app in scraper.apps:
        await asyncio.sleep(0.05)


def _arm(requests: int, failures: int) -> ArmSecond:
    return ArmSecond.from_counts(SecondCounts(requests, failures, {100: requests}))


def test_an_agent_metric_fails_a_run_and_holds_back_a_pass_only_when_it_must() -> None:
    step = AnalysisStep(until="pass", min_requests=50)

    def settings(**metric: Any) -> AnalysisSettings:
        return AnalysisSettings.model_validate(
            {
                "latency": None,
                "errorRate": {"maxFailureRate": "5%"},
                "agentMetrics": [{**DOWNSTREAM, **metric}],
            }
        )

    # the proxy sees nothing wrong; the agent's downstream calls fail in the canary
    run = AnalysisRun(settings(), step)
    assert run.settings.judge_alpha(run.settings.agent_metrics[0]) == 0.005
    for second in range(30):
        agent = {"downstream": (_arm(50, 25), _arm(50, 0))}
        run.feed(second, _arm(100, 0), _arm(100, 0), agent)
    verdict = run.verdict(30)
    assert verdict.outcome == "fail"
    assert verdict.detail.startswith("agent downstream rate 50.00% vs 0.00%"), verdict.detail
    judged = {j.name: j.outcome for j in verdict.judges}
    assert judged == {"errorRate": "pass", "agent downstream": "fail", "guardrails": "pass"}
    # nothing to prove on the agent's side (no failures): it does not hold back a pass...
    healthy = {"downstream": (_arm(50, 0), _arm(50, 0))}
    run = AnalysisRun(settings(), step)
    for second in range(30):
        run.feed(second, _arm(100, 0), _arm(100, 0), healthy)
    assert run.verdict(30).outcome == "pass"
    # ... unless it must pass
    run = AnalysisRun(settings(mustPass=True), step)
    for second in range(30):
        run.feed(second, _arm(100, 0), _arm(100, 0), healthy)
    assert run.verdict(30).outcome == "wait"


@pytest.mark.slow
@pytest.mark.replicas(1)
def test_a_canary_whose_dependency_fails_is_aborted_on_the_agents_own_metric(
    cluster: Cluster,
) -> None:
    """The canary's downstream fails; the agent falls back to a plain answer, so no user sees
    a failure and the proxy's judge has nothing to find. The agent's own counter (the
    toolkit's ``downstream`` operation, its breaker open) aborts the rollout."""
    with Dependency(failing=False) as good, Dependency() as bad:
        cluster.use_steps({"steps": []}, smoke=False)
        cluster.deploy("1.0.1", f"template.env.AGENT_DOWNSTREAM_URL={good.url}")
        cluster.wait_stable(2)
        steps = [{"setWeight": 50}, {"analysis": {"until": "pass", "maxDuration": "60s"}}]
        judges: dict[str, Any] = {"latency": None, "agentMetrics": [DOWNSTREAM]}
        cluster.use_steps({"steps": steps, "analysis": judges}, smoke=False)
        with Background(cluster.url, rate=60, text="weather in Lyon") as load:
            cluster.deploy("1.1.0", f"template.env.AGENT_DOWNSTREAM_URL={bad.url}")
            view = wait_phase(cluster, "Degraded", timeout=60)
        assert bad.hits > 0 and good.hits > 0
    assert load.result().errors_total == 0  # every user got an answer
    message = view["message"]
    assert message.startswith("RolloutAborted: agent downstream rate"), message
    runs = list(cluster.client.request("GET", "/apps/sample-agent/analysis"))
    (run,) = [r for r in runs if r["revision"] == 3]
    judges = {j["name"]: j for j in run["verdict"]["judges"]}
    assert judges["agent downstream"]["outcome"] == "fail"
    assert judges["errorRate"]["outcome"] != "fail"
    evidence = judges["agent downstream"]["evidence"]
    assert evidence["canary"]["rate"] > 0.5 and evidence["baseline"]["failures"] == 0
