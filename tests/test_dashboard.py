"""The dashboard in a real browser: Playwright driving Debian's Chromium against a real
controller, proxy and sample agent on loopback."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from rollwise.backends.ports import free_port

from .conftest import Cluster, running_cluster, write_spec
from .helpers import Background, wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium (.ci/run installs it)"
)
# Where `make screenshots` asks the screenshots to go (docs/dashboard.md shows them).
SHOTS = os.environ.get("ROLLWISE_SCREENSHOTS")
# Chromium's own calls home are refused on a closed network; these flags stop them.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def board(tmp_path: Path) -> Iterator[tuple[Cluster, str]]:
    listen = f"127.0.0.1:{free_port()}"
    with running_cluster(tmp_path / "state", tmp_path, 1, "--dashboard", listen) as cluster:
        url = cluster.client.request("GET", "/version")["dashboard_url"]
        assert url == f"http://{listen}/"
        assert cluster.cli("dashboard").stdout.strip() == url
        token = (cluster.state_dir / "api-token").read_text().strip()
        assert cluster.cli("dashboard", "--write").stdout.strip() == f"{url}login?token={token}"
        yield cluster, url


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def _page(browser: Any, seen: list[str]) -> Any:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.on("request", lambda r: seen.append(r.url))
    page.on("dialog", lambda d: d.accept())
    return page


def _token(cluster: Cluster) -> str:
    return (cluster.state_dir / "api-token").read_text().strip()


def _steps(cluster: Cluster, steps: list[Any], **env: str) -> None:
    canary = {"steps": steps, "scaleDownDelaySeconds": "1s"}
    write_spec(cluster.spec_file, cluster.port, cluster.replicas, canary, env, smoke_tests=[])
    cluster.apply()


@pytest.mark.slow
def test_a_canary_moves_live_and_is_promoted_and_undone_from_the_page(
    board: tuple[Cluster, str], browser: Any
) -> None:
    from playwright.sync_api import expect

    cluster, url = board
    seen: list[str] = []
    page = _page(browser, seen)
    page.goto(url)
    row = page.locator('tr[data-app="sample-agent"]')
    expect(row).to_contain_text("Healthy")
    expect(page.locator(".mode")).to_contain_text("read-only")

    _steps(
        cluster,
        [{"setWeight": 20}, {"pause": {"duration": "1s"}}, {"setWeight": 60}, {"pause": {}}],
    )
    page.goto(f"{url}apps/sample-agent")
    expect(page.locator("section.actions")).to_have_count(0)  # read-only: no buttons
    cluster.deploy("1.1.0")
    # the step and the weight change on the open page, without a reload
    expect(page.locator("[data-weight]")).to_contain_text("20 %", timeout=20_000)
    expect(page.locator("[data-weight]")).to_contain_text("60 %", timeout=20_000)
    expect(page.locator(".phase").first).to_have_text("Paused", timeout=20_000)
    expect(page.locator(".steps li.current")).to_have_count(1)
    # a change without the write token is refused, whatever the page shows
    refused = httpx.post(f"{url}apps/sample-agent/actions/promote")
    assert refused.status_code == 403
    assert cluster.get()["phase"] == "Paused"

    page.goto(f"{url}login?token={_token(cluster)}")
    expect(page.locator(".mode")).to_contain_text("changes allowed")
    page.goto(f"{url}apps/sample-agent")
    page.get_by_role("button", name="promote-full").click()
    expect(page.locator(".phase").first).to_have_text("Healthy", timeout=30_000)
    assert cluster.wait_stable(2)["stable"] == 2
    # a revision's logs: the last lines, then new ones as they come
    logs = _page(browser, seen)
    logs.goto(f"{url}apps/sample-agent/revisions/2/logs")
    expect(logs.locator("#log")).to_contain_text("[r2-0] sample agent 1.1.0 listening")
    logs.close()
    page.get_by_role("button", name="undo").click()
    wait_for(lambda: cluster.get()["stable"] == 1, timeout=30)
    events = cluster.client.request("GET", "/apps/sample-agent/events")
    actions = [e for e in events if e["kind"] == "DashboardAction"]
    assert [a["data"]["action"] for a in actions] == ["promote-full", "undo"]
    assert all("write token" in a["message"] for a in actions)
    history = cluster.cli("history", "sample-agent").stdout
    assert "replaced by revision 1" in history
    # nothing the page asked for left loopback
    assert seen and all(u.startswith(url) for u in seen), [u for u in seen if not u.startswith(url)]


@pytest.mark.slow
def test_an_aborted_canary_shows_its_evidence_and_charts(
    board: tuple[Cluster, str], browser: Any
) -> None:
    from playwright.sync_api import expect

    cluster, url = board
    steps: list[dict[str, Any]] = [
        {"setWeight": 50},
        {"analysis": {"until": "pass", "maxDuration": "60s"}},
    ]
    _steps(cluster, steps)
    seen: list[str] = []
    page = _page(browser, seen)
    page.goto(f"{url}apps/sample-agent")
    with Background(cluster.url, rate=50):
        cluster.deploy("1.1.0", "template.env.AGENT_FAIL_RATE=0.25")
        expect(page.locator(".phase").first).to_have_text("Degraded", timeout=60_000)
    expect(page.locator("#events")).to_contain_text("RolloutAborted")
    expect(page.locator(".gates")).to_contain_text("AgentCardChanged")
    expect(page.locator(".analyses")).to_contain_text("fail")
    expect(page.locator("#evidence-text")).to_contain_text("fail", timeout=10_000)
    expect(page.locator("#chart-rates canvas")).to_have_count(1)
    expect(page.locator("#chart-evalues canvas")).to_have_count(1)
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "dashboard-aborted.png"), full_page=True)
        page.goto(url)
        page.screenshot(path=str(Path(SHOTS) / "dashboard-apps.png"), full_page=True)
    assert all(u.startswith(url) for u in seen)


@pytest.mark.solo
def test_two_hundred_apps_render_in_under_a_second(
    board: tuple[Cluster, str], browser: Any
) -> None:
    from playwright.sync_api import expect

    cluster, url = board
    spec = yaml.safe_load(cluster.spec_file.read_text())
    ports = {cluster.port}
    while len(ports) < 200:
        ports.add(free_port())
    ports.discard(cluster.port)
    for i, port in enumerate(sorted(ports)):  # apps applied, none deployed: no process each
        spec["metadata"]["name"] = f"app-{i:03d}"
        spec["spec"]["listen"] = f"127.0.0.1:{port}"
        body = {"spec": spec, "base_dir": str(cluster.spec_file.parent), "version": None}
        cluster.client.request("PUT", "/apps", json=body)
    started = time.monotonic()
    answer = httpx.get(url)
    assert answer.status_code == 200 and time.monotonic() - started < 1.0
    page = _page(browser, [])
    started = time.monotonic()
    page.goto(url)
    expect(page.locator("table.apps tbody tr")).to_have_count(200)
    assert time.monotonic() - started < 1.0
    page.goto(f"{url}?name=app-01")
    expect(page.locator("table.apps tbody tr")).to_have_count(10)


def test_the_app_page_shows_flags_release_gates_autoscaling_and_approves_a_gate(
    board: tuple[Cluster, str], browser: Any
) -> None:
    cluster, url = board
    operations = {
        "flags": {"shout": {"variants": {"on": True, "off": False}, "defaultVariant": "off"}},
        "gates": [{"name": "owner", "type": "confirm-promotion"}],
        "autoscaling": {"minReplicas": 1, "maxReplicas": 3, "target": {"inFlight": 5}},
    }
    cluster.use_steps({"steps": [{"setWeight": 50}]}, extra=operations)
    cluster.cli("flags", "set", "sample-agent", "shout", "on", "--by", "alice")
    cluster.deploy("1.1.0")
    wait_for(lambda: "gate owner" in cluster.get()["message"], timeout=30)
    seen: list[str] = []
    page = _page(browser, seen)
    page.goto(f"{url}apps/sample-agent")
    page.wait_for_selector("#flags-h")
    text = page.inner_text("main")
    assert "shout" in text and "alice" in text and "runtime" in text, text
    assert "Waiting for approval" in text and "GateWaiting" in text, text
    assert "autoscaled 1..3" in text, text
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "dashboard-operations.png"), full_page=True)
    page.goto(f"{url}login?token={_token(cluster)}")
    page.goto(f"{url}apps/sample-agent")
    page.get_by_label("by").fill("carol")
    page.get_by_role("button", name="approve").click()

    def approved() -> list[dict[str, Any]] | None:
        events = cluster.client.request("GET", "/apps/sample-agent/events")
        return [e for e in events if e["kind"] == "GateApproved"] or None

    try:
        (approval,) = wait_for(approved, timeout=20)
    except AssertionError:
        raise AssertionError(f"no approval; the page says: {page.inner_text('body')}") from None
    assert approval["data"]["by"] == "carol (dashboard)"
    assert cluster.wait_stable(2)["stable"] == 2
