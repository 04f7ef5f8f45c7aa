"""Property: the spec loader turns any input into a valid spec or a ``SpecError`` whose every
problem is one line naming the file and line — never another exception, never a traceback."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from rollwise.errors import SpecError
from rollwise.spec import Rollout, parse_spec

from .fuzz import FUZZ

BASE: dict[str, Any] = {
    "apiVersion": "rollwise/v1",
    "kind": "Rollout",
    "metadata": {"name": "fuzz", "labels": {"team": "a"}},
    "spec": {
        "replicas": 2,
        "listen": "127.0.0.1:8080",
        "template": {
            "command": ["{python}", "-m", "app", "--port", "{port}"],
            "env": {"V": "{version}", "API_TOKEN": "x"},
            "secretEnv": ["V"],
            "readiness": {"path": "/healthz", "interval": "1s", "failureThreshold": 3},
        },
        "traffic": {"stickyHeader": "X-Session", "failureStatus": ["5xx", 429]},
        "a2a": {"card": "/.well-known/agent-card.json", "allowBreaking": False},
        "strategy": {
            "canary": {
                "steps": [
                    {"setWeight": 10},
                    {
                        "analysis": {
                            "until": "pass",
                            "maxDuration": "2m",
                            "maxLatency": {"p99": "500ms"},
                        }
                    },
                    {"setCanaryScale": {"replicas": 1}},
                    {
                        "setHeaderRoute": {
                            "name": "h",
                            "match": [{"headerName": "X", "headerValue": "1"}],
                        }
                    },
                    {"pause": {"duration": "30s"}},
                ],
                "analysis": {"alpha": 0.01, "latency": {"quantile": "p95", "tolerance": "10%"}},
                "scaleDownDelaySeconds": "30s",
            }
        },
        "smokeTests": [
            {
                "name": "h",
                "http": {"path": "/healthz", "jsonPath": [{"path": "$.status", "equals": "ok"}]},
            },
            {"name": "p", "a2aMessage": {"text": "ping", "expectText": "pong"}, "retries": 2},
            {"name": "c", "command": ["{python}", "x.py", "{url}"], "schedule": "1m"},
        ],
        "webhooks": [{"url": "http://127.0.0.1:9/x", "events": ["RolloutAborted"]}],
        "backup": {"schedule": "1h", "keep": 3},
    },
}
DELETE = object()


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


PATHS = _paths(BASE)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=24)
    | st.sampled_from(["10%", "p95", "1m", "-1s", "5xx", "{port}", "{nope}", "1e309", "0x10"])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=8,
)
edits = st.lists(
    st.tuples(st.sampled_from(PATHS), st.one_of(st.just(DELETE), values)), min_size=1, max_size=4
)


def _apply(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    parent = doc
    for step in path[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return
    last = path[-1]
    try:
        if value is DELETE:
            del parent[last]
        else:
            parent[last] = value
    except (KeyError, IndexError, TypeError):
        return


def check(text: str) -> None:
    problems: list[str] = []
    try:
        spec = parse_spec(text, "fuzz.yaml")
    except SpecError as exc:
        problems = exc.problems or ["(a SpecError with no problem)"]
    else:
        assert isinstance(spec, Rollout)
    for line in problems:
        assert "\n" not in line and line.startswith("fuzz.yaml:"), line


@FUZZ
@given(edits)
def test_edited_specs_load_or_say_what_is_wrong(changes: list[tuple[tuple[Any, ...], Any]]) -> None:
    doc = copy.deepcopy(BASE)
    for path, value in changes:
        _apply(doc, path, value)
    check(yaml.safe_dump(doc, allow_unicode=True))


@FUZZ
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_any_text_loads_or_says_what_is_wrong(text: str) -> None:
    check(text)


@FUZZ
@given(st.sampled_from(PATHS), st.text(alphabet=" :-[]{}#&*!|>'\"%@`,?\n\t", max_size=12))
def test_yaml_syntax_damage_is_located(path: tuple[Any, ...], junk: str) -> None:
    text = yaml.safe_dump(BASE)
    key = str(path[-1])
    at = text.find(key) if not isinstance(path[-1], int) else -1
    check(text[:at] + junk + text[at:] if at >= 0 else text + junk)


def test_the_base_spec_is_valid() -> None:
    check(yaml.safe_dump(BASE))
    assert parse_spec(yaml.safe_dump(BASE)).spec.backup is not None
