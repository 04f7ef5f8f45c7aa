"""SLOs end to end: a real controller, proxy and sample agent; a real Prometheus scraping the
controller; a real Alertmanager taking the burn-rate alerts; webhooks; the budget gate.

The windows are scaled down by the spec (rows of 1 s, a page alert over 30 s and 3 s) so
that a burn fires and resolves in seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from rollwise import ProductionDashboard, SLAWindow, summarise_metrics
from rollwise.backends.ports import free_port
from rollwise.store import Store

from .conftest import FAST_CANARY, Cluster, Receiver, write_spec
from .helpers import Background, promql, serving, start_controller, wait_for

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("prometheus-alertmanager") is None,
    reason="Debian's prometheus and prometheus-alertmanager (.ci/run installs them)",
)

SLOS = [
    {
        "name": "availability",
        "indicator": "availability",
        "target": "99%",
        "window": "10m",
        "resolution": "1s",
        "runbook": "https://runbooks.example/sample-agent/availability",
    },
    {
        "name": "latency",
        "indicator": "latency",
        "threshold": "300ms",
        "target": "95%",
        "window": "10m",
        "resolution": "1s",
    },
]
WINDOWS = [
    {"severity": "page", "long": "30s", "short": "3s", "burnRate": 14.4},
    {"severity": "ticket", "long": "2m", "short": "10s", "burnRate": 1},
]


def slo_spec(cluster: Cluster, alertmanager: str | None, hook: str) -> None:
    write_spec(cluster.spec_file, cluster.port, cluster.replicas, FAST_CANARY, smoke_tests=[])
    spec = yaml.safe_load(cluster.spec_file.read_text())
    spec["spec"]["slos"] = SLOS
    spec["spec"]["alerting"] = {"windows": WINDOWS, "resendInterval": "2s"}
    if alertmanager:
        spec["spec"]["alerting"]["alertmanager"] = alertmanager
    spec["spec"]["errorBudgetPolicy"] = {"slos": ["availability"]}
    spec["spec"]["webhooks"] = [
        {"url": hook, "events": ["AlertFiring", "AlertResolved", "BudgetOverridden"]},
        {"url": f"{hook}-slack", "format": "slack", "events": ["AlertFiring"]},
    ]
    cluster.spec_file.write_text(yaml.safe_dump(spec))
    cluster.apply()


@pytest.fixture
def alertmanager(tmp_path: Path, receiver: Receiver) -> Iterator[str]:
    """A real Alertmanager whose one receiver is a webhook to ``receiver``'s ``/am``."""
    port = free_port()
    config = {
        "route": {
            "receiver": "hook",
            "group_by": ["alertname", "app", "slo", "severity", "window"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "hook",
                "webhook_configs": [{"url": f"{receiver.url}/am", "send_resolved": True}],
            }
        ],
    }
    (tmp_path / "am.yml").write_text(yaml.safe_dump(config))
    yield from serving(
        port,
        "prometheus-alertmanager",
        f"--config.file={tmp_path / 'am.yml'}",
        f"--storage.path={tmp_path / 'am'}",
        "--cluster.listen-address=",
    )


def kinds(receiver: Receiver, kind: str) -> list[dict[str, Any]]:
    return [b for b in receiver.bodies("/hook") if b["kind"] == kind]


@pytest.mark.slow
def test_a_fast_burn_pages_through_alertmanager_and_webhooks_once_and_resolves(
    cluster: Cluster, receiver: Receiver, alertmanager: str, prometheus: str
) -> None:
    slo_spec(cluster, alertmanager, f"{receiver.url}/hook")
    with Background(cluster.url, rate=20):
        # a promoted release that fails half its calls burns a 99 % budget 50x
        bad = cluster.deploy("1.1.0", "template.env.AGENT_FAIL_RATE=0.5")
        cluster.wait_stable(bad)
        firing = wait_for(lambda: len(kinds(receiver, "AlertFiring")) >= 2, timeout=30)
        assert firing
        page = next(b for b in kinds(receiver, "AlertFiring") if b["data"]["severity"] == "page")
        assert page["data"]["window"] == "30s/3s" and page["data"]["slo"] == "availability"
        assert page["data"]["shortBurnRate"] >= 14.4 and page["data"]["longBurnRate"] >= 14.4
        assert "runbook: https://runbooks.example/sample-agent/availability" in page["message"]
        slack = wait_for(lambda: receiver.bodies("/hook-slack"))
        assert any(
            b["text"].startswith("[sample-agent] AlertFiring: page: SLO availability burns")
            for b in slack
        )

        # Alertmanager has it, with the labels and the numbers, and told its receiver
        def am_alerts() -> list[dict[str, Any]]:
            return [
                a
                for a in httpx.get(f"{alertmanager}/api/v2/alerts").json()
                if a["labels"].get("severity") == "page"
            ]

        paged = wait_for(am_alerts, timeout=15)[0]
        assert paged["labels"] == {
            "alertname": "ErrorBudgetBurn",
            "app": "sample-agent",
            "slo": "availability",
            "severity": "page",
            "window": "30s/3s",
        }
        assert paged["annotations"]["runbook_url"].startswith("https://runbooks.example/")
        assert float(paged["annotations"]["shortBurnRate"]) >= 14.4
        wait_for(lambda: [b for b in receiver.bodies("/am") if b["status"] == "firing"])

        # a real Prometheus scraped the SLI and answers PromQL for it
        ratio = wait_for(
            lambda: promql(prometheus, 'slo:sli_error:ratio_rate30s{sloth_service="sample-agent"}'),
            timeout=20,
        )
        assert ratio[0]["metric"]["sloth_slo"] in ("availability", "latency")
        counted = wait_for(
            lambda: promql(prometheus, 'rollwise_slo_bad_requests_total{slo="availability"} > 0')
        )
        assert counted

        # the spent budget refuses a new version, with the numbers and the way round
        refused = cluster.cli("deploy", "sample-agent", "--version", "1.2.0", check=False)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "error budget of SLO availability is spent" in refused.stderr
        assert "--override-budget" in refused.stderr
        assert cluster.get()["stable"] == bad  # nothing changed
        fixed = cluster.cli(
            "deploy", "sample-agent", "--version", "1.2.0",
            "--set", "template.env.AGENT_FAIL_RATE=0",
            "--override-budget", "the fix for the burn",
        )  # fmt: skip
        assert "rolling out" in fixed.stdout
        good = bad + 1
        cluster.wait_stable(good)
        history = cluster.cli("history", "sample-agent").stdout
        assert "error budget overridden: the fix for the burn" in history
        assert kinds(receiver, "BudgetOverridden")

        # recovered: each alert resolves once, in the webhooks and in Alertmanager
        wait_for(lambda: len(kinds(receiver, "AlertResolved")) >= 2, timeout=30)
        wait_for(lambda: not am_alerts(), timeout=30)
        wait_for(lambda: [b for b in receiver.bodies("/am") if b["status"] == "resolved"])
    time.sleep(3)  # resends would have arrived by now
    for kind in ("AlertFiring", "AlertResolved"):
        windows = [b["data"]["window"] for b in kinds(receiver, kind)]
        assert sorted(windows) == ["2m/10s", "30s/3s"], (kind, windows)
    am_firing = [b for b in receiver.bodies("/am") if b["status"] == "firing"]
    assert len({a["labels"]["window"] for b in am_firing for a in b["alerts"]}) == 2
    assert all(len(b["alerts"]) == 1 for b in am_firing)
    assert len(am_firing) == 2, "Alertmanager notified each alert once"

    shown = cluster.cli("alerts", "sample-agent", "-o", "json").stdout
    rows = yaml.safe_load(shown)
    assert {r["state"] for r in rows} == {"resolved"}
    assert {r["window"] for r in rows} == {"30s/3s", "2m/10s"}


@pytest.mark.slow
def test_sli_rows_and_alert_history_survive_kill_9_of_controller_and_proxy(
    cluster: Cluster, receiver: Receiver
) -> None:
    slo_spec(cluster, None, f"{receiver.url}/hook")
    with Background(cluster.url, rate=20):
        bad = cluster.deploy("1.1.0", "template.env.AGENT_FAIL_RATE=0.5")
        cluster.wait_stable(bad)
        wait_for(lambda: kinds(receiver, "AlertFiring"), timeout=30)
        before = wait_for(lambda: (r := _availability(cluster))["requests"] > 100 and r)
        assert before["budgetRemaining"] < 0
        # what people read: the SLO table, the rules, the alerts
        table = cluster.cli("slo", "sample-agent").stdout
        assert "availability" in table and "BUDGET LEFT" in table and "firing since" in table
        assert "30s/3s" in table
        reports = yaml.safe_load(cluster.cli("slo", "-o", "json").stdout)
        assert {r["slo"] for r in reports} == {"availability", "latency"}
        rules = cluster.cli("slo", "rules", "sample-agent", "--alerts-only").stdout
        assert "alert: ErrorBudgetBurn" in rules and "record:" not in rules
        written = cluster.state_dir.parent / "rules.yml"
        cluster.cli("slo", "rules", "sample-agent", "-f", str(written))
        assert "record: slo:sli_error:ratio_rate30s" in written.read_text()
        listed = cluster.cli("alerts", "--active").stdout
        assert "firing" in listed and "https://runbooks.example/sample-agent/availability" in listed
        missing = cluster.cli("slo", "rules", check=False)
        assert missing.returncode == 2 and "needs the app" in missing.stderr
        # the mission's helpers, over the same figures
        window = asyncio.run(
            SLAWindow.of_slo("sample-agent", "availability", state_dir=cluster.state_dir)
        )
        assert window.objective == pytest.approx(0.01) and window.status() == "breached"
        board = asyncio.run(ProductionDashboard.of_app("sample-agent", state_dir=cluster.state_dir))
        assert 0.3 < board.report()["error_rate"] < 0.7
        assert board.report()["slo_latency_budget_left"] == pytest.approx(1.0)
        summary = summarise_metrics(board)
        assert summary.startswith("# Metrics Summary\n") and "- requests_per_s: " in summary
        alerts = cluster.client.request("GET", "/alerts", params={"app": "sample-agent"})
        known = {a["id"] for a in alerts}
        assert known
        controller = int((cluster.state_dir / "controller.pid").read_text())
        store = Store(cluster.state_dir / "state.db")
        proxy = int(store.get_kv("proxy")["pid"])
        store.close()
        for pid in (controller, proxy):
            _kill9(pid)
        start_controller(cluster.state_dir, "--record", str(cluster.record))
        after = wait_for(lambda: _availability(cluster), timeout=30)
        # every row folded before the kill is still there: the window's counts did not drop
        assert after["requests"] >= before["requests"]
        assert after["budgetRemaining"] < 0
        alerts = cluster.client.request("GET", "/alerts", params={"app": "sample-agent"})
        assert known <= {a["id"] for a in alerts}  # the alert history survived
        time.sleep(3)  # a restarted controller evaluates them again
    # nothing was told twice: per alert, firing and resolved alternate (a second with no
    # request while the proxy restarts may resolve the 3-second window, and that is told)
    for alert in ("30s/3s", "2m/10s"):
        told = [
            b["kind"]
            for b in receiver.bodies("/hook")
            if b["kind"].startswith("Alert") and b["data"]["window"] == alert
        ]
        assert told and told[0] == "AlertFiring"
        assert all(a != b for a, b in itertools.pairwise(told)), (alert, told)


def _availability(cluster: Cluster) -> dict[str, Any]:
    reports = cluster.client.request("GET", "/apps/sample-agent/slos")
    return next(r for r in reports if r["slo"] == "availability")


def _kill9(pid: int) -> None:
    import os

    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), timeout=10)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
