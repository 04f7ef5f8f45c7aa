"""What an A2A exchange says, read from what a real a2a-sdk server answers (the plain agent
of ``tests/a2a_agent.py``, in-process): every binding, every way an agent fails."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from rollwise.a2a.labels import DEFAULT_FAILURES, failing_outcomes, outcome_names, told
from rollwise.a2a.outcomes import Answer, Call, EventStream, read_answer, read_call, rest_call

from ..a2a_agent import build_app

V1 = {"A2A-Version": "1.0"}


def message(text: str, method: str = "SendMessage", **ids: str) -> dict[str, Any]:
    part: dict[str, Any] = {"text": text}
    role = "ROLE_USER"
    if "/" in method:  # 0.3
        part, role = {"kind": "text", "text": text}, "user"
    body = {"messageId": "m-1", "role": role, "parts": [part], **ids}
    return {"jsonrpc": "2.0", "id": 7, "method": method, "params": {"message": body}}


async def exchange(
    path: str = "/",
    body: dict[str, Any] | None = None,
    mode: str = "ok",
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    transport = httpx.ASGITransport(app=build_app(mode=mode))
    async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
        sent = V1 if headers is None else headers
        return await client.request(method, path, json=body, headers=sent)


@pytest.mark.anyio
async def test_a_completed_task_is_ok_and_names_its_task_and_context() -> None:
    answer = await exchange(body=message("hi"))
    task = answer.json()["result"]["task"]
    assert read_answer(answer.content) == Answer("ok", task["id"], task["contextId"])


@pytest.mark.anyio
async def test_an_executor_that_raises_is_an_internal_error_in_an_http_200() -> None:
    answer = await exchange(body=message("hi"), mode="raise")
    assert answer.status_code == 200
    assert read_answer(answer.content) == Answer("-32603")


@pytest.mark.anyio
async def test_a_failed_task_is_failed_in_both_protocol_versions() -> None:
    for method in ("SendMessage", "message/send"):
        headers = V1 if method == "SendMessage" else {}
        answer = await exchange(body=message("hi", method), mode="fail", headers=headers)
        said = read_answer(answer.content)
        assert said is not None
        assert said.outcome == "failed", (method, answer.text)
        assert said.task and said.context


@pytest.mark.anyio
async def test_input_required_and_the_callers_errors_are_outcomes_of_their_own() -> None:
    asked = read_answer((await exchange(body=message("ask"))).content)
    assert asked is not None
    assert asked.outcome == "input-required"
    unknown = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "nope"}}
    assert read_answer((await exchange(body=unknown)).content) == Answer("-32001")
    no_version = await exchange(body=unknown, headers={})
    assert read_answer(no_version.content) == Answer("-32009")
    nonsense = {"jsonrpc": "2.0", "id": 1, "method": "Frobnicate", "params": {}}
    assert read_answer((await exchange(body=nonsense)).content) == Answer("-32601")


@pytest.mark.anyio
async def test_a_stream_ends_as_its_last_state_whatever_the_chunks() -> None:
    for mode, outcome in (("ok", "ok"), ("fail", "failed")):
        answer = await exchange(body=message("hi", "SendStreamingMessage"), mode=mode)
        assert answer.headers["content-type"].startswith("text/event-stream")
        body = answer.content
        for size in (1, 7, 64, len(body)):
            events = EventStream()
            for at in range(0, len(body), size):
                events.feed(body[at : at + size])
            said = events.finish()
            assert said is not None
            assert said.outcome == outcome, (mode, size)
            assert said.task and said.context


def test_an_error_event_counts_once_and_first() -> None:
    events = EventStream()
    error = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "x"}}
    failed = {"result": {"statusUpdate": {"taskId": "t", "status": {"state": "TASK_STATE_FAILED"}}}}
    events.feed(f"event: error\r\ndata: {json.dumps(error)}\r\n\r\n".encode())
    events.feed(f"data: {json.dumps({'jsonrpc': '2.0', **failed})}\n\n".encode())
    assert events.finish() == Answer("-32603", "t")


def test_a_stream_that_is_not_a2a_says_nothing() -> None:
    events = EventStream()
    events.feed(b'data: hello\n\ndata: {"not": "a2a"}\n\n')
    assert events.finish() is None


def test_an_event_over_the_bound_is_skipped_unread() -> None:
    events = EventStream()
    events.feed(b"data: " + b"x" * (70 * 1024) + b"\n\n")
    done = {"jsonrpc": "2.0", "result": {"task": {"id": "t", "status": {"state": "failed"}}}}
    events.feed(f"data: {json.dumps(done)}\n\n".encode())
    assert events.finish() == Answer("failed", "t", None)


@pytest.mark.anyio
async def test_the_rest_binding_errors_and_paths() -> None:
    raised = await exchange(
        "/rest/message:send", {"message": message("hi")["params"]["message"]}, "raise"
    )
    assert raised.status_code == 500
    assert read_answer(raised.content, 500) == Answer("-32603")
    missing = await exchange("/rest/tasks/nope", method="GET")
    assert missing.status_code == 404
    assert read_answer(missing.content, 404) == Answer("-32001")
    assert rest_call(b"GET", b"/rest/tasks/t-1", None) == Call("GetTask", "t-1")
    assert rest_call(b"POST", b"/tenant/tasks/t-1:cancel", None) == Call("CancelTask", "t-1")
    assert rest_call(b"GET", b"/v1/tasks/t-1:subscribe", None) == Call("SubscribeToTask", "t-1")
    push = b"/rest/tasks/t-1/pushNotificationConfigs"
    assert rest_call(b"POST", push, None) == Call("CreateTaskPushNotificationConfig", "t-1")
    assert rest_call(b"GET", push + b"/c", None) == Call("GetTaskPushNotificationConfig", "t-1")
    assert rest_call(b"DELETE", push + b"/c", None) == Call(
        "DeleteTaskPushNotificationConfig", "t-1"
    )
    sent = rest_call(b"POST", b"/rest/message:send", b'{"message":{"taskId":"t","contextId":"c"}}')
    assert sent == Call("SendMessage", "t", "c")
    assert rest_call(b"GET", b"/healthz", None) is None


def test_what_each_call_names() -> None:
    def call(body: dict[str, Any]) -> Call | None:
        return read_call(json.dumps(body).encode())

    assert call(message("hi")) == Call("SendMessage")
    assert call(message("hi", taskId="t", contextId="c")) == Call("SendMessage", "t", "c")
    assert call(message("hi", "message/stream", contextId="c")) == Call(
        "SendStreamingMessage", None, "c"
    )
    for method, label in (("GetTask", "GetTask"), ("tasks/resubscribe", "SubscribeToTask")):
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"id": "t"}}
        assert call(body) == Call(label, "t")
    # 1.0's push-config methods name the task taskId, and id is the config's
    get = {"jsonrpc": "2.0", "id": 1, "method": "GetTaskPushNotificationConfig"}
    assert call({**get, "params": {"taskId": "t", "id": "cfg"}}) == Call(
        "GetTaskPushNotificationConfig", "t"
    )
    old = {"jsonrpc": "2.0", "id": 1, "method": "tasks/pushNotificationConfig/get"}
    assert call({**old, "params": {"id": "t", "pushNotificationConfigId": "cfg"}}) == Call(
        "GetTaskPushNotificationConfig", "t"
    )
    assert call({"jsonrpc": "2.0", "id": 1, "method": "Invent", "params": {}}) == Call("other")
    # not JSON-RPC: routed and judged as plain HTTP
    assert read_call(b"[{}]") is None
    assert read_call(b"hello") is None
    assert read_call(b'{"method": "SendMessage"}') is None


def test_failure_outcomes_are_checked_and_told() -> None:
    assert failing_outcomes(DEFAULT_FAILURES) == {
        "-32603",
        "-32006",
        "server-error",
        "failed",
        "rejected",
    }
    assert outcome_names([-32603, "input-required"]) == ["-32603", "input-required"]
    with pytest.raises(ValueError, match="not an A2A outcome"):
        outcome_names(["ok"])
    said = {"SendMessage -32603": 412, "GetTask failed": 3, "SendMessage input-required": 9}
    assert told(said, limit=2) == (
        "412 × -32603 on SendMessage, 9 × input-required on SendMessage, 1 more kinds"
    )
