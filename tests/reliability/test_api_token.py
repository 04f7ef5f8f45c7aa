"""The admin API on a loopback port: nothing without the token, only reads with the read
token, everything with the admin token; the token files are created with mode 0600."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from rollwise import SmokeTests, TestStatus
from rollwise.api.auth import READ_TOKEN_FILE, TOKEN_FILE
from rollwise.backends.ports import free_port

from ..conftest import Cluster, running_cluster, write_spec
from ..helpers import rollwise

pytestmark = pytest.mark.replicas(1)
PING = {"name": "ping", "a2aMessage": {"text": "ping"}}


@pytest.fixture
def listening(tmp_path: Path) -> Iterator[tuple[Cluster, str]]:
    port = free_port()
    state = tmp_path / "state"
    with running_cluster(state, tmp_path, 1, "--api-listen", f"127.0.0.1:{port}") as cluster:
        yield cluster, f"http://127.0.0.1:{port}/api/v1"


def test_no_token_reads_and_changes_nothing(listening: tuple[Cluster, str]) -> None:
    cluster, api = listening
    for name in (TOKEN_FILE, READ_TOKEN_FILE):
        mode = (cluster.state_dir / name).stat().st_mode
        assert stat.S_IMODE(mode) == 0o600, oct(mode)
    admin = (cluster.state_dir / TOKEN_FILE).read_text().strip()
    read = (cluster.state_dir / READ_TOKEN_FILE).read_text().strip()
    assert admin != read and len(admin) >= 32
    before = cluster.client.request("GET", "/apps/sample-agent/history")

    def ask(method: str, path: str, token: str | None, **kw: object) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.request(method, api + path, headers=headers, timeout=10, **kw)  # type: ignore[arg-type]

    deploy = {"json": {"version": "9.9.9"}}
    for token in (None, "x" * 43, admin[:-1], read + "x", "Basic " + admin):
        assert ask("GET", "/apps", token).status_code == 401
        answer = ask("POST", "/apps/sample-agent/deploy", token, **deploy)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert "Authorization: Bearer" in answer.json()["error"]
        assert ask("POST", "/apps/sample-agent/abort", token).status_code == 401
        assert ask("POST", "/shutdown", token).status_code == 401
    # the read token reads, and changes nothing
    assert ask("GET", "/apps/sample-agent", read).json()["stable"] == 1
    assert ask("GET", "/openapi.json", read).json()["openapi"].startswith("3.")
    for method, path in (
        ("POST", "/apps/sample-agent/deploy"),
        ("PUT", "/apps"),
        ("POST", "/apps/sample-agent/undo"),
        ("POST", "/shutdown"),
    ):
        answer = ask(method, path, read, json={"version": "9.9.9", "spec": {}})
        assert answer.status_code == 403, (method, path, answer.text)
    assert cluster.client.request("GET", "/apps/sample-agent/history") == before
    # the admin token changes things
    answer = ask("POST", "/apps/sample-agent/deploy", admin, **deploy)
    assert answer.status_code == 200 and answer.json()["revision"] == 2
    cluster.wait_stable(2)


def test_no_app_listens_on_the_api_port(listening: tuple[Cluster, str], tmp_path: Path) -> None:
    cluster, api = listening
    port = httpx.URL(api).port
    assert port is not None
    spec_file = write_spec(tmp_path / "other.yaml", port, replicas=1)
    spec = yaml.safe_load(spec_file.read_text())
    spec["metadata"]["name"] = "other"
    spec_file.write_text(yaml.safe_dump(spec))
    refused = cluster.cli("apply", "-f", str(spec_file), check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert f"spec.listen 127.0.0.1:{port} of app 'other' is the controller's --api-listen port" in (
        refused.stderr
    )
    assert "other" not in cluster.client.request("GET", "/apps")
    # an A2A check pointed at that port says what answered (the API's own error), no crash
    suite = asyncio.run(SmokeTests(f"http://127.0.0.1:{port}").run_all([PING]))
    assert suite.test_results[0].status is TestStatus.FAILED
    assert 'expected a result, got an error that is not JSON-RPC: "this listener needs' in (
        suite.test_results[0].message
    )


def test_the_api_listens_on_loopback_only(tmp_path: Path) -> None:
    for address in (f"0.0.0.0:{free_port()}", "192.0.2.1:80", "[::]:8470"):
        done = rollwise("up", "--detach", "--api-listen", address, state_dir=tmp_path, check=False)
        assert done.returncode == 2, done
        assert "is not a loopback address" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "admin.sock").exists()
