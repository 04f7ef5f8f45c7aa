"""Smoke tests against real sample-agent processes, healthy and broken on purpose
(``AGENT_BREAK``): each check gives the right status and a message that says what was
expected and what came."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from rollwise import SmokeTests, SmokeTestSuite, TestResult, TestSeverity, TestStatus
from rollwise.a2a.card import validate_card
from rollwise.backends.ports import free_port
from rollwise.errors import SpecError
from rollwise.spec import spec_from_dict
from rollwise.spec.smoke import SmokeTest

from .helpers import EXAMPLES, process, wait_for

AGENTS = {
    "healthy": {},
    # the card lacks its name; every JSON-RPC call answers an error
    "broken": {"AGENT_BREAK": "card-missing-name,rpc-error"},
    # a card with wrong shapes; tasks never finish (a stream that never ends)
    "hanging": {"AGENT_BREAK": "card-invalid,hang"},
    # the card only at the 0.3 path; answers take 400 ms; the timestamp extension is required
    "legacy": {
        "AGENT_BREAK": "card-legacy",
        "AGENT_LATENCY_MS": "400",
        "AGENT_EXTENSIONS": "timestamp!",
    },
}


@pytest.fixture(scope="module")
def agents() -> Iterator[dict[str, str]]:
    """One sample agent per behaviour above, started together; name → base URL."""
    urls: dict[str, str] = {}
    with ExitStack() as stack:
        for name, env in AGENTS.items():
            port = free_port()
            argv = [sys.executable, "-m", "sample_agent", "--port", str(port)]
            stack.enter_context(process(argv, cwd=EXAMPLES, env={"AGENT_VERSION": "1.0.0", **env}))
            urls[name] = f"http://127.0.0.1:{port}"
        for url in urls.values():

            def up(url: str = url) -> bool:
                return httpx.get(url + "/healthz").status_code == 200

            wait_for(up, timeout=30)
        yield urls


def run(url: str, *tests: dict[str, Any], **options: Any) -> SmokeTestSuite:
    return asyncio.run(SmokeTests(url, **options).run_all(list(tests)))


def one(url: str, test: dict[str, Any], **options: Any) -> TestResult:
    suite = run(url, {"name": "t", **test}, **options)
    assert suite.total_tests == 1
    return suite.test_results[0]


def test_the_default_suite_passes_on_a_healthy_agent(agents: dict[str, str]) -> None:
    smoke = SmokeTests(agents["healthy"], timeout=5.0, expect_text="pong")
    suite = asyncio.run(smoke.run_all())
    assert suite.success and suite.passed == suite.total_tests == 3, suite.as_json()
    assert [r.test_name for r in suite.test_results] == ["health", "agent_card", "basic_agent_call"]
    health = asyncio.run(smoke.test_health_endpoint())
    assert health.status is TestStatus.PASSED and health.duration > 0
    call = asyncio.run(smoke.test_basic_agent_call())
    assert call.status is TestStatus.PASSED and "pong" in call.message


def test_http_checks_say_what_was_expected_and_what_came(agents: dict[str, str]) -> None:
    url = agents["healthy"]
    ok = one(
        url,
        {
            "http": {
                "path": "/healthz",
                "jsonPath": [
                    {"path": "$.status", "equals": "ok"},
                    {"path": "$.version", "regex": r"^1\."},
                    {"path": "$.uptime_s", "exists": True},
                ],
                "regex": '"status"',
                "maxLatency": "2s",
            }
        },
    )
    assert ok.status is TestStatus.PASSED, ok
    wrong_status = one(url, {"http": {"path": "/nope"}})
    assert wrong_status.status is TestStatus.FAILED
    assert "expected status 200, got 404" in wrong_status.message
    json_mismatch = one(url, {"http": {"jsonPath": [{"path": "$.version", "equals": "2.0.0"}]}})
    assert 'expected "2.0.0", got "1.0.0"' in json_mismatch.message
    class_ok = one(
        url, {"http": {"method": "POST", "path": "/", "json": {}, "expectStatus": "2xx"}}
    )
    assert class_ok.status is TestStatus.PASSED, class_ok


def test_a_slow_answer_times_out_and_retries_back_off(agents: dict[str, str]) -> None:
    slow = {"a2aMessage": {"text": "ping"}, "timeout": "150ms", "retries": 2, "retryDelay": "50ms"}
    result = one(agents["legacy"], slow)
    assert result.status is TestStatus.FAILED and result.attempts == 3
    assert "expected an answer within 0.15s, none came (timeout)" in result.message
    assert "after 3 attempts" in result.message
    # 3 timeouts of 0.15 s plus waits of 0.05 and 0.1 s
    assert 0.6 <= result.duration < 3.0
    latency = one(
        agents["legacy"],
        {
            "http": {
                "method": "POST",
                "path": "/",
                "json": {},
                "expectStatus": "2xx",
                "maxLatency": "100ms",
            }
        },
    )
    assert latency.status is TestStatus.FAILED
    assert "expected an answer within 100 ms, took" in latency.message


def test_card_checks(agents: dict[str, str]) -> None:
    good = one(agents["healthy"], {"a2aCard": {"protocol": "1.0", "skills": ["echo"]}})
    assert good.status is TestStatus.PASSED and "valid A2A 1.0 card" in good.message
    assert "warning" not in good.message  # the sample serves 0.3 clients too
    missing = one(agents["broken"], {"a2aCard": {}})
    assert missing.status is TestStatus.FAILED
    assert "invalid A2A 1.0 card: name: required, missing" in missing.message
    invalid = one(agents["hanging"], {"a2aCard": {}})
    assert (
        "supportedInterfaces[0].protocolBinding: expected one of JSONRPC, GRPC, HTTP+JSON, "
        "got 'SOAP'" in invalid.message
    )
    assert "defaultInputModes: expected an array of strings, got a string" in invalid.message
    legacy = one(agents["legacy"], {"a2aCard": {}})
    assert legacy.status is TestStatus.PASSED
    assert "served at the 0.3 path /.well-known/agent.json" in legacy.message
    skill = one(agents["healthy"], {"a2aCard": {"skills": ["translate"]}})
    assert "expected skills translate on the card, got echo" in skill.message


def test_message_checks(agents: dict[str, str]) -> None:
    url = agents["healthy"]
    pong = one(url, {"a2aMessage": {"text": "ping", "expectText": "pong"}})
    assert pong.status is TestStatus.PASSED, pong
    wrong = one(url, {"a2aMessage": {"text": "hello", "expectText": "pong"}})
    assert wrong.status is TestStatus.FAILED
    assert "expected the answer to contain 'pong', got 'echo from 1.0.0: hello'" in wrong.message
    streamed = one(url, {"a2aMessage": {"text": "ping", "expectText": "pong", "stream": True}})
    assert streamed.status is TestStatus.PASSED, streamed
    assert (
        streamed.details["events"][0] == "task" and "artifactUpdate" in streamed.details["events"]
    )
    error = one(agents["broken"], {"a2aMessage": {}})
    assert error.status is TestStatus.FAILED
    assert (
        "SendMessage: expected a result, got JSON-RPC error -32603: injected failure in 1.0.0"
        in error.message
    )
    never = one(agents["hanging"], {"a2aMessage": {"stream": True}, "timeout": "1s"})
    assert never.status is TestStatus.FAILED
    assert (
        "SendStreamingMessage: expected the stream to end within the timeout; it was still "
        "open after 2 events (task, statusUpdate)" in never.message
    )
    uri = "https://github.com/a2aproject/a2a-samples/extensions/timestamp/v1"
    refused = one(agents["legacy"], {"a2aMessage": {}})
    assert "got JSON-RPC error -32008: this agent requires the extension " + uri in refused.message
    activated = one(agents["legacy"], {"a2aMessage": {"extensions": [uri], "expectText": "pong"}})
    assert activated.status is TestStatus.PASSED, activated
    blocked = one(agents["hanging"], {"a2aMessage": {}, "timeout": "500ms"})
    assert "expected an answer within 0.5s, none came (timeout)" in blocked.message


def test_command_checks_and_severity_and_fail_fast(agents: dict[str, str]) -> None:
    url = agents["healthy"]
    script = (
        "import sys, httpx; sys.exit(0 if httpx.get(sys.argv[1] + '/healthz').is_success else 3)"
    )
    ok = one(url, {"command": ["{python}", "-c", script, "{url}"]})
    assert ok.status is TestStatus.PASSED, ok
    bad = one(url, {"command": {"argv": ["{python}", "-c", "print('boom'); raise SystemExit(3)"]}})
    assert bad.status is TestStatus.FAILED and "expected exit code 0, got 3: boom" in bad.message
    missing = one(url, {"command": ["/nonexistent/check"]})
    assert (
        missing.status is TestStatus.ERROR and "cannot run '/nonexistent/check'" in missing.message
    )

    suite = run(
        url,
        {"name": "soft", "severity": "non-critical", "http": {"path": "/nope"}},
        {"name": "hard", "http": {"path": "/missing"}, "failFast": True},
        {"name": "after", "http": {}},
    )
    assert [r.status for r in suite.test_results] == [
        TestStatus.FAILED,
        TestStatus.FAILED,
        TestStatus.SKIPPED,
    ]
    assert suite.test_results[0].severity is TestSeverity.NON_CRITICAL
    assert not suite.success and (suite.passed, suite.failed, suite.skipped) == (0, 2, 1)
    assert "skipped: hard failed first (failFast)" in suite.test_results[2].message
    only_soft = run(url, {"name": "soft", "severity": "non-critical", "http": {"path": "/nope"}})
    assert only_soft.success  # non-critical failures are reported, never block


def test_spec_errors_for_smoke_tests_are_one_line_each() -> None:
    def problems(tests: list[dict[str, Any]]) -> str:
        doc = {
            "apiVersion": "rollwise/v1",
            "kind": "Rollout",
            "metadata": {"name": "x"},
            "spec": {"template": {"command": ["x"]}, "smokeTests": tests},
        }
        with pytest.raises(SpecError) as caught:
            spec_from_dict(doc, file="rollwise.yaml")
        return str(caught.value)

    assert "exactly one of http, a2aCard, a2aMessage, command" in problems([{"name": "a"}])
    assert "not a JSONPath" in problems(
        [{"name": "a", "http": {"jsonPath": [{"path": "$[", "equals": 1}]}}]
    )
    assert "unknown placeholder {port}" in problems([{"name": "a", "command": ["x", "{port}"]}])
    assert "repeated: a" in problems([{"name": "a", "http": {}}, {"name": "a", "http": {}}])
    assert "not a status code" in problems([{"name": "a", "http": {"expectStatus": 99}}])
    test = SmokeTest.model_validate({"name": "a", "a2aMessage": {}, "schedule": "1m"})
    assert test.schedule == 60.0 and test.kind == "a2aMessage"


def test_card_validation_covers_0_3_cards() -> None:
    old = {
        "name": "Old",
        "description": "a 0.3 agent",
        "version": "0.9",
        "url": "http://127.0.0.1:1/",
        "protocolVersion": "0.3.0",
        "capabilities": {"streaming": "yes"},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [{"id": "s", "name": "S", "description": "d"}],
    }
    check = validate_card(old)
    assert check.protocol == "0.3"
    assert [str(p) for p in check.problems] == [
        "capabilities.streaming: expected true or false, got a string",
        "skills[0].tags: required, missing",
    ]
    assert validate_card([]).problems[0].message == "expected a JSON object, got an array"


def test_a_1_0_card_without_the_0_3_fields_passes_with_a_warning() -> None:
    card = {
        "name": "New",
        "description": "a 1.0 agent",
        "version": "2.0",
        "supportedInterfaces": [
            {"url": "http://127.0.0.1:1/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ],
        "capabilities": {},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [{"id": "s", "name": "S", "description": "d", "tags": []}],
    }
    check = validate_card(card)
    assert check.ok and check.protocol == "1.0"
    assert [w.message for w in check.warnings] == [
        "no url, protocolVersion, preferredTransport: clients of A2A 0.3 cannot read this card; "
        "declare a 0.3 interface beside the 1.0 one (supportedInterfaces) to serve both"
    ]
    both = {**card, "url": "http://127.0.0.1:1/", "protocolVersion": "0.3"}
    both["preferredTransport"] = "JSONRPC"
    assert validate_card(both).warnings == []
