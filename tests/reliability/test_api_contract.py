"""schemathesis against a live controller's admin API, from its own OpenAPI document: any
request the document allows (and many it does not) gets an answer other than 5xx, and every
error is the API's JSON ``{"error", "kind"}``.

The budget per operation is ``ROLLWISE_FUZZ_EXAMPLES`` (15 in ``make test``; see
docs/reliability.md for the longer run). ``POST /shutdown`` is left out (it would end the
run), and smoke runs are kept to loopback URLs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from rollwise.api.auth import TOKEN_FILE
from rollwise.api.openapi import openapi_document
from rollwise.backends.ports import free_port

from ..conftest import Cluster, running_cluster
from ..helpers import wait_for

EXAMPLES = int(os.environ.get("ROLLWISE_FUZZ_EXAMPLES", "15"))

schema = schemathesis.openapi.from_dict(openapi_document()).exclude(path="/api/v1/shutdown")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, str, str]]:
    work = tmp_path_factory.mktemp("contract")
    port = free_port()
    with running_cluster(work / "state", work, 1, "--api-listen", f"127.0.0.1:{port}") as c:
        token = (c.state_dir / TOKEN_FILE).read_text().strip()
        yield c, f"http://127.0.0.1:{port}", token


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=os.environ.get("ROLLWISE_FUZZ_RANDOM") != "1",
)
def test_the_admin_api_never_answers_5xx(case: Any, live: tuple[Cluster, str, str]) -> None:
    _, base_url, token = live
    body = case.body if isinstance(case.body, dict) else {}
    url = body.get("url")
    if isinstance(url, str) and not url.startswith("http://127.0.0.1:"):
        body["url"] = None  # smoke runs stay on loopback
    case.headers = {**(case.headers or {}), "authorization": f"Bearer {token}"}
    answer = case.call(base_url=base_url, timeout=60)
    assert answer.status_code < 500, (case.method, case.path, case.body, answer.text)
    if answer.status_code >= 400:
        assert answer.headers.get("content-type") == ["application/json"], (
            case.method,
            case.path,
            answer.status_code,
            answer.text,
        )
        error = json.loads(answer.text)
        assert set(error) == {"error", "kind"}, error
        if error["kind"] != "SpecError":  # a spec's problems: one line each
            assert "\n" not in error["error"], error


def test_the_document_is_served_and_valid(live: tuple[Cluster, str, str]) -> None:
    cluster, _, _ = live
    served = cluster.client.request("GET", "/openapi.json")
    assert served == openapi_document()
    schemathesis.openapi.from_dict(served)  # loads: a valid OpenAPI 3.1 document


def test_the_controller_is_well_after_the_fuzzing(live: tuple[Cluster, str, str]) -> None:
    """Runs after the fuzzing (same module): whatever it deployed, aborted or undid, the
    reconcile loop is not failing and the app still serves."""
    cluster, _, _ = live
    view = wait_for(lambda: (v := cluster.get())["reconcile_errors"] == 0 and v, timeout=20)
    assert view["stable"] is not None

    def serving() -> str | None:
        answer = httpx.get(cluster.url + "/healthz", timeout=5)
        return str(answer.json()["version"]) if answer.is_success else None

    assert wait_for(serving)
