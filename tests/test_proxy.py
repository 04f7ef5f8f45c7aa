"""The data plane against real upstream processes, over real sockets on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from rollwise.backends.ports import free_port
from rollwise.client import unix_transport
from rollwise.routing.table import (
    AppTable,
    HeaderRouteEntry,
    ReplicaEntry,
    RevisionEntry,
    Table,
    revision_entry,
)

from .helpers import ROOT, process, wait_for


@dataclass
class Proxy:
    admin: httpx.Client
    port: int
    upstreams: dict[str, int]
    sock: Path
    generation: int = 0

    def app(self, revisions: list[RevisionEntry], **traffic: Any) -> AppTable:
        """The app ``web`` on the proxy's port."""
        return AppTable(f"127.0.0.1:{self.port}", tuple(revisions), **traffic)

    def push(self, revisions: list[RevisionEntry], **traffic: Any) -> httpx.Response:
        self.generation += 1
        table = Table(self.generation, {"web": self.app(revisions, **traffic)})
        return self.admin.put("/routes", json=table.to_json())

    def rev(
        self, name: str, weight: int, *upstreams: str, labels: tuple[str, ...] = ()
    ) -> RevisionEntry:
        addresses = [f"127.0.0.1:{self.upstreams[u]}" for u in upstreams]
        return revision_entry(name, f"v{name}", labels, weight, addresses)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


UPSTREAM_APP = str(ROOT / "tests" / "upstream_app.py")


def start_upstream(port: int, name: str) -> contextlib.AbstractContextManager[Any]:
    return process([sys.executable, UPSTREAM_APP, str(port), name])


@contextlib.contextmanager
def start_proxy(sock: Path, *options: str) -> Iterator[httpx.Client]:
    argv = [sys.executable, "-m", "rollwise.routing.proxy", "--admin-socket", str(sock)]
    with process([*argv, *options]):
        admin = httpx.Client(transport=unix_transport(str(sock)), base_url="http://p")
        wait_for(lambda: admin.get("/healthz").status_code == 200)
        yield admin
        admin.close()


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, int]]:
    ports = {name: free_port() for name in ("a", "b", "c")}
    with contextlib.ExitStack() as stack:
        for name, port in ports.items():
            stack.enter_context(start_upstream(port, name))
        for port in ports.values():

            def up(p: int = port) -> bool:
                return httpx.get(f"http://127.0.0.1:{p}/").status_code == 200

            wait_for(up)
        yield ports


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, upstreams: dict[str, int]) -> Iterator[Proxy]:
    sock = tmp_path_factory.mktemp("proxy") / "admin.sock"
    limits = ("--max-header-bytes", "8192", "--max-body-bytes", "1048576")
    with start_proxy(sock, *limits) as admin:
        yield Proxy(admin, free_port(), upstreams, sock)


def test_weighted_split_override_and_revision_header(proxy: Proxy) -> None:
    assert proxy.push(
        [proxy.rev("1", 80, "a", labels=("stable",)), proxy.rev("2", 20, "b", labels=("canary",))]
    ).json()["generation"]
    seen: Counter[str] = Counter()
    with httpx.Client(base_url=proxy.url) as client:
        for _ in range(500):
            resp = client.get("/")
            assert resp.status_code == 200
            assert resp.headers["x-rollwise-revision"] in ("1", "2")
            assert resp.text == {"1": "a", "2": "b"}[resp.headers["x-rollwise-revision"]]
            seen[resp.headers["x-rollwise-version"]] += 1
        assert 60 <= seen["v2"] <= 150, seen
        for _ in range(20):
            forced = client.get("/", headers={"x-rollwise-revision": "canary"})
            assert forced.text == "b"
        traced = client.get("/")
        assert traced.headers["x-seen-traceparent"].startswith("00-")
        given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        assert (
            client.get("/", headers={"traceparent": given}).headers["x-seen-traceparent"] == given
        )


def test_weight_change_applies_to_next_request(proxy: Proxy) -> None:
    with httpx.Client(base_url=proxy.url) as client:
        proxy.push([proxy.rev("1", 100, "a", labels=("stable",))])
        assert {client.get("/").text for _ in range(20)} == {"a"}
        proxy.push([proxy.rev("1", 0, "a", labels=("stable",)), proxy.rev("2", 100, "b")])
        assert {client.get("/").text for _ in range(20)} == {"b"}
    routes = proxy.admin.get("/routes").json()
    assert routes["generation"] == proxy.generation
    stale = proxy.admin.put("/routes", json={"generation": 1, "apps": {}})
    assert stale.status_code == 409


def test_an_idle_keep_alive_connection_survives_a_table_change(proxy: Proxy) -> None:
    proxy.push([proxy.rev("1", 100, "a", labels=("stable",))])
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as conn:
        conn.sendall(request)
        assert _response(conn) == (200, b"a")
        proxy.push([proxy.rev("1", 0, "a", labels=("stable",)), proxy.rev("2", 100, "b")])
        conn.sendall(request)  # the same connection, idle across the change
        assert _response(conn) == (200, b"b")


def _response(conn: socket.socket) -> tuple[int, bytes]:
    """Read one Content-Length framed response from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            v
            for k, _, v in (ln.partition(b": ") for ln in head.split(b"\r\n"))
            if k.lower() == b"content-length"
        )
    )
    while len(body) < length:
        body += conn.recv(65536)
    return int(head.split(b" ", 2)[1]), body


def test_failure_status_is_configurable(proxy: Proxy) -> None:
    # A revision of its own, so that no other test's requests are in its statistics.
    proxy.push([proxy.rev("f", 100, "a", labels=("stable",))], failure_status=("5xx", "429"))
    since = int(time.time())
    with httpx.Client(base_url=proxy.url) as client:
        for code in (200, 404, 429, 503):
            assert client.get(f"/status/{code}").status_code == code
    seconds = proxy.admin.get("/stats", params={"since": since}).json()["apps"]["web"]["f"]
    buckets = seconds["seconds"].values()
    assert sum(b["requests"] for b in buckets) == 4
    assert sum(b["failures"] for b in buckets) == 2  # 429 and 503; 404 is the client's


def test_header_route_and_sticky_header(proxy: Proxy) -> None:
    proxy.push(
        [proxy.rev("1", 50, "a", labels=("stable",)), proxy.rev("2", 50, "b")],
        header_routes=(HeaderRouteEntry("2", (("X-Beta", "1"),)),),
        sticky_header="X-Session",
    )
    with httpx.Client(base_url=proxy.url) as client:
        assert {client.get("/", headers={"x-beta": "1"}).text for _ in range(20)} == {"b"}
        for session in ("alice", "bob", "carol"):
            answers = {client.get("/", headers={"x-session": session}).text for _ in range(10)}
            assert len(answers) == 1


def test_bodies_stream_both_ways(proxy: Proxy) -> None:
    proxy.push([proxy.rev("1", 100, "a", labels=("stable",))])
    payload = bytes(range(256)) * 64
    with httpx.Client(base_url=proxy.url) as client:
        assert client.post("/echo", content=payload).content == payload

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(payload), 1000):
                yield payload[i : i + 1000]

        assert client.post("/echo", content=chunks()).content == payload
        assert len(client.get("/big").content) == 65536
        assert client.head("/").status_code in (200, 405)
        assert client.get("/").text == "a"


def test_sse_first_event_arrives_while_upstream_still_sends(proxy: Proxy) -> None:
    proxy.push([proxy.rev("1", 100, "a", labels=("stable",))])
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        started = time.monotonic()
        arrivals = []
        with client.stream("GET", "/sse") as resp:
            for line in resp.iter_lines():
                if line.startswith("data:"):
                    arrivals.append(time.monotonic() - started)
        assert len(arrivals) == 3
        assert arrivals[0] < 0.4, arrivals
        assert arrivals[2] - arrivals[0] > 0.8, arrivals


def test_connection_failures_are_retried_on_another_replica(proxy: Proxy) -> None:
    dead = free_port()
    live = proxy.rev("1", 100, "a", labels=("stable",))
    proxy.push([replace(live, replicas=(ReplicaEntry(f"127.0.0.1:{dead}"), *live.replicas))])
    with httpx.Client(base_url=proxy.url) as client:
        assert all(client.get("/").status_code == 200 for _ in range(50))
    replicas = proxy.admin.get("/routes").json()["replicas"]
    assert replicas[f"127.0.0.1:{dead}"]["ejected"] is True


def test_failover_to_stable_when_a_revision_has_no_replica(proxy: Proxy) -> None:
    canary = proxy.rev("2", 100)  # no replica
    proxy.push([proxy.rev("1", 0, "a", labels=("stable",)), canary])
    with httpx.Client(base_url=proxy.url) as client:
        assert client.get("/").text == "a"


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"0\r\n\r\n",
            400,
        ),
        (
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            400,
        ),
        (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n", 400),
        (
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n", 431),
        (
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n" + b"a" * 1100000,
            413,
        ),
    ],
    ids=[
        "cl+te",
        "two-cl",
        "bad-chunk",
        "te-list",
        "no-host",
        "two-hosts",
        "tls-bytes",
        "header-too-big",
        "body-too-big",
    ],
)
def test_malformed_and_smuggling_requests(proxy: Proxy, request_bytes: bytes, status: int) -> None:
    proxy.push([proxy.rev("1", 100, "a", labels=("stable",))])
    answer = _raw(proxy.port, request_bytes)
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:200]
    with httpx.Client(base_url=proxy.url) as client:
        assert client.get("/").text == "a"


def test_metrics_and_stats(proxy: Proxy, tmp_path: Path) -> None:
    proxy.push([proxy.rev("1", 100, "a", labels=("stable",))])
    with httpx.Client(base_url=proxy.url) as client:
        for _ in range(10):
            client.get("/")
        client.get("/status/503")
    stats = proxy.admin.get("/stats", params={"since": int(time.time()) - 5}).json()
    rev = stats["apps"]["web"]["1"]
    assert sum(s["requests"] for s in rev["seconds"].values()) >= 11
    assert sum(s["failures"] for s in rev["seconds"].values()) >= 1
    text = proxy.admin.get("/metrics").text
    assert 'rollwise_proxy_requests_total{app="web",code="503"' in text
    assert "rollwise_proxy_generation" in text


def test_a_revision_that_left_the_table_keeps_its_seconds(proxy: Proxy) -> None:
    """An aborted canary stops within a second: what it served must still be readable (by
    an analysis, rollwise get, the next Prometheus scrape) for the seconds the proxy keeps."""
    proxy.push([proxy.rev("1", 50, "a", labels=("stable",)), proxy.rev("gone", 50, "b")])
    with httpx.Client(base_url=proxy.url) as client:
        for _ in range(20):
            client.get("/status/503", headers={"x-rollwise-revision": "gone"})
    proxy.push([proxy.rev("1", 100, "a", labels=("stable",))])
    stats = proxy.admin.get("/stats", params={"since": int(time.time()) - 30}).json()
    gone = stats["apps"]["web"]["gone"]
    assert gone["departed"] is True
    assert sum(s["failures"] for s in gone["seconds"].values()) == 20
    proxy.push([proxy.rev("1", 50, "a", labels=("stable",)), proxy.rev("gone", 50, "b")])
    stats = proxy.admin.get("/stats", params={"since": int(time.time()) - 30}).json()
    assert "departed" not in stats["apps"]["web"]["gone"]  # back in the table


def test_hop_by_hop_and_connection_listed_headers_are_dropped(proxy: Proxy) -> None:
    proxy.push([proxy.rev("1", 100, "a", labels=("stable",))])
    with httpx.Client(base_url=proxy.url) as client:
        seen = client.get(
            "/headers",
            headers={
                "connection": "keep-alive, x-secret",
                "x-secret": "1",
                "x-kept": "2",
                "x-forwarded-for": "203.0.113.9",
                "proxy-authorization": "Basic eA==",
            },
        ).json()
    assert "x-secret" not in seen
    assert "proxy-authorization" not in seen
    assert seen["x-kept"] == "2"
    assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"


def test_a_taken_port_does_not_block_other_apps(proxy: Proxy) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    other = AppTable(f"127.0.0.1:{taken}", (proxy.rev("1", 100, "b", labels=("stable",)),))
    web = proxy.app([proxy.rev("1", 100, "a")])
    proxy.generation += 1
    answer = proxy.admin.put(
        "/routes", json=Table(proxy.generation, {"web": web, "other": other}).to_json()
    )
    assert answer.status_code == 200
    error = answer.json()["listen_errors"]["other"]
    assert f"cannot listen on 127.0.0.1:{taken} for app other" in error
    assert "change spec.listen" in error
    assert httpx.get(proxy.url + "/").text == "a"
    blocker.close()
    proxy.generation += 1
    answer = proxy.admin.put(
        "/routes", json=Table(proxy.generation, {"web": web, "other": other}).to_json()
    )
    assert answer.json()["listen_errors"] == {}
    assert httpx.get(f"http://127.0.0.1:{taken}/").text == "b"


def patch(proxy: Proxy, apps: dict[str, AppTable | None]) -> httpx.Response:
    """Change only these apps (``None``: remove one)."""
    proxy.generation += 1
    changes = {name: app.to_json() if app else None for name, app in apps.items()}
    return proxy.admin.patch("/routes", json={"generation": proxy.generation, "apps": changes})


def test_a_partial_table_changes_only_the_apps_it_names(proxy: Proxy) -> None:
    other_port = free_port()
    other = AppTable(f"127.0.0.1:{other_port}", (proxy.rev("1", 100, "b"),))
    proxy.push([proxy.rev("1", 100, "a")])
    assert patch(proxy, {"other": other}).json()["generation"] == proxy.generation
    with httpx.Client() as web:  # a kept-alive connection to the app left alone
        assert web.get(proxy.url + "/").text == "a"
        assert httpx.get(f"http://127.0.0.1:{other_port}/").text == "b"
        moved = replace(other, revisions=(proxy.rev("1", 0, "b"), proxy.rev("2", 100, "a")))
        patch(proxy, {"other": moved})
        assert httpx.get(f"http://127.0.0.1:{other_port}/").text == "a"
        assert web.get(proxy.url + "/").text == "a", "web's routes and connections stay"
    table = proxy.admin.get("/routes").json()["table"]
    assert set(table["apps"]) == {"web", "other"} and table["generation"] == proxy.generation
    one = proxy.admin.get("/routes", params={"app": "other"}).json()
    assert set(one["table"]["apps"]) == {"other"}
    assert set(one["replicas"]) == {f"127.0.0.1:{proxy.upstreams[u]}" for u in ("a", "b")}
    assert patch(proxy, {"other": None}).status_code == 200
    assert set(proxy.admin.get("/routes").json()["table"]["apps"]) == {"web"}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{other_port}/")
    stale = proxy.admin.patch("/routes", json={"generation": 1, "apps": {}})
    assert stale.status_code == 409 and "older than the applied" in stale.json()["error"]


def test_cookie_override_sticky_cookie_and_round_robin(proxy: Proxy) -> None:
    proxy.push(
        [proxy.rev("1", 50, "a", "c", labels=("stable",)), proxy.rev("2", 50, "b")],
        override_cookie="rw-rev",
        sticky_cookie="session",
        load_balancer="roundRobin",
    )
    with httpx.Client(base_url=proxy.url) as client:
        forced = {client.get("/", headers={"cookie": "x=1; rw-rev=2"}).text for _ in range(20)}
        assert forced == {"b"}
        # The override header wins over the cookie.
        both = client.get("/", headers={"cookie": "rw-rev=2", "x-rollwise-revision": "stable"})
        assert both.text in ("a", "c")
        for session in ("alice", "bob", "carol", "dave"):
            cookie = {"cookie": f"theme=dark; session={session}"}
            revisions = {
                client.get("/", headers=cookie).headers["x-rollwise-revision"] for _ in range(10)
            }
            assert len(revisions) == 1
        # Round-robin alternates the stable revision's replicas even with nothing in flight.
        stable = [client.get("/", headers={"x-rollwise-revision": "1"}).text for _ in range(10)]
        assert Counter(stable) == {"a": 5, "c": 5}


@dataclass
class Tuned:
    """A proxy with two workers, short timeouts and a request record."""

    proxy: Proxy
    sock: Path
    record: Path


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory, upstreams: dict[str, int]) -> Iterator[Tuned]:
    tmp = tmp_path_factory.mktemp("tuned")
    sock, record = tmp / "admin.sock", tmp / "requests.jsonl"
    options = ["--workers", "2", "--record", str(record), "--grace", "1"]
    options += ["--header-timeout", "1", "--idle-timeout", "1.5", "--upstream-timeout", "1"]
    with start_proxy(sock, *options) as admin:
        wait_for(lambda: len(admin.get("/healthz").json()["workers"]) == 2)
        yield Tuned(Proxy(admin, free_port(), upstreams, sock), sock, record)


def test_slowloris_gets_408_and_idle_connections_close(tuned: Tuned) -> None:
    proxy = tuned.proxy
    proxy.push([proxy.rev("1", 100, "a", labels=("stable",))])
    wait_for(lambda: httpx.get(proxy.url + "/").text == "a")
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as slow:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Drip: ")
        started = time.monotonic()
        answer = slow.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert 0.9 <= time.monotonic() - started < 3.0
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as idle:
        idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _response(idle) == (200, b"a")  # head and body may come in separate reads
        started = time.monotonic()
        assert idle.recv(65536) == b""  # closed by the proxy once idle for 1.5 s
        assert 1.2 <= time.monotonic() - started < 4.0


def test_a_replica_that_does_not_answer_gets_504(tuned: Tuned) -> None:
    proxy = tuned.proxy
    proxy.push([proxy.rev("1", 100, "a", labels=("stable",))])
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        started = time.monotonic()
        assert client.get("/slow/3").status_code == 504
        assert time.monotonic() - started < 2.5
        assert client.get("/slow/0.1").text == "a"


def test_record_writes_one_json_line_per_request(tuned: Tuned) -> None:
    proxy = tuned.proxy
    proxy.push([proxy.rev("1", 90, "a", labels=("stable",)), proxy.rev("2", 10, "b")])
    for _ in range(40):  # new connections, so that both workers write lines
        assert httpx.get(proxy.url + "/status/201").status_code == 201

    def lines() -> list[dict[str, Any]] | None:
        # Every line parses: workers append whole buffers, never a cut line.
        rows = [json.loads(line) for line in tuned.record.read_text().splitlines()]
        created = [row for row in rows if row["status"] == 201]
        return created if len(created) >= 40 else None

    rows = wait_for(lines, timeout=5)
    assert len(rows) == 40
    fields = {"ts", "app", "revision", "version", "status", "latency_ms", "trace_id", "span_id"}
    for row in rows:
        assert set(row) == fields
        assert row["app"] == "web" and row["revision"] in ("1", "2") and row["latency_ms"] > 0
        assert abs(row["ts"] - time.time()) < 30
        assert len(row["trace_id"]) == 32 and len(row["span_id"]) == 16  # the proxy's own
    assert len({row["trace_id"] for row in rows}) == 40


def test_workers_share_the_port_and_report_as_one(tuned: Tuned) -> None:
    proxy = tuned.proxy
    answer = proxy.push([proxy.rev("1", 100, "a", labels=("stable",))]).json()
    assert answer["generation"] == proxy.generation
    assert proxy.admin.get("/routes").json()["generation"] == proxy.generation
    before = _requests_total(proxy.admin.get("/metrics").text)
    for _ in range(60):
        assert httpx.get(proxy.url + "/").text == "a"
    per_worker = []
    for path in (tuned.sock, Path(f"{tuned.sock}.w1")):
        with httpx.Client(transport=unix_transport(str(path))) as worker:
            counters = worker.get("http://p/counters").json()
            per_worker.append(counters["apps"]["web"]["1"]["codes"].get("200", 0))
    assert all(count > 0 for count in per_worker), per_worker  # the kernel spread connections
    assert _requests_total(proxy.admin.get("/metrics").text) - before == 60
    stats = proxy.admin.get("/stats", params={"since": int(time.time()) - 30}).json()
    assert stats["apps"]["web"]["1"]["requests_total"] >= 60


def test_workers_take_partial_tables(tuned: Tuned) -> None:
    proxy = tuned.proxy
    proxy.push([proxy.rev("1", 100, "a", labels=("stable",))])
    web = proxy.app([proxy.rev("2", 100, "b")])
    assert patch(proxy, {"web": web}).json()["generation"] == proxy.generation
    assert {httpx.get(proxy.url + "/").text for _ in range(40)} == {"b"}  # every worker
    for path in (tuned.sock, Path(f"{tuned.sock}.w1")):
        with httpx.Client(transport=unix_transport(str(path))) as worker:
            assert worker.get("http://p/routes").json()["generation"] == proxy.generation


def test_a_dead_worker_is_replaced_and_given_the_table(tuned: Tuned) -> None:
    proxy = tuned.proxy
    proxy.push([proxy.rev("1", 100, "b", labels=("stable",))])
    pids = proxy.admin.get("/healthz").json()["workers"]
    os.kill(pids[1], signal.SIGKILL)

    def replaced() -> list[int] | None:
        now = proxy.admin.get("/healthz").json()["workers"]
        return now if len(now) == 2 and now[1] != pids[1] else None

    wait_for(replaced)
    with httpx.Client(transport=unix_transport(f"{tuned.sock}.w1")) as worker:
        wait_for(lambda: worker.get("http://p/routes").json()["generation"] == proxy.generation)
    assert {httpx.get(proxy.url + "/").text for _ in range(30)} == {"b"}


def test_workers_leave_when_the_primary_dies(tmp_path: Path, upstreams: dict[str, int]) -> None:
    sock = tmp_path / "admin.sock"
    with start_proxy(sock, "--workers", "3") as admin:
        pids = wait_for(
            lambda: (w := admin.get("/healthz").json()["workers"]) and len(w) == 3 and w
        )
        os.kill(pids[0], signal.SIGKILL)
        wait_for(lambda: not any(psutil.pid_exists(p) for p in pids[1:]), timeout=10)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_admin_socket_answers_only_its_own_user() -> None:
    # A directory other users may traverse (pytest's own are 0700), and a socket opened up
    # to them: the file mode no longer protects it, so the peer-credential check must.
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        os.chmod(tmp, 0o711)
        path = Path(tmp) / "admin.sock"
        with start_proxy(path) as admin:
            assert os.stat(path).st_mode & 0o777 == 0o600
            os.chmod(path, 0o666)
            probe = (
                "import os, socket, sys; os.setgid(65534); os.setuid(65534); "
                "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
                "print(s.recv(200).decode().splitlines()[0])"  # refused before any request
            )
            out = subprocess.run(
                [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=10
            )
            assert out.stdout.startswith("HTTP/1.1 403"), out
            assert admin.get("/routes").status_code == 200


def _requests_total(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("rollwise_proxy_requests_total{")
    )


class BadReplica:
    """A raw TCP peer that misbehaves the same way on every connection: ``reset`` (RST as
    soon as the request arrives), ``garbage`` (bytes that are not HTTP), ``truncated`` (a
    response shorter than its Content-Length, then close)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                    if self.mode == "reset":
                        conn.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                    elif self.mode == "garbage":
                        conn.sendall(b"\x00\xffNOT HTTP AT ALL\r\n\r\n\x16\x03\x01")
                    else:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")

    def close(self) -> None:
        self.done.set()
        self.thread.join(5)
        self.server.close()


@pytest.mark.parametrize("mode", ["reset", "garbage", "truncated"])
def test_a_replica_that_resets_or_answers_garbage(proxy: Proxy, mode: str) -> None:
    bad = BadReplica(mode)
    try:
        revision = revision_entry(
            f"bad-{mode}", "v-bad", ["stable"], 100, [f"127.0.0.1:{bad.port}"]
        )
        proxy.push([revision])
        with httpx.Client(base_url=proxy.url, timeout=10) as client:
            for _ in range(3):
                started = time.monotonic()
                try:
                    answer = client.get("/")
                except httpx.RemoteProtocolError:
                    # the head went out already: the client is told by a closed connection
                    assert mode == "truncated"
                else:
                    assert answer.status_code == 502, (answer.status_code, answer.text)
                assert time.monotonic() - started < 2.0
        stats = proxy.admin.get("/stats").json()["apps"]["web"][f"bad-{mode}"]
        assert sum(s["failures"] for s in stats["seconds"].values()) == 3
    finally:
        bad.close()
    proxy.push([proxy.rev("1", 100, "a", labels=("stable",))])
    assert httpx.get(proxy.url + "/").text == "a"  # the proxy itself is unharmed
