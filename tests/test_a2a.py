"""A2A-aware release checks: agent-card diffs (unit), the breaking-change gate, the registry,
matrix and docs commands, and the timestamp and traceability extensions read back by a real
a2a-sdk client through rollwise's proxy."""

from __future__ import annotations

import asyncio
import copy
import datetime
import json
import re
from typing import Any

import pytest
import yaml
from a2a.client import ClientCallContext, ClientConfig, create_client
from a2a.helpers.proto_helpers import new_text_message
from a2a.types.a2a_pb2 import Role, SendMessageRequest

from rollwise.a2a.diff import compatibility, diff_cards, extension_version
from rollwise.a2a.extensions import (
    TIMESTAMP_KEY,
    TIMESTAMP_URI,
    TRACEABILITY_KEY,
    TRACEABILITY_URI,
    activate,
    read_timestamp,
    read_trace,
)

from .conftest import FAST_CANARY, Cluster, write_spec
from .test_strategies import served_versions, wait_phase

pytestmark = pytest.mark.replicas(1)
TS, TR = TIMESTAMP_URI, TRACEABILITY_URI
CARD: dict[str, Any] = {
    "name": "A",
    "description": "d",
    "version": "1.0.0",
    "supportedInterfaces": [
        {"url": "http://x/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
        {"url": "http://x/", "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
    ],
    "capabilities": {"streaming": True, "extensions": [{"uri": TS}, {"uri": TR}]},
    "defaultInputModes": ["text/plain"],
    "defaultOutputModes": ["text/plain"],
    "skills": [
        {"id": "echo", "name": "Echo", "description": "e", "tags": []},
        {"id": "sum", "name": "Sum", "description": "s", "tags": []},
    ],
}


def changed(**edits: Any) -> dict[str, Any]:
    card = copy.deepcopy(CARD)
    card.update(edits)
    return card


def breaks(new: dict[str, Any]) -> list[str]:
    return [str(c) for c in diff_cards(CARD, new).breaking]


def test_breaking_changes_are_the_ones_that_fail_old_clients() -> None:
    assert diff_cards(CARD, CARD).changes == []
    assert breaks(changed(skills=CARD["skills"][:1])) == [
        "skill sum: removed; clients that call it will fail"
    ]
    assert breaks(changed(supportedInterfaces=CARD["supportedInterfaces"][:1])) == [
        "interface protocol 0.3: dropped; its clients cannot connect"
    ]
    caps = copy.deepcopy(CARD["capabilities"])
    caps["extensions"] = [{"uri": TS, "required": True}]
    assert breaks(changed(capabilities=caps)) == [
        f"extension {TR}: removed; clients that activate it lose it",
        f"extension {TS}: now required (was optional); clients that do not activate it are "
        "rejected",
    ]
    caps = copy.deepcopy(CARD["capabilities"])
    caps["extensions"].append({"uri": "https://example.com/ext/audit/v2", "required": True})
    caps["streaming"] = False
    assert breaks(changed(capabilities=caps)) == [
        "extension https://example.com/ext/audit/v2: added as required; clients that do not "
        "activate it are rejected (-32008)",
        "capability streaming: no longer offered",
    ]
    kind = {str(c): c.breaking for c in diff_cards(CARD, changed(version="1.1.0")).changes}
    assert kind == {"card version: 1.0.0 → 1.1.0": False}
    optional = copy.deepcopy(CARD)
    optional["capabilities"]["extensions"].append({"uri": "https://example.com/x/v1"})
    optional["skills"].append({"id": "new", "name": "N", "description": "n", "tags": []})
    assert breaks(optional) == []
    assert extension_version(TS) == "v1" and extension_version("urn:x") == "-"
    matrix = compatibility({1: CARD, 2: changed(skills=CARD["skills"][:1])})
    assert not matrix[(1, 1)] and not matrix[(2, 1)] and len(matrix[(1, 2)]) == 1


def test_0_3_cards_diff_by_their_transports() -> None:
    old = {"url": "http://x/", "protocolVersion": "0.3.0", "preferredTransport": "JSONRPC"}
    new = {**old, "preferredTransport": "GRPC"}
    assert [str(c) for c in diff_cards(old, new).breaking] == [
        "interface JSONRPC 0.3.0: dropped; clients of this binding cannot connect"
    ]


def ask(url: str, *extensions: str, traceparent: str | None = None) -> Any:
    """One SendMessage from a real a2a-sdk client, with extensions activated."""

    async def main() -> Any:
        client = await create_client(url, client_config=ClientConfig(streaming=False))
        headers = activate(*extensions) if extensions else {}
        if traceparent:
            headers["traceparent"] = traceparent
        request = SendMessageRequest(message=new_text_message("ping", role=Role.ROLE_USER))
        context = ClientCallContext(service_parameters=headers)
        answers = [r async for r in client.send_message(request, context=context)]
        await client.close()
        return answers[-1].task

    return asyncio.run(main())


def test_an_a2a_sdk_client_gets_timestamps_and_a_trace_when_it_asks(cluster: Cluster) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    task = ask(cluster.url, TS, TR, traceparent=f"00-{trace_id}-00f067aa0ba902b7-01")
    final = task.status.message
    assert TIMESTAMP_KEY in final.metadata and TRACEABILITY_KEY in final.metadata
    stamp = read_timestamp(final)
    assert stamp is not None and stamp.utcoffset() == datetime.timedelta(0)  # RFC 3339, UTC
    assert read_timestamp(task.artifacts[0]) is not None
    trace = read_trace(final)
    assert trace is not None and trace["trace_id"] == trace_id  # the W3C trace, end to end
    root, tool = trace["steps"]
    assert (root["call_type"], tool["call_type"], tool["name"]) == (
        "AGENT",
        "TOOL",
        "compose reply",
    )
    assert tool["parent_step_id"] == root["step_id"] and root["latency"] >= 0
    assert {TS, TR} <= set(final.extensions)

    # the proxy gives a request without a traceparent one; the trace carries its id
    traced = read_trace(ask(cluster.url, TR).status.message)
    assert traced is not None and re.fullmatch(r"[0-9a-f]{32}", traced["trace_id"])
    plain = ask(cluster.url).status.message  # not activated: nothing added
    assert TIMESTAMP_KEY not in plain.metadata and TRACEABILITY_KEY not in plain.metadata


def use_a2a(cluster: Cluster, allow_breaking: bool) -> None:
    write_spec(cluster.spec_file, cluster.port, cluster.replicas, canary=FAST_CANARY)
    spec = yaml.safe_load(cluster.spec_file.read_text())
    spec["spec"]["a2a"]["allowBreaking"] = allow_breaking
    cluster.spec_file.write_text(yaml.safe_dump(spec))
    cluster.apply()


def test_a_breaking_card_blocks_the_rollout_with_each_break_named(cluster: Cluster) -> None:
    use_a2a(cluster, allow_breaking=False)
    cluster.deploy("1.1.0", "template.env.AGENT_EXTENSIONS=timestamp!")
    view = wait_phase(cluster, "Degraded")
    message = view["message"]
    assert (
        "the agent card of revision 2 breaks clients of revision 1 (2 breaking changes)" in message
    )
    assert f"extension {TR}: removed" in message
    assert f"extension {TS}: now required (was optional)" in message
    assert "set spec.a2a.allowBreaking: true" in message
    history = cluster.client.request("GET", "/apps/sample-agent/history")
    assert (history[-1]["outcome"], history[-1]["reason"]) == ("aborted", "breaking change")
    assert served_versions(cluster, 10) == {"1.0.0": 10}

    required = cluster.cli("a2a", "diff", "sample-agent", "--revision", "2", check=False)
    assert required.returncode == 1 and "2 breaking changes" in required.stdout
    cluster.deploy("1.1.1", "template.env.AGENT_EXTENSIONS=timestamp,traceability!")
    message = wait_phase(cluster, "Degraded")["message"]
    assert "revision 3 breaks clients of revision 1 (1 breaking change)" in message
    assert f"extension {TR}: now required" in message

    use_a2a(cluster, allow_breaking=True)  # the owner says so: released, the diff recorded
    cluster.deploy("2.0.0", "template.env.AGENT_EXTENSIONS=timestamp")
    cluster.wait_stable(4)
    kinds = [e["kind"] for e in cluster.client.request("GET", "/apps/sample-agent/events")]
    assert kinds.count("BreakingChangeBlocked") == 2 and "AgentCardChanged" in kinds

    listed = json.loads(cluster.cli("a2a", "extensions", "sample-agent", "-o", "json").stdout)
    assert {(e["revision"], e["uri"], e["required"]) for e in listed} >= {
        (1, TR, False),
        (3, TR, True),
        (4, TS, False),
    }
    assert all(e["extension_version"] == "v1" for e in listed)
    grid = json.loads(cluster.cli("a2a", "matrix", "sample-agent", "-o", "json").stdout)
    compatible = {(g["client"], g["server"]): g["compatible"] for g in grid}
    assert compatible[(4, 1)] and not compatible[(1, 4)]  # 1 has what 4's clients use
    text = cluster.cli("a2a", "matrix", "sample-agent").stdout
    assert "rev 4 breaks clients of rev 1: extension" in text
    docs = cluster.cli("a2a", "docs", "sample-agent", "--revision", "1").stdout
    assert docs.startswith("# Sample Echo Agent 1.0.0 (revision 1)")
    assert "### Echo (`echo`)" in docs and f"| {TR} | v1 | no |" in docs
