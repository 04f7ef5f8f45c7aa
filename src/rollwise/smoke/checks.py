"""The four check kinds. Each runs one attempt against one target and returns an ``Outcome``
whose message says what was expected and what came; a failing check raises nothing (the
runner times, retries and reports). ``CheckError`` marks a check that could not run at all.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from rollwise.a2a.card import CARD_PATH, brief, fetch_card, validate_card
from rollwise.spec.smoke import (
    A2ACardCheck,
    A2AMessageCheck,
    CommandCheck,
    HttpCheck,
    JsonPathAssertion,
    parse_json_path,
)

__all__ = [
    "CheckError",
    "Outcome",
    "Target",
    "run_a2a_card",
    "run_a2a_message",
    "run_command",
    "run_http",
]

TERMINAL_STATES = frozenset(
    {"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED", "TASK_STATE_REJECTED"}
)
# The answer a smoke message expects: the task ended well, or it waits for the user.
GOOD_STATES = frozenset({"TASK_STATE_COMPLETED", "TASK_STATE_INPUT_REQUIRED"})


class CheckError(Exception):
    """The check itself could not run (not the target's fault)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a suite runs: a base URL, and what ``command`` placeholders may name."""

    url: str
    app: str = ""
    revision: int | None = None
    version: str = ""
    card_path: str = CARD_PATH
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.url


@dataclass(frozen=True, slots=True)
class Outcome:
    passed: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def _status_matches(code: int, expected: list[str]) -> bool:
    text = str(code)
    return any(text == e or (e.endswith("xx") and text[0] == e[0]) for e in expected)


def _json_assertion(doc: Any, rule: JsonPathAssertion) -> str | None:
    found = [m.value for m in parse_json_path(rule.path).find(doc)]
    if "exists" in rule.model_fields_set:
        if bool(found) != rule.exists:
            return f"{rule.path}: expected it to {'exist' if rule.exists else 'be absent'}, " + (
                f"found {brief(json.dumps(found[0]))}" if found else "found nothing"
            )
        return None
    if not found:
        return f"{rule.path}: expected a value, found nothing"
    value = found[0]
    if rule.regex is not None:
        text = value if isinstance(value, str) else json.dumps(value)
        if not re.search(rule.regex, text):
            return f"{rule.path}: expected to match /{rule.regex}/, got {brief(json.dumps(value))}"
        return None
    if value != rule.equals:
        return f"{rule.path}: expected {json.dumps(rule.equals)}, got {brief(json.dumps(value))}"
    return None


async def run_http(check: HttpCheck, target: Target, client: httpx.AsyncClient) -> Outcome:
    started = time.perf_counter()
    answer = await client.request(
        check.method,
        target.url.rstrip("/") + check.path,
        headers=check.headers,
        content=check.body.encode() if check.body is not None else None,
        json=check.json_body if check.body is None and check.json_body is not None else None,
    )
    latency = time.perf_counter() - started
    details = {"status": answer.status_code, "latency_ms": round(latency * 1000, 2)}
    where = f"{check.method} {check.path}"
    if not _status_matches(answer.status_code, check.statuses):
        expected = " or ".join(check.statuses)
        return Outcome(
            False,
            f"{where}: expected status {expected}, got {answer.status_code} "
            f"({brief(answer.text, 80)!r})",
            details,
        )
    if check.max_latency is not None and latency > check.max_latency:
        return Outcome(
            False,
            f"{where}: expected an answer within {check.max_latency * 1000:.0f} ms, "
            f"took {latency * 1000:.0f} ms",
            details,
        )
    if check.regex is not None and not re.search(check.regex, answer.text):
        return Outcome(
            False,
            f"{where}: expected the body to match /{check.regex}/, got {brief(answer.text)!r}",
            details,
        )
    if check.json_path:
        try:
            doc = answer.json()
        except ValueError:
            return Outcome(
                False, f"{where}: expected a JSON body, got {brief(answer.text)!r}", details
            )
        problems = [p for rule in check.json_path if (p := _json_assertion(doc, rule))]
        if problems:
            return Outcome(False, f"{where}: " + "; ".join(problems), details)
    return Outcome(True, f"{where}: {answer.status_code} in {latency * 1000:.0f} ms", details)


async def run_a2a_card(check: A2ACardCheck, target: Target, client: httpx.AsyncClient) -> Outcome:
    path = check.path or target.card_path
    try:
        fetched = await fetch_card(client, target.url, path)
    except ValueError as exc:
        return Outcome(False, str(exc))
    verdict = validate_card(fetched.card)
    details: dict[str, Any] = {
        "path": fetched.path,
        "protocol": verdict.protocol,
        "problems": [str(p) for p in verdict.problems],
        "warnings": [str(w) for w in verdict.warnings],
    }
    note = f" (not at {path}: served at the 0.3 path {fetched.path})" if fetched.fallback else ""
    if not verdict.ok:
        shown = "; ".join(str(p) for p in verdict.problems[:5])
        more = f" (+{len(verdict.problems) - 5} more)" if len(verdict.problems) > 5 else ""
        return Outcome(False, f"invalid A2A {verdict.protocol} card{note}: {shown}{more}", details)
    if check.protocol is not None and verdict.protocol != check.protocol:
        return Outcome(
            False,
            f"expected an A2A {check.protocol} card, got a {verdict.protocol} one{note}",
            details,
        )
    ids = {s.get("id") for s in fetched.card.get("skills", []) if isinstance(s, dict)}
    missing = [s for s in check.skills if s not in ids]
    if missing:
        return Outcome(
            False,
            f"expected skills {', '.join(missing)} on the card, "
            f"got {', '.join(sorted(map(str, ids)))}",
            details,
        )
    card = fetched.card
    warned = "".join(f"; warning: {w}" for w in verdict.warnings)  # passes all the same
    return Outcome(
        True,
        f"valid A2A {verdict.protocol} card {card.get('name')!r} {card.get('version')}"
        f"{note}{warned}",
        details,
    )


def _texts(node: Any) -> list[str]:
    """Every ``text`` part under a task, message or event, in order (history and metadata
    left out: they are not the agent's answer)."""
    if isinstance(node, dict):
        text = node.get("text")
        found = [text] if isinstance(text, str) else []
        for key, value in node.items():
            if key not in ("text", "history", "metadata"):
                found += _texts(value)
        return found
    if isinstance(node, list):
        return [t for item in node for t in _texts(item)]
    return []


def _message_request(check: A2AMessageCheck, method: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": method,
        "params": {
            "message": {
                "messageId": f"rollwise-smoke-{uuid.uuid4().hex[:12]}",
                "role": "ROLE_USER",
                "parts": [{"text": check.text}],
            }
        },
    }


def _headers(check: A2AMessageCheck) -> dict[str, str]:
    headers = {"A2A-Version": "1.0", "Content-Type": "application/json"}
    if check.extensions:
        headers["A2A-Extensions"] = ", ".join(check.extensions)
    return headers


def _judge_result(result: Mapping[str, Any], check: A2AMessageCheck, text: str) -> Outcome:
    if "task" in result:
        task = result["task"]
        state = task.get("status", {}).get("state", "")
        if state not in GOOD_STATES:
            said = brief(" ".join(_texts(task.get("status", {}))))
            return Outcome(
                False,
                f"expected the task to complete, got state {state or 'none'}"
                + (f" ({said!r})" if said else ""),
                {"state": state},
            )
        kind = "task"
    elif "message" in result:
        kind, state = "message", ""
    else:
        return Outcome(False, f"expected result.task or result.message, got keys {sorted(result)}")
    if check.expect_text is not None and check.expect_text not in text:
        return Outcome(
            False,
            f"expected the answer to contain {check.expect_text!r}, got {brief(text)!r}",
            {"kind": kind},
        )
    return Outcome(True, f"{kind} answered {brief(text, 60)!r}", {"kind": kind, "state": state})


def _rpc_error(body: Mapping[str, Any]) -> str:
    """A JSON-RPC error object, or what a server that does not speak JSON-RPC put in its
    ``error`` field (a string, from an auth layer in front of the agent)."""
    error = body.get("error")
    if not isinstance(error, dict):
        return f"an error that is not JSON-RPC: {brief(str(error), 80)!r}"
    return f"JSON-RPC error {error.get('code')}: {brief(str(error.get('message', '')))}"


async def run_a2a_message(
    check: A2AMessageCheck,
    target: Target,
    client: httpx.AsyncClient,
    deadline: float | None = None,
) -> Outcome:
    """``deadline`` (event-loop time) lets a stream that never ends say how far it got."""
    url = target.url.rstrip("/") + check.path
    if check.stream:
        return await _stream(check, url, client, deadline)
    answer = await client.post(
        url, json=_message_request(check, "SendMessage"), headers=_headers(check)
    )
    try:
        body = answer.json()
    except ValueError:
        return Outcome(
            False,
            "SendMessage: expected a JSON-RPC answer, "
            f"got {answer.status_code} {brief(answer.text, 80)!r}",
        )
    if not isinstance(body, dict):
        return Outcome(
            False, f"SendMessage: expected a JSON-RPC object, got {brief(answer.text, 80)!r}"
        )
    if "error" in body:
        return Outcome(
            False,
            f"SendMessage: expected a result, got {_rpc_error(body)}",
            {"error": body["error"]},
        )
    result = body.get("result")
    if not isinstance(result, dict):
        return Outcome(False, f"SendMessage: expected result, got {brief(answer.text, 80)!r}")
    outcome = _judge_result(result, check, " ".join(_agent_texts(result)))
    return Outcome(outcome.passed, f"SendMessage: {outcome.message}", outcome.details)


def _agent_texts(result: Mapping[str, Any]) -> list[str]:
    """The agent's words: artifacts (or the status message when there are none), or the
    message itself."""
    if "message" in result:
        return _texts(result["message"])
    task = result.get("task", {})
    artifacts = _texts(task.get("artifacts", []))
    return ["".join(artifacts)] if artifacts else _texts(task.get("status", {}))


async def _stream(
    check: A2AMessageCheck, url: str, client: httpx.AsyncClient, deadline: float | None
) -> Outcome:
    events: list[str] = []
    artifacts: list[str] = []
    final: dict[str, Any] | None = None
    async with client.stream(
        "POST", url, json=_message_request(check, "SendStreamingMessage"), headers=_headers(check)
    ) as answer:
        refused = await _not_a_stream(answer)
        if refused is not None:
            return refused
        try:
            async with asyncio.timeout_at(deadline):
                async for line in answer.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    try:
                        body = json.loads(line[5:])
                    except ValueError:
                        return Outcome(
                            False,
                            f"SendStreamingMessage: an event is not JSON: {brief(line, 80)!r}",
                        )
                    if "error" in body:
                        return Outcome(
                            False,
                            f"SendStreamingMessage: event {len(events) + 1} is {_rpc_error(body)}",
                        )
                    final = _fold(body.get("result", {}), events, artifacts, final)
        except TimeoutError:
            seen = ", ".join(events) or "none"
            return Outcome(
                False,
                "SendStreamingMessage: expected the stream to end within the timeout; it was "
                f"still open after {len(events)} events ({seen})",
                {"events": events},
            )
    return _stream_verdict(check, events, artifacts, final)


async def _not_a_stream(answer: httpx.Response) -> Outcome | None:
    """Why a streaming answer is no event stream (``None`` when it is one)."""
    if answer.status_code != 200:
        text = (await answer.aread()).decode(errors="replace")
        return Outcome(
            False,
            f"SendStreamingMessage: expected 200, got {answer.status_code} {brief(text, 80)!r}",
        )
    kind = answer.headers.get("content-type", "")
    if "text/event-stream" in kind:
        return None
    text = (await answer.aread()).decode(errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = {}
    if isinstance(body, dict) and "error" in body:
        return Outcome(False, f"SendStreamingMessage: expected events, got {_rpc_error(body)}")
    return Outcome(False, f"SendStreamingMessage: expected text/event-stream, got {kind!r}")


def _fold(
    result: dict[str, Any],
    events: list[str],
    artifacts: list[str],
    final: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """Take one stream event into what the stream says so far; the final message or task."""
    event = next(iter(result), "?")
    events.append(event)
    if event == "message":
        return {"message": result["message"]}
    if event == "task":
        return {"task": result["task"]}
    if event == "artifactUpdate":
        artifacts += _texts(result[event].get("artifact", {}))
    elif event == "statusUpdate":
        task = dict((final or {}).get("task", {}))
        task["status"] = result[event].get("status", {})
        return {"task": task}
    return final


def _stream_verdict(
    check: A2AMessageCheck,
    events: list[str],
    artifacts: list[str],
    final: dict[str, Any] | None,
) -> Outcome:
    details = {"events": events}
    if not events:
        return Outcome(
            False, "SendStreamingMessage: expected events, the stream ended with none", details
        )
    assert final is not None
    state = final.get("task", {}).get("status", {}).get("state", "")
    if "task" in final and state not in TERMINAL_STATES | GOOD_STATES:
        return Outcome(
            False,
            f"SendStreamingMessage: the stream ended with the task in {state}, not finished",
            details,
        )
    text = "".join(artifacts) if artifacts else " ".join(_agent_texts(final))
    outcome = _judge_result(final, check, text)
    return Outcome(
        outcome.passed, f"SendStreamingMessage ({len(events)} events): {outcome.message}", details
    )


async def run_command(check: CommandCheck, target: Target) -> Outcome:
    fields = {
        "url": target.url,
        "python": sys.executable,
        "app": target.app,
        "revision": "" if target.revision is None else str(target.revision),
        "version": target.version,
    }
    argv = [arg.format(**fields) for arg in check.argv]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=check.cwd,
            env={**os.environ, "ROLLWISE_SMOKE_URL": target.url, **check.env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise CheckError(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from None
    try:
        output, _ = await proc.communicate()
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    text = output.decode(errors="replace").strip()
    last = text.splitlines()[-1] if text else "no output"
    details = {"exit_code": proc.returncode}
    if proc.returncode != check.exit_code:
        return Outcome(
            False,
            f"expected exit code {check.exit_code}, got {proc.returncode}: {brief(last)}",
            details,
        )
    return Outcome(True, f"exit code {proc.returncode}: {brief(last)}", details)
