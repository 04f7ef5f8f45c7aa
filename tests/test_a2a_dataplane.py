"""The A2A-aware data plane, end to end, against a plain a2a-sdk agent (``a2a_agent.py``: an
``InMemoryTaskStore`` per replica, two replicas) driven by a2a-sdk's own client through a
real controller and proxy.

Conversations: a task's follow-ups (``GetTask``, a second turn naming it) reach the replica
that holds it, across proxy workers, during a canary, after its promotion and after its
abort, and after the proxy is killed and started again. Failures: a canary whose executor
raises, whose tasks fail, or whose streams end failed, is aborted with the A2A outcome
named; one that only asks for input as often as the stable does is promoted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from a2a.client import Client, ClientConfig, create_client
from a2a.client.card_resolver import A2ACardResolver
from a2a.helpers.proto_helpers import new_text_message
from a2a.types.a2a_pb2 import (
    GetTaskRequest,
    Role,
    SendMessageRequest,
    Task,
    TaskState,
)

from rollwise.analysis.replay import replay_file
from rollwise.backends.ports import free_port
from rollwise.client import AdminClient
from rollwise.spec import load_spec
from rollwise.store import Store

from .conftest import NOT_MEASURED, print_controller_log, stop_everything
from .helpers import (
    ROOT,
    Background,
    controller_metrics,
    start_controller,
    wait_for,
    wait_for_view,
)

APP = "plain"
AGENT = ROOT / "tests" / "a2a_agent.py"


@dataclass
class PlainApp:
    state_dir: Path
    spec_file: Path
    port: int
    client: AdminClient

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def get(self) -> dict[str, Any]:
        return dict(self.client.request("GET", f"/apps/{APP}"))

    def deploy(self, version: str, *sets: str) -> int:
        body = {"version": version, "set": list(sets)}
        return int(self.client.request("POST", f"/apps/{APP}/deploy", json=body)["revision"])

    def act(self, command: str, **body: Any) -> None:
        self.client.request("POST", f"/apps/{APP}/{command}", json=body)

    def wait(self, what: str, done: Any, timeout: float = 60.0) -> dict[str, Any]:
        return wait_for_view(self.get, done, timeout, what)


def spec(port: int, canary: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "rollwise/v1",
        "kind": "Rollout",
        "metadata": {"name": APP},
        "spec": {
            "replicas": 2,
            "listen": f"127.0.0.1:{port}",
            "template": {
                "command": ["{python}", str(AGENT), "--port", "{port}"],
                "env": {
                    "AGENT_VERSION": "{version}",
                    "AGENT_PUBLIC_URL": f"http://127.0.0.1:{port}/",
                    **NOT_MEASURED,
                    **env,
                },
                "readiness": {"path": "/healthz", "interval": "200ms"},
            },
            "a2a": {},
            "strategy": {"canary": canary},
        },
    }


@contextlib.contextmanager
def plain_app(
    tmp_path: Path, canary: dict[str, Any], env: dict[str, str] | None = None, *options: str
) -> Iterator[PlainApp]:
    """A controller (``rollwise up`` ``options``) serving the plain agent 1.0.0 as stable."""
    state_dir, spec_file = tmp_path / "state", tmp_path / "rollwise.yaml"
    client = AdminClient(state_dir)
    try:
        start_controller(state_dir, *options)
        port = free_port()  # once the controller bound its own (its metrics port is any)
        spec_file.write_text(yaml.safe_dump(spec(port, canary, env or {})))
        app = PlainApp(state_dir, spec_file, port, client)
        body = {
            "spec": load_spec(spec_file).model_dump(mode="json", by_alias=True),
            "base_dir": str(tmp_path),
            "version": "1.0.0",
        }
        client.request("PUT", "/apps", json=body)
        app.wait("1.0.0 stable", lambda v: v["stable"] == 1 and v["phase"] == "Healthy")
        yield app
    except BaseException:
        print_controller_log(state_dir)
        raise
    finally:
        client.close()
        stop_everything(state_dir)


# conversations, as a client of the agent sees them


@contextlib.asynccontextmanager
async def _client(url: str) -> AsyncIterator[Client]:
    """a2a-sdk's client on the proxy, opening a new connection for every call (none is kept
    alive): the kernel spreads them over the proxy's workers."""
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as http:
        card = await A2ACardResolver(http, url).get_agent_card()
        yield await create_client(
            card, client_config=ClientConfig(streaming=False, httpx_client=http)
        )


async def _call(client: Client, text: str, task: Task | None = None) -> Task:
    """One message; the task it answers with."""
    ids = {"task_id": task.id, "context_id": task.context_id} if task is not None else {}
    message = new_text_message(text, role=Role.ROLE_USER, **ids)
    async for event in client.send_message(SendMessageRequest(message=message)):
        if event.HasField("task"):
            return event.task
    raise AssertionError(f"no task in the answer to {text!r}")


def start_conversations(url: str, count: int) -> list[Task]:
    """``count`` first turns: each task waits for more input."""

    async def run() -> list[Task]:
        async with _client(url) as client:
            tasks = [await _call(client, "ask") for _ in range(count)]
        assert {t.status.state for t in tasks} == {TaskState.TASK_STATE_INPUT_REQUIRED}
        return tasks

    return asyncio.run(run())


def finish_conversations(url: str, tasks: list[Task]) -> list[str]:
    """``GetTask`` and the second turn of each conversation; what went wrong (none lost: [])."""

    async def run() -> list[str]:
        lost = []
        async with _client(url) as client:
            for task in tasks:
                try:
                    got = await client.get_task(GetTaskRequest(id=task.id))
                    assert got.status.state == TaskState.TASK_STATE_INPUT_REQUIRED, got.status
                    done = await _call(client, "tomorrow", task)
                    assert done.status.state == TaskState.TASK_STATE_COMPLETED, done.status
                    assert done.artifacts[0].parts[0].text == "got: tomorrow"
                except Exception as exc:  # the test counts every kind of loss
                    lost.append(f"{task.id}: {type(exc).__name__}: {exc}")
        return lost

    return asyncio.run(run())


def proxy_pid(state_dir: Path) -> int:
    store = Store(state_dir / "state.db")
    try:
        return int(store.get_kv("proxy")["pid"])
    finally:
        store.close()


HELD = {"steps": [{"setWeight": 50}, {"pause": {}}], "scaleDownDelaySeconds": "1s"}


@pytest.mark.slow
def test_conversations_stay_on_the_replica_that_holds_them(tmp_path: Path) -> None:
    with plain_app(tmp_path, HELD, None, "--proxy-workers", "2") as app:
        tasks = start_conversations(app.url, 50)
        assert finish_conversations(app.url, tasks) == []

        # a 50 % canary: conversations begin on both revisions; the canary is promoted and
        # the old stable drains, holding the conversations it has
        app.deploy("1.1.0")
        app.wait("canary at 50 %", lambda v: v["actual_weights"].get("2") == 50)
        tasks = start_conversations(app.url, 50)
        app.act("promote", full=True)
        view = app.wait(
            "revision 1 retiring with its conversations",
            lambda v: (
                v["stable"] == 2
                and any(
                    "retiring" in r["labels"] and r.get("conversations", 0) > 0
                    for r in v["revisions"]
                )
            ),
        )
        held = next(r for r in view["revisions"] if r["number"] == 1)
        assert held["conversations"] <= 100  # the first ones count too: asked about lately
        assert finish_conversations(app.url, tasks) == []

        # an abort sends every new conversation to stable at once; the canary's own keep
        # reaching it while it drains
        app.deploy("1.2.0")
        app.wait("canary at 50 %", lambda v: v["actual_weights"].get("3") == 50)
        tasks = start_conversations(app.url, 50)
        app.act("abort")
        app.wait(
            "aborted, revision 3 draining",
            lambda v: v["phase"] == "Degraded" and v["actual_weights"].get("3") == 0,
        )
        fresh = start_conversations(app.url, 20)
        assert finish_conversations(app.url, tasks + fresh) == []

        # a proxy killed and started again reads the same conversation map
        tasks = start_conversations(app.url, 20)
        killed = proxy_pid(app.state_dir)
        os.kill(killed, signal.SIGKILL)
        wait_for(lambda: proxy_pid(app.state_dir) != killed, timeout=20)
        assert finish_conversations(app.url, tasks) == []


ANALYSED = {
    "steps": [{"setWeight": 50}, {"analysis": {"until": "pass", "maxDuration": "2m"}}],
    "analysis": {"errorRate": {"maxFailureRate": "5%"}, "latency": None},
    "scaleDownDelaySeconds": "1s",
}


def release(app: PlainApp, version: str, *sets: str) -> tuple[dict[str, Any], float]:
    """Deploy ``version`` and wait for the rollout's end; the view then, and how long."""
    started = time.monotonic()
    number = app.deploy(version, *sets)

    def ended(view: dict[str, Any]) -> bool:
        promoted = view["stable"] == number and view["canary"] is None
        return promoted or view["phase"] == "Degraded"

    view = app.wait(f"the end of {version}'s rollout", ended, timeout=120)
    return view, time.monotonic() - started


@pytest.mark.slow
def test_canaries_that_fail_in_a2a_terms_are_aborted_with_the_outcome_named(
    tmp_path: Path,
) -> None:
    record = tmp_path / "requests.jsonl"
    # every revision asks for more input on half of its tasks: a conversation, not a failure
    analysed = plain_app(tmp_path, ANALYSED, {"AGENT_INPUT_RATE": "0.5"}, "--record", str(record))
    with analysed as app:
        controller_metrics(app.state_dir)  # per-revision series count from the first scrape on
        with Background(app.url.rstrip("/"), rate=60):  # a pass needs requests: be quick
            view, _ = release(app, "1.1.0")
        assert (view["phase"], view["stable"]) == ("Healthy", 2), view["message"]
        with Background(app.url.rstrip("/"), rate=30) as load:
            view, took = release(app, "1.2.0", "template.env.AGENT_MODE=raise")
            assert view["phase"] == "Degraded", view["message"]
            assert "-32603 on SendMessage" in view["message"], view["message"]
            assert took < 60

            def counted(view: dict[str, Any]) -> bool:  # read every 2 s: wait for the next
                raised = next(r for r in view["revisions"] if r["number"] == 3)
                return bool(raised.get("a2a", {}).get("SendMessage -32603", 0) > 0)

            app.wait("revision 3's outcomes in its view", counted, timeout=10)
            shown = cli(app, "get", APP)
            assert "× -32603 on SendMessage" in shown, shown
            text = controller_metrics(app.state_dir)  # a scrape while revision 3 still drains

            view, took = release(app, "1.3.0", "template.env.AGENT_MODE=fail")
            assert view["phase"] == "Degraded", view["message"]
            assert "failed on SendMessage" in view["message"], view["message"]
            assert took < 60
        assert "a2a error -32603" in load.result().errors
        assert "a2a task failed" in load.result().errors

        with Background(app.url.rstrip("/"), rate=30, stream=True):
            view, took = release(app, "1.4.0", "template.env.AGENT_MODE=fail")
        assert view["phase"] == "Degraded", view["message"]
        assert "failed on SendStreamingMessage" in view["message"], view["message"]
        assert took < 60
        history = [(r["version"], r["outcome"]) for r in view_history(app)]
    assert (
        'rollwise_a2a_outcomes_total{app="plain",method="SendMessage",outcome="-32603",'
        'revision="3"}' in text
    )
    # the record says what the proxy saw, and the replay judges it as the analysis did
    spec = load_spec(app.spec_file)
    replayed = replay_file(record, spec, canary="3", baseline="2")
    assert replayed.verdict.outcome == "fail", replayed.verdict.detail
    assert "-32603 on SendMessage" in replayed.verdict.detail
    assert history == [
        ("1.0.0", "replaced"),
        ("1.1.0", "promoted"),
        ("1.2.0", "aborted"),
        ("1.3.0", "aborted"),
        ("1.4.0", "aborted"),
    ]


def view_history(app: PlainApp) -> list[dict[str, Any]]:
    return list(app.client.request("GET", f"/apps/{APP}/history"))


def cli(app: PlainApp, *args: str) -> str:
    """``rollwise ARGS`` as a person reads it (on a terminal 200 columns wide), whatever its
    exit code (``get`` of a Degraded app exits 1)."""
    argv = [sys.executable, "-m", "rollwise", *args, "--state-dir", str(app.state_dir)]
    env = dict(os.environ, COLUMNS="200")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)
    return done.stdout
