"""Feature flags end to end: flagd definitions in the spec and set at runtime, evaluated by
flagd's core in a real controller, read over OFREP by the OpenFeature SDK (in this test and
inside the sample agent's replicas), scoped to a revision, rolled out to a share of keys."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from a2a.client import ClientCallContext, ClientConfig, create_client
from a2a.helpers.proto_helpers import new_text_message
from a2a.types.a2a_pb2 import Role, SendMessageRequest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode

from rollwise import FeatureFlags
from rollwise.flags.engine import FlagEngine

from .conftest import Cluster
from .helpers import assert_spec_refused, wait_for
from .test_strategies import wait_phase

pytestmark = pytest.mark.replicas(1)

SHOUT = {"variants": {"on": True, "off": False}, "defaultVariant": "off"}


def say(url: str, text: str, revision: int | None = None) -> str:
    """One SendMessage from a real a2a-sdk client; the reply's text."""

    async def main() -> str:
        client = await create_client(url, client_config=ClientConfig(streaming=False))
        headers = {"X-Rollwise-Revision": str(revision)} if revision else {}
        request = SendMessageRequest(message=new_text_message(text, role=Role.ROLE_USER))
        context = ClientCallContext(service_parameters=headers)
        answers = [r async for r in client.send_message(request, context=context)]
        await client.close()
        return str(answers[-1].task.status.message.parts[0].text)

    return asyncio.run(main())


def test_bad_flags_are_refused_with_where_and_what() -> None:
    cases = {
        "    shout: {variants: {on: true, off: false}}\n": 'quote it: "on": true',
        "    shout: {variants: {'on': true}, defaultVariant: loud}\n": "defaultVariant 'loud'",
        "    shout: {variants: {'a': true, 'b': 'x'}}\n": "the variants mix types",
        "    'bad key': {variants: {'a': true}}\n": "flag key 'bad key' cannot be used",
        "    shout: {variants: {}}\n": "spec.flags.shout.variants",
    }
    assert_spec_refused("  flags:\n", cases)


def test_flagd_targeting_scopes_by_revision_and_splits_sticky_fractions() -> None:
    engine = FlagEngine()
    fraction = {"fractional": [["on", 10], ["off", 90]]}
    scoped = {"if": [{"==": [{"var": "revision"}, 3]}, "on", "off"]}
    engine.load(
        {"split": {**SHOUT, "targeting": fraction}, "canary": {**SHOUT, "targeting": scoped}}
    )
    first = [
        engine.evaluate("split", {"targetingKey": f"user-{i}"})[1]["value"] for i in range(2000)
    ]
    again = [
        engine.evaluate("split", {"targetingKey": f"user-{i}"})[1]["value"] for i in range(2000)
    ]
    assert first == again  # sticky per targeting key
    assert 140 <= sum(first) <= 260  # 10 % of 2000, within 4 standard deviations
    assert engine.evaluate("canary", {"revision": 3})[1]["value"] is True
    assert engine.evaluate("canary", {"revision": 2})[1]["value"] is False
    status, answer = engine.evaluate("nope", {})
    assert (status, answer["errorCode"]) == (404, "FLAG_NOT_FOUND")


@pytest.mark.slow
def test_flags_flip_an_agents_answer_over_ofrep_for_all_one_revision_or_a_share(
    cluster: Cluster,
) -> None:
    cluster.use_steps({"steps": [{"pause": {}}]}, extra={"flags": {"shout": SHOUT}})
    assert say(cluster.url, "hello") == "echo from 1.0.0: hello"
    cluster.cli("flags", "set", "sample-agent", "shout", "on", "-m", "louder")
    loud = "ECHO FROM 1.0.0: HELLO"  # the replica asked OFREP (at most every 0.5 s)
    wait_for(lambda: say(cluster.url, "hello") == loud, timeout=10)

    # the OpenFeature SDK, here, on the app's OFREP endpoint
    ofrep = cluster.client.request("GET", "/version")["ofrep_url"]
    api.set_provider(OFREPProvider(base_url=f"{ofrep}/apps/sample-agent/"))
    client = api.get_client()
    assert client.get_boolean_value("shout", False) is True
    missing = client.get_boolean_details("no-such-flag", False)
    assert missing.value is False and missing.error_code == ErrorCode.FLAG_NOT_FOUND

    # on for the canary only: stable still whispers
    cluster.cli("flags", "set", "sample-agent", "shout", "off")
    number = cluster.deploy("1.1.0")
    wait_phase(cluster, "Paused")
    wait_for(lambda: say(cluster.url, "hello") == "echo from 1.0.0: hello", timeout=10)
    cluster.cli("flags", "set", "sample-agent", "shout", "on", "--canary")
    canary_loud = "ECHO FROM 1.1.0: HELLO"
    wait_for(lambda: say(cluster.url, "hello", revision=number) == canary_loud, timeout=10)
    assert say(cluster.url, "hello", revision=1) == "echo from 1.0.0: hello"
    view = cluster.get()
    assert view["flags"] == [
        {
            "key": "shout",
            "default": "off",
            "state": "ENABLED",
            "targeting": True,
            "source": "runtime",
            "by": view["flags"][0]["by"],
        }
    ]

    # 10 % of targeting keys, sticky
    cluster.cli("flags", "rollout", "sample-agent", "shout", "--percent", "10")

    def share() -> list[bool]:
        with httpx.Client(base_url=f"{ofrep}/apps/sample-agent/") as http:
            return [
                http.post(
                    "ofrep/v1/evaluate/flags/shout", json={"context": {"targetingKey": f"u{i}"}}
                ).json()["value"]
                for i in range(600)
            ]

    first = share()
    assert 30 <= sum(first) <= 90, sum(first)
    assert share() == first
    details = client.get_boolean_details("shout", False, EvaluationContext(targeting_key="u1"))
    assert details.reason == "TARGETING_MATCH"

    # bad input changes nothing
    changes = len(cluster.client.request("GET", "/apps/sample-agent/flags/history"))
    bad = cluster.cli("flags", "set", "sample-agent", "shout", "maybe", check=False)
    assert bad.returncode == 2 and "no variant 'maybe'" in bad.stderr, bad.stderr
    bad = cluster.cli("flags", "rollout", "sample-agent", "shout", "--percent", "150", check=False)
    assert bad.returncode == 2 and "between 0 and 100" in bad.stderr
    history = cluster.client.request("GET", "/apps/sample-agent/flags/history")
    assert len(history) == changes == 4
    assert history[0]["note"] == "louder"
    shown = cluster.cli("flags", "history", "sample-agent", "shout").stdout
    assert "louder" in shown and "fractional" in shown
    rows = cluster.client.request("GET", "/apps/sample-agent/events", params={"limit": 200})
    assert len([e for e in rows if e["kind"] == "FlagChanged"]) == 4

    # the mission's FeatureFlags
    flags = FeatureFlags("sample-agent", state_dir=cluster.state_dir)
    flags.set("beta", True)
    assert flags.is_enabled("beta")
    assert flags.is_enabled("shout", targeting_key="u1") == first[1]
    cluster.cli("flags", "reset", "sample-agent", "shout")
    shout = next(f for f in cluster.get()["flags"] if f["key"] == "shout")
    assert (shout["source"], shout["targeting"]) == ("spec", False)
