"""The spec loader: valid specs load; each malformed one gives one line with file:line and path."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rollwise.errors import SpecError, UsageError
from rollwise.spec import apply_overrides, format_duration, load_spec, parse_duration, parse_spec

from .helpers import EXAMPLES

GOOD = """\
apiVersion: rollwise/v1
kind: Rollout
metadata:
  name: web
spec:
  replicas: 2
  template:
    command: [python, -m, app, --port, "{port}"]
    env: {V: "{version}"}
  strategy:
    canary:
      steps:
        - setWeight: 10
        - pause: {duration: 30s}
"""

# (name, text, expected line, expected path fragment)
BAD: list[tuple[str, str, int, str]] = [
    ("yaml syntax", GOOD.replace("  replicas: 2", "  replicas: [2"), 7, "YAML syntax"),
    ("wrong type", GOOD.replace("replicas: 2", "replicas: two"), 6, "spec.replicas"),
    ("unknown field", GOOD.replace("  replicas: 2", "  replica: 2"), 6, "spec.replica"),
    (
        "bad duration",
        GOOD.replace("duration: 30s", "duration: 30 parsecs"),
        14,
        "spec.strategy.canary.steps[1].pause.duration",
    ),
    (
        "weight out of range",
        GOOD.replace("setWeight: 10", "setWeight: 140"),
        13,
        "spec.strategy.canary.steps[0].setWeight: 140 is not in 0..100",
    ),
    (
        "missing command",
        GOOD.replace('    command: [python, -m, app, --port, "{port}"]\n', ""),
        7,
        "spec.template.command",
    ),
    (
        "empty command",
        GOOD.replace('[python, -m, app, --port, "{port}"]', "[]"),
        8,
        "spec.template.command",
    ),
    (
        "duplicate step names",
        GOOD.replace(
            "        - setWeight: 10\n",
            "        - {name: a, setWeight: 10}\n        - {name: a, setWeight: 20}\n",
        ),
        11,
        "spec.strategy.canary",
    ),
    (
        "two kinds in a step",
        GOOD.replace("- setWeight: 10", "- {setWeight: 10, pause: {}}"),
        13,
        "spec.strategy.canary.steps[0]",
    ),
    ("wrong apiVersion", GOOD.replace("rollwise/v1", "rollwise/v2"), 1, "apiVersion"),
    ("bad name", GOOD.replace("name: web", "name: Web_App"), 4, "metadata.name"),
    ("unknown placeholder", GOOD.replace('"{port}"', '"{prot}"'), 8, "spec.template.command[4]"),
    (
        "duplicate key",
        GOOD.replace("  replicas: 2\n", "  replicas: 2\n  replicas: 3\n"),
        7,
        "spec.replicas: duplicate key",
    ),
    (
        "bad listen",
        GOOD.replace("  replicas: 2\n", "  replicas: 2\n  listen: localhost\n"),
        7,
        "spec.listen",
    ),
    ("negative replicas", GOOD.replace("replicas: 2", "replicas: -1"), 6, "spec.replicas"),
    ("not a mapping", "- just\n- a list\n", 1, "a spec is a mapping"),
    (
        "bad failure status",
        GOOD.replace("  replicas: 2\n", "  replicas: 2\n  traffic: {failureStatus: [5xx, 6xx]}\n"),
        7,
        "spec.traffic.failureStatus[1]: '6xx' is not a status code or class",
    ),
    (
        "bad webhook url",
        GOOD.replace("  replicas: 2\n", "  replicas: 2\n  webhooks: [{url: 'ftp://x/y'}]\n"),
        7,
        "spec.webhooks[0].url: 'ftp://x/y' is not an http(s) URL",
    ),
    (
        "bad sticky header",
        GOOD.replace("  replicas: 2\n", "  replicas: 2\n  traffic: {stickyHeader: 'X Session'}\n"),
        7,
        "spec.traffic.stickyHeader",
    ),
]


def test_traffic_defaults_and_values() -> None:
    assert parse_spec(GOOD).spec.traffic.failure_status == ["5xx"]
    text = GOOD.replace(
        "  replicas: 2\n",
        "  replicas: 2\n  traffic:\n    failureStatus: [5xx, 429]\n"
        "    stickyCookie: session\n    loadBalancer: roundRobin\n",
    )
    traffic = parse_spec(text).spec.traffic
    assert traffic.failure_status == ["5xx", "429"]
    assert traffic.sticky_cookie == "session" and traffic.load_balancer == "roundRobin"
    assert traffic.override_header == "X-Rollwise-Revision"


def test_example_specs_load() -> None:
    for path in EXAMPLES.glob("**/rollwise.yaml"):
        spec = load_spec(path)
        assert spec.spec.template.command


def test_good_spec_values() -> None:
    spec = parse_spec(GOOD)
    assert spec.name == "web"
    steps = spec.spec.strategy.canary.steps if spec.spec.strategy.canary else []
    assert [s.kind for s in steps] == ["setWeight", "pause"]
    assert steps[1].pause is not None and steps[1].pause.duration == 30.0


@pytest.mark.parametrize(("name", "text", "line", "fragment"), BAD, ids=[b[0] for b in BAD])
def test_bad_spec_is_one_precise_line(name: str, text: str, line: int, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "rollwise.yaml")
    first = info.value.problems[0]
    assert first.startswith(f"rollwise.yaml:{line}: "), first
    assert fragment in first, first
    assert "\n" not in first


@pytest.mark.parametrize(
    ("name", "text", "line", "fragment"), BAD[:13], ids=[b[0] for b in BAD[:13]]
)
def test_lint_cli_exit_2_without_traceback(
    tmp_path: Path, name: str, text: str, line: int, fragment: str
) -> None:
    path = tmp_path / "rollwise.yaml"
    path.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "rollwise", "lint", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, lines
    assert re.search(rf"{re.escape(str(path))}:{line}: ", lines[0]), lines[0]


def test_lint_ok_and_missing_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rollwise", "lint", "-f", str(EXAMPLES / "rollwise.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "ok" in result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "rollwise", "lint", "-f", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "no such file" in result.stderr


def test_durations() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("250ms") == 0.25
    assert parse_duration(5) == 5.0
    assert format_duration(90) == "1m30s"
    for seconds in (0, 0.25, 1.5, 90.25, 3600.001):  # stored specs keep their values
        assert parse_duration(format_duration(seconds)) == seconds
    for bad in ("", "5 minutes", "-1s", True, "1x"):
        with pytest.raises(ValueError, match=r"duration|negative"):
            parse_duration(bad)


def test_overrides() -> None:
    spec = apply_overrides(parse_spec(GOOD), ["template.env.FAIL=0.5", "replicas=3"])
    assert spec.spec.template.env["FAIL"] == "0.5"
    assert spec.spec.replicas == 3
    with pytest.raises(SpecError, match=r"--set: spec.replicas"):
        apply_overrides(parse_spec(GOOD), ["replicas=zero"])
    with pytest.raises(UsageError):
        apply_overrides(parse_spec(GOOD), ["novalue"])
    # a judge turned off stays off through an override
    off = parse_spec(
        GOOD.replace("    canary:\n", "    canary:\n      analysis: {latency: null}\n")
    )
    assert off.spec.strategy.analysis_settings.latency is None
    again = apply_overrides(off, ["template.env.FAIL=0.1"])
    assert again.spec.strategy.analysis_settings.latency is None
