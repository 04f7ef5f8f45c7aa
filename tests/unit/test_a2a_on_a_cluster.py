"""What counts an A2A app's failures where no rollwise proxy reads its answers (a cluster):
the agents' own counter (``rollwise.toolkit.A2AOutcomes`` on a plain a2a-sdk app), the agent
metric an analysis judges it with by default, and what the gateway presets add for it."""

from __future__ import annotations

import shutil
import string
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY

from rollwise.spec.models import RolloutSpec
from rollwise.spec.prometheus import PrometheusSource
from rollwise.spec.selector import SeriesSelector
from rollwise.toolkit import A2AOutcomes

from ..a2a_agent import build_app

V1 = {"A2A-Version": "1.0"}


def counted(method: str, outcome: str, code: str = "2xx") -> float:
    labels = {"method": method, "outcome": outcome, "code": code}
    return REGISTRY.get_sample_value("rollwise_toolkit_a2a_exchanges_total", labels) or 0.0


def send(text: str, method: str = "SendMessage") -> dict[str, Any]:
    message = {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": text}]}
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"message": message}}


async def calls(mode: str, *requests: tuple[str, str, dict[str, Any] | None]) -> None:
    app = build_app(mode=mode)
    app.add_middleware(A2AOutcomes)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://a", headers=V1) as c:
        for method, path, body in requests:
            await c.request(method, path, json=body)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_middleware_counts_what_the_proxy_would() -> None:
    before = {
        key: counted(*key)
        for key in [
            ("SendMessage", "-32603"),
            ("SendMessage", "failed"),
            ("SendStreamingMessage", "failed"),
            ("SendMessage", "ok"),
            ("SendMessage", "input-required"),
            ("GetTask", "-32001"),
            ("GetTask", "-32001", "4xx"),
        ]
    }
    await calls("raise", ("POST", "/", send("hi")))
    await calls(
        "fail", ("POST", "/", send("hi")), ("POST", "/", send("hi", "SendStreamingMessage"))
    )
    unknown = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "nope"}}
    await calls(
        "ok",
        ("POST", "/", send("hi")),
        ("POST", "/", send("ask")),
        ("POST", "/", unknown),
        ("GET", "/rest/tasks/nope", None),
        ("GET", "/healthz", None),  # not A2A: not counted
        ("GET", "/.well-known/agent-card.json", None),
    )
    after = {key: counted(*key) - was for key, was in before.items()}
    assert after == {
        ("SendMessage", "-32603"): 1,
        ("SendMessage", "failed"): 1,
        ("SendStreamingMessage", "failed"): 1,
        ("SendMessage", "ok"): 1,
        ("SendMessage", "input-required"): 1,
        ("GetTask", "-32001"): 1,
        ("GetTask", "-32001", "4xx"): 1,  # the REST binding answers 404
    }


CLUSTER = {
    "template": {"command": ["agent"], "image": "registry.example/agent:{version}"},
    "a2a": {},
    "backend": {"kind": "kubernetes", "router": "gatewayAPI", "gateway": {"name": "public"}},
}


def test_an_a2a_app_on_a_cluster_judges_the_agents_counter_by_default() -> None:
    spec = RolloutSpec.model_validate(CLUSTER)
    (metric,) = spec.analysis_settings.agent_metrics
    assert metric.name == "a2a"
    failures = SeriesSelector.parse(metric.failures)
    name = "rollwise_toolkit_a2a_exchanges_total"
    assert failures.matches(name, {"method": "SendMessage", "outcome": "-32603"})
    assert failures.matches(name, {"method": "GetTask", "outcome": "failed"})
    assert not failures.matches(name, {"method": "GetTask", "outcome": "-32001"})
    assert not failures.matches(name, {"method": "SendMessage", "outcome": "input-required"})
    # its own failure outcomes, an agent metric of its own, a local app: none added
    own = {**CLUSTER, "traffic": {"failureOutcomes": ["failed"]}}
    mine = RolloutSpec.model_validate(own).analysis_settings.agent_metrics[0]
    assert SeriesSelector.parse(mine.failures).matches(name, {"outcome": "failed"})
    assert not SeriesSelector.parse(mine.failures).matches(name, {"outcome": "-32603"})
    named = {"name": "a2a", "failures": "x_total", "total": "y_total"}
    strategy = {"canary": {"analysis": {"agentMetrics": [named]}}}
    assert RolloutSpec.model_validate({**CLUSTER, "strategy": strategy}).analysis_settings == (
        RolloutSpec.model_validate({**CLUSTER, "strategy": strategy}).strategy.analysis_settings
    )
    local = {"template": {"command": ["agent"]}, "a2a": {}}
    assert RolloutSpec.model_validate(local).analysis_settings.agent_metrics == []


def test_gateway_presets_add_what_the_agents_saw(tmp_path: Path) -> None:
    failing = "-32603|-32006|server-error|failed|rejected"
    for preset in ("istio", "ingressNginx"):
        source = PrometheusSource(address="http://p:9090", preset=preset)
        plain, a2a = source.resolved().failures, source.resolved(failing).failures
        assert plain is not None
        assert a2a is not None
        assert a2a.startswith(f"({plain}) + (")
        assert 'code!="5xx"' in a2a  # the gateway counted those already
        assert 'pod=~"$app-r$revision-.+"' in a2a
    rollwise = PrometheusSource(address="http://p:9090", preset="rollwise")
    assert rollwise.resolved(failing) == rollwise.resolved()  # the proxy read them already
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (.ci/run installs it)")
    fields = {"app": "web", "revision": "3", "version": "1.3.0", "service": "web-canary"}
    fields |= {"namespace": "prod", "interval": "30s"}
    query = string.Template(source.resolved(failing).failures or "").substitute(fields)
    rules = {"groups": [{"name": "g", "rules": [{"record": "r:failures", "expr": query}]}]}
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    checked = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_traffic_settings_of_an_a2a_app_are_checked() -> None:
    from ..helpers import assert_spec_refused

    assert_spec_refused(
        "  traffic:\n    ",
        {
            "failureOutcomes: [-32603, broken]": "'broken' is not an A2A outcome; known:",
            "failureOutcomes: [ok]": "'ok' is not an A2A outcome",
            "protocol: grpc": "traffic.protocol",
            "affinity: {maxConversations: 10}": "traffic.affinity.maxConversations",
            "affinity: {idle: soon}": "traffic.affinity.idle",
        },
    )
    plain = RolloutSpec.model_validate({"template": {"command": ["x"]}})
    assert not plain.speaks_a2a
    assert RolloutSpec.model_validate({"template": {"command": ["x"]}, "a2a": {}}).speaks_a2a
    told = {"template": {"command": ["x"]}, "traffic": {"protocol": "a2a"}}
    assert RolloutSpec.model_validate(told).speaks_a2a
    off = {"template": {"command": ["x"]}, "a2a": {}, "traffic": {"protocol": "http"}}
    assert not RolloutSpec.model_validate(off).speaks_a2a
