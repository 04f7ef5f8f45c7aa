"""Release windows (when a deploy may start) and the release checklist, from the spec's
rules to a real controller refusing, recording an override, and printing its checklist."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from zoneinfo import ZoneInfo

import pytest

from rollwise import release_checklist
from rollwise.spec.windows import ReleaseWindows

from .conftest import FAST_CANARY, Cluster
from .helpers import assert_spec_refused

PARIS = ZoneInfo("Europe/Paris")


def at(year: int, month: int, day: int, hour: int, minute: int) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=PARIS).timestamp()


WINDOWS = ReleaseWindows.model_validate(
    {
        "timeZone": "Europe/Paris",
        "allow": [{"schedule": "0 9 * * 1-4", "duration": "8h"}],
        "freeze": [
            {"start": "2026-12-21T00:00", "end": "2027-01-04T00:00", "reason": "year-end freeze"},
            {"schedule": "0 12 * * 3", "duration": "1h", "reason": "lunch on Wednesdays"},
        ],
    }
)


def test_a_deploy_may_start_inside_an_allowed_window_and_outside_every_freeze() -> None:
    tuesday_10 = WINDOWS.check(at(2026, 12, 1, 10, 0))
    assert tuesday_10.open and "until 2026-12-01 17:00 CET" in tuesday_10.why
    assert WINDOWS.check(at(2026, 12, 1, 9, 0)).open  # the first minute counts
    assert not WINDOWS.check(at(2026, 12, 1, 17, 0)).open  # the end does not
    evening = WINDOWS.check(at(2026, 12, 1, 18, 30))
    assert not evening.open and "the next opens 2026-12-02 09:00 CET" in evening.why
    assert evening.until == at(2026, 12, 2, 9, 0)
    friday = WINDOWS.check(at(2026, 12, 4, 10, 0))
    assert not friday.open and "next opens 2026-12-07 09:00" in friday.why
    lunch = WINDOWS.check(at(2026, 12, 2, 12, 30))
    assert not lunch.open and "frozen (lunch on Wednesdays) until 2026-12-02 13:00" in lunch.why
    year_end = WINDOWS.check(at(2026, 12, 22, 10, 0))
    assert not year_end.open and "year-end freeze" in year_end.why
    assert year_end.until == at(2027, 1, 4, 0, 0)
    # summer time: the window is 09:00 in Paris, whatever the offset
    assert WINDOWS.check(at(2027, 6, 1, 9, 30)).open
    assert ReleaseWindows().check(time.time()).open


def test_bad_release_windows_are_refused_with_where_and_what() -> None:
    cases = {
        "    allow: [{schedule: '0 25 * * *', duration: 1h}]\n": "is not a cron schedule",
        "    timeZone: Mars/Olympus\n": "'Mars/Olympus' is not a time zone name",
        "    allow: [{schedule: '0 9 * * *'}]\n": "needs both schedule and a duration",
        "    freeze: [{schedule: '0 9 * * *', duration: 1h, start: '2026-01-01T00:00'}]\n": (
            "a window is either"
        ),
        "    freeze: [{start: '2026-01-02T00:00', end: '2026-01-01T00:00'}]\n": "is not before",
    }
    assert_spec_refused("  releaseWindows:\n", cases)


@pytest.mark.replicas(1)
def test_a_freeze_refuses_a_deploy_and_an_override_is_recorded(cluster: Cluster) -> None:
    now = dt.datetime.now(dt.UTC)
    freeze = {
        "start": (now - dt.timedelta(hours=1)).isoformat(),
        "end": (now + dt.timedelta(hours=1)).isoformat(),
        "reason": "incident 7 in progress",
    }
    cluster.use_steps(FAST_CANARY, smoke=False, extra={"releaseWindows": {"freeze": [freeze]}})
    refused = cluster.cli("deploy", "sample-agent", "--version", "1.1.0", check=False)
    assert refused.returncode == 1, refused.stderr
    assert "may not deploy now: frozen (incident 7 in progress) until" in refused.stderr
    assert "--override-window" in refused.stderr
    history = cluster.client.request("GET", "/apps/sample-agent/history")
    assert [r["revision"] for r in history] == [1]  # nothing changed
    blank = cluster.cli(
        "deploy", "sample-agent", "--version", "1.1.0", "--override-window", " ", check=False
    )
    assert blank.returncode == 2 and "overrideWindow needs a reason" in blank.stderr
    checklist = cluster.cli("checklist", "sample-agent", check=False).stdout
    assert "✗ release window: frozen (incident 7 in progress)" in checklist

    cluster.cli("deploy", "sample-agent", "--version", "1.1.0", "--override-window", "the fix")
    cluster.wait_stable(2)
    history = cluster.client.request("GET", "/apps/sample-agent/history")
    (second,) = [r for r in history if r["revision"] == 2]
    assert "release window overridden: the fix" in second["cause"], second
    rows = cluster.client.request("GET", "/apps/sample-agent/events", params={"limit": 100})
    (event,) = [e for e in rows if e["kind"] == "WindowOverridden"]
    assert event["revision"] == 2 and event["data"]["reason"] == "the fix"


@pytest.mark.replicas(1)
def test_the_checklist_names_each_gap_and_require_checklist_refuses_until_fixed(
    cluster: Cluster,
) -> None:
    shown = cluster.cli("checklist", "sample-agent", check=False)
    assert shown.returncode == 1
    lines = shown.stdout
    assert "✔ no rollout in progress" in lines
    assert "✔ smoke tests:" in lines and "last passed" in lines
    assert "✗ analysis: none configured" in lines and "fix: add an analysis step" in lines
    assert "✗ backup: no backup of the store" in lines
    assert "– error budget: no SLOs" in lines and "– release window" in lines
    assert "✔ rollback target: `rollwise undo sample-agent` returns to revision 1" in lines
    assert "✔ agent card: revision 1" in lines

    refused = cluster.cli(
        "deploy", "sample-agent", "--version", "1.1.0", "--require-checklist", check=False
    )
    assert refused.returncode == 1 and "2 items failing" in refused.stderr, refused.stderr
    assert "analysis: none configured" in refused.stderr
    assert len(cluster.client.request("GET", "/apps/sample-agent/history")) == 1

    steps = {"steps": [{"setWeight": 50}, {"analysis": {"until": "pass", "maxDuration": "1s"}}]}
    cluster.use_steps({**steps, "analysis": {"onInconclusive": "wait"}})
    cluster.cli("backup")
    as_json = json.loads(cluster.cli("checklist", "sample-agent", "-o", "json").stdout)
    assert {row["item"]: row["state"] for row in as_json}["analysis"] == "pass"
    lines = release_checklist("sample-agent", state_dir=cluster.state_dir)
    assert not [line for line in lines if line.startswith("✗")], lines
    # the only app; an age (the backup's, the last smoke run's) may tick over between reads
    ages = re.compile(r"\d+[smh] ago")
    alone = release_checklist(state_dir=cluster.state_dir)
    assert [ages.sub("", line) for line in alone] == [ages.sub("", line) for line in lines]
    cluster.cli("deploy", "sample-agent", "--version", "1.1.0", "--require-checklist")
