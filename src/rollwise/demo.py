"""``make demo``: three releases of the sample A2A agent under live A2A load.

Starts a controller on a temporary state directory, applies ``examples/rollwise.yaml`` on a
free port (with quicker steps), deploys 1.0.0 with two replicas and drives A2A
``SendMessage`` load through the proxy. Then, with a live view:

1. 1.0.0 → 1.1.0 by canary steps (20 %, analysis, 50 %, a pause), promoted; two-turn
   conversations begun while it runs at 50 % (each agent replica keeps its tasks in memory,
   as a2a-sdk's ``InMemoryTaskStore`` does) get their second turn after the promotion, each
   from the replica that holds it;
2. 1.1.0 → 1.2.0, made bad with the agent's ``AGENT_FAIL_RATE`` knob: its executor raises,
   which a2a-sdk answers as a JSON-RPC error in an HTTP 200; the analysis step counts them
   and aborts it, naming the error, and traffic is back on 1.1.0;
3. 1.1.0 → 1.3.0 by blue-green: a preview on its own port, promote, the swap, and an
   instant undo back to 1.1.0 (still warm).

It prints what the clients saw per version, the history, and how long each step took, and
stops everything it started. Exit code 0 when no request to a healthy version failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.live import Live
from rich.table import Table

from rollwise.backends.ports import free_port
from rollwise.cli.views import app_view
from rollwise.client import AdminClient
from rollwise.errors import RollwiseError
from rollwise.load import LoadConfig, LoadReport, run_load
from rollwise.spec import load_spec

__all__ = ["demo", "main"]

console = Console()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def _call(client: AdminClient, method: str, path: str, **kwargs: Any) -> Any:
    return await asyncio.to_thread(client.request, method, path, **kwargs)


async def _wait(client: AdminClient, app: str, stable: int, live: Live | None, limit: float) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        view = await _call(client, "GET", f"/apps/{app}")
        if live is not None:
            live.update(app_view(view))
        if view["stable"] == stable and view["phase"] == "Healthy" and view["canary"] is None:
            return view
        if view["phase"] == "Degraded":
            raise RollwiseError(f"rollout degraded: {view['message']}")
        await asyncio.sleep(0.25)
    raise RollwiseError(f"revision {stable} did not become stable within {limit:.0f}s")


async def _wait_phase(client: AdminClient, app: str, phase: str, live: Live, limit: float) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        view = await _call(client, "GET", f"/apps/{app}")
        live.update(app_view(view))
        if view["phase"] == phase:
            return view
        await asyncio.sleep(0.25)
    raise RollwiseError(f"{app} did not reach {phase} within {limit:.0f}s")


async def _apply(client: AdminClient, spec: dict[str, Any], version: str | None) -> None:
    body = {"spec": spec, "base_dir": str(EXAMPLES), "version": version}
    await _call(client, "PUT", "/apps", json=body)


DEMO_CANARY = {
    "steps": [
        {"setWeight": 20},
        # watch 8 s; the judges compare canary with stable over the same seconds
        {"analysis": {"until": "duration", "duration": "8s", "minRequests": 40}},
        {"setWeight": 50},
        {"pause": {"duration": "5s"}},
    ],
    "scaleDownDelaySeconds": 60,
}


A2A_HEADERS = {"A2A-Version": "1.0"}


def _message(text: str, ids: dict[str, str]) -> dict[str, Any]:
    message: dict[str, Any] = {"messageId": f"demo-{time.monotonic_ns()}", "role": "ROLE_USER"}
    message.update(ids, parts=[{"text": text}])
    return {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}


async def _begin(url: str, count: int) -> list[tuple[dict[str, str], str]]:
    """``count`` conversations' first turns (the agent asks for more input), each on a new
    connection: their tasks' ids and the version that answered."""
    begun = []
    for _ in range(count):
        async with httpx.AsyncClient(headers=A2A_HEADERS, timeout=10) as http:
            answer = await http.post(url, json=_message("ask: a table for two", {}))
        task = answer.json()["result"]["task"]
        ids = {"taskId": task["id"], "contextId": task["contextId"]}
        begun.append((ids, answer.headers.get("x-rollwise-version", "?")))
    return begun


async def _follow(url: str, begun: list[tuple[dict[str, str], str]]) -> list[bool]:
    """The second turn of each conversation: answered, by the version it began on?"""
    done = []
    for ids, version in begun:
        async with httpx.AsyncClient(headers=A2A_HEADERS, timeout=10) as http:
            answer = await http.post(url, json=_message("tomorrow at eight", ids))
        result = answer.json().get("result", {}).get("task", {})
        state = result.get("status", {}).get("state")
        same = answer.headers.get("x-rollwise-version") == version
        done.append(state == "TASK_STATE_COMPLETED" and same)
    return done


async def _at_weight(client: AdminClient, app: str, weight: int, live: Live, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        view = await _call(client, "GET", f"/apps/{app}")
        live.update(app_view(view))
        if view.get("actual_weights", {}).get(str(view["canary"])) == weight:
            return
        await asyncio.sleep(0.1)
    raise RollwiseError(f"{app}'s canary did not reach {weight} % within {limit:.0f}s")


class _Timeline:
    """What happened when, printed as it happens and kept for the summary."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float]] = []
        self.t0 = time.monotonic()

    def mark(self, what: str) -> None:
        self.steps.append((what, time.monotonic() - self.t0))
        console.print(f"[bold cyan]▶[/] {what}  [dim]({self.steps[-1][1]:.1f}s)[/]")


async def demo(state_dir: Path) -> int:
    port = free_port()
    spec = load_spec(EXAMPLES / "rollwise.yaml").model_dump(mode="json", by_alias=True)
    spec["spec"]["strategy"] = {"canary": DEMO_CANARY}
    spec["spec"]["listen"] = f"127.0.0.1:{port}"
    spec["spec"]["template"]["env"]["AGENT_PUBLIC_URL"] = f"http://127.0.0.1:{port}/"
    timeline = _Timeline()
    timeline.mark(f"starting the controller on {state_dir}")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rollwise",
        "up",
        "--detach",
        "--state-dir",
        str(state_dir),
        "--metrics-port",
        "0",
    )
    if await proc.wait() != 0:
        raise RollwiseError("the controller did not start")
    client = AdminClient(state_dir)
    try:
        report, history, followed = await _story(
            client, spec, f"http://127.0.0.1:{port}/", timeline
        )
    finally:
        await _down(client, state_dir)
        client.close()
    timeline.mark("controller, proxy and replicas stopped")
    code = _summary(report, history, timeline)
    if not all(followed):
        console.print(f"[red]{followed.count(False)} conversations lost their second turn[/]")
        code = 1
    return code


async def _story(
    client: AdminClient, spec: dict[str, Any], url: str, timeline: _Timeline
) -> tuple[LoadReport, list[dict[str, Any]], list[bool]]:
    """Three releases under A2A load: a canary promoted, a bad canary aborted by analysis,
    a blue-green preview swapped and undone."""
    mark = timeline.mark
    app = "sample-agent"
    await _apply(client, spec, "1.0.0")
    mark("deploying sample-agent 1.0.0 with 2 replicas (a first release skips the steps)")
    await _wait(client, app, 1, None, 60)
    mark(f"1.0.0 is serving on {url}; starting A2A load (50 req/s)")
    stop = asyncio.Event()
    load = asyncio.create_task(
        run_load(LoadConfig(url=url, rate=50, duration=300, a2a=True), stop=stop)
    )
    await asyncio.sleep(2)
    with Live(console=console, refresh_per_second=4) as live:
        await _call(client, "POST", f"/apps/{app}/deploy", json={"version": "1.1.0"})
        mark("canary 1.1.0: setWeight 20, analysis, setWeight 50, pause 5s")
        await _at_weight(client, app, 50, live, 120)
        begun = await _begin(url, 10)
        on_canary = sum(version == "1.1.0" for _, version in begun)
        await _wait(client, app, 2, live, 120)
    mark(
        f"1.1.0 promoted: it serves 100%; 1.0.0 stays warm for 60s. {len(begun)} two-turn "
        f"conversations were begun at 50 % ({on_canary} on 1.1.0, {len(begun) - on_canary} "
        "on 1.0.0)"
    )
    followed = await _follow(url, begun)
    mark(
        f"their second turns, after the promotion: {sum(followed)} of {len(followed)} answered "
        "by the replica that holds the conversation"
    )

    with Live(console=console, refresh_per_second=4) as live:
        bad = {"version": "1.2.0", "set": ["template.env.AGENT_FAIL_RATE=0.3"]}
        await _call(client, "POST", f"/apps/{app}/deploy", json=bad)
        mark(
            "canary 1.2.0, made bad: AGENT_FAIL_RATE=0.3 (its executor raises; a2a-sdk answers "
            "a JSON-RPC error -32603 in an HTTP 200)"
        )
        view = await _wait_phase(client, app, "Degraded", live, 120)
    mark(f"1.2.0 {view['message']}; traffic is back on 1.1.0")

    blue_green = dict(spec["spec"])
    preview_port = free_port()
    blue_green["strategy"] = {
        "blueGreen": {
            "previewListen": f"127.0.0.1:{preview_port}",
            "autoPromotionEnabled": False,
            "scaleDownDelaySeconds": 60,
        }
    }
    await _apply(client, {**spec, "spec": blue_green}, None)
    with Live(console=console, refresh_per_second=4) as live:
        await _call(client, "POST", f"/apps/{app}/deploy", json={"version": "1.3.0"})
        mark("blue-green 1.3.0: preview first")
        await _wait_phase(client, app, "Paused", live, 120)
    mark(f"1.3.0 preview on http://127.0.0.1:{preview_port}/; promoting")
    swap = time.monotonic()
    await _call(client, "POST", f"/apps/{app}/promote", json={})
    await _wait(client, app, 4, None, 60)
    mark(f"swapped: 1.3.0 is active ({time.monotonic() - swap:.2f}s after promote)")
    await asyncio.sleep(3)
    undo = time.monotonic()
    await _call(client, "POST", f"/apps/{app}/undo", json={})
    await _wait(client, app, 2, None, 60)
    mark(f"undo: 1.1.0 serves 100% again ({time.monotonic() - undo:.2f}s, it was warm)")
    await asyncio.sleep(3)
    stop.set()
    report = await load
    mark("load stopped")
    history = await _call(client, "GET", f"/apps/{app}/history")
    return report, list(history), followed


def _summary(report: LoadReport, history: list[dict[str, Any]], timeline: _Timeline) -> int:
    """The tables at the end; 0 when no healthy version failed a request."""
    summary = Table(title="what the clients saw", header_style="bold")
    for col in ("requests", "ok", "errors", "p50 ms", "p99 ms", *sorted(report.versions)):
        summary.add_column(col, justify="right")
    p50, p99 = report.percentile(0.5), report.percentile(0.99)
    summary.add_row(
        str(report.sent),
        str(report.ok),
        str(report.errors_total),
        f"{(p50 or 0) * 1000:.1f}",
        f"{(p99 or 0) * 1000:.1f}",
        *(str(report.versions[v]) for v in sorted(report.versions)),
    )
    console.print(summary)
    revisions = Table(title="history", header_style="bold")
    for col in ("revision", "version", "outcome", "took"):
        revisions.add_column(col)
    for row in history:
        took = row["finished_at"] - row["created_at"] if row["finished_at"] else None
        revisions.add_row(
            str(row["revision"]),
            row["version"],
            row["outcome"],
            f"{took:.1f}s" if took is not None else "-",
        )
    console.print(revisions)
    steps = Table(title="timeline", header_style="bold")
    steps.add_column("at", justify="right")
    steps.add_column("step")
    for what, at in timeline.steps:
        steps.add_row(f"{at:.1f}s", what)
    console.print(steps)
    healthy_errors = report.errors_total - report.version_errors["1.2.0"]
    console.print(
        f"failed requests: {report.version_errors['1.2.0']} on the bad 1.2.0 before its abort, "
        f"{healthy_errors} on healthy versions"
    )
    return 0 if healthy_errors == 0 else 1


async def _down(client: AdminClient, state_dir: Path) -> None:
    pid_file = state_dir / "controller.pid"
    with contextlib.suppress(RollwiseError):
        await _call(client, "POST", "/shutdown")
    deadline = time.monotonic() + 60
    # Polled: the controller is another process; its pid file going away is the signal.
    while pid_file.exists() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(state_dir) in cmdline:
            proc.kill()


def main() -> None:
    state_dir = Path(tempfile.mkdtemp(prefix="rollwise-demo-"))
    try:
        code = asyncio.run(demo(state_dir))
    except RollwiseError as exc:
        console.print(f"[red]demo failed:[/] {exc}")
        code = 1
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
