"""Raw bytes at the proxy's public listener: it never crashes, answers what it cannot parse
with a 4xx (or closes), never with a 5xx other than 501 for methods it does not implement,
and keeps serving good requests."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import psutil
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from rollwise.backends.ports import free_port

from ..helpers import wait_for
from ..test_proxy import Proxy, start_proxy, start_upstream
from .fuzz import FUZZ

GOOD = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello"


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proxy, int]]:
    upstream = free_port()
    sock = tmp_path_factory.mktemp("fuzz") / "admin.sock"
    limits = ("--max-header-bytes", "8192", "--max-body-bytes", "65536", "--header-timeout", "1")
    with start_upstream(upstream, "a"), start_proxy(sock, *limits) as admin:
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{upstream}/").status_code == 200)
        proxy = Proxy(admin, free_port(), {"a": upstream}, sock)
        proxy.push([proxy.rev("1", 100, "a", labels=("stable",))])
        pid = next(
            p.pid
            for p in psutil.process_iter(["cmdline"])
            if str(sock) in " ".join(p.info["cmdline"] or [])
        )
        yield proxy, pid


def send(port: int, data: bytes, half_close: bool = True) -> bytes:
    """Send (then half-close: the proxy sees the end, and, like nginx, takes it as the client
    giving up), and read what comes: within 2 s, then until 0.2 s pass quietly."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        try:
            conn.sendall(data)
            if half_close:
                conn.shutdown(socket.SHUT_WR)
        except OSError:  # the proxy may close early on bytes it refuses: that is fine
            pass
        chunks = []
        try:
            while chunk := conn.recv(65536):
                chunks.append(chunk)
                conn.settimeout(0.2)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def status_of(answer: bytes, data: bytes) -> int:
    """The final status (after any interim 1xx), checked to be one the proxy may give."""
    assert answer.startswith(b"HTTP/1.1 "), (data[:120], answer[:120])
    while answer.startswith(b"HTTP/1.1 1") and b"\r\n\r\n" in answer:
        answer = answer.split(b"\r\n\r\n", 1)[1]
    if not answer:
        return 100
    assert answer.startswith(b"HTTP/1.1 "), (data[:120], answer[:120])
    status = int(answer[9:12])
    # a request that parsed reaches the healthy upstream: 2xx-4xx; never a 5xx, except 501
    # for what HTTP says it means (CONNECT, protocol upgrades: not implemented)
    assert 200 <= status < 500 or status == 501, (status, data[:200], answer[:200])
    return status


def mutate(base: bytes, at: int, junk: bytes, cut: int) -> bytes:
    at %= len(base) + 1
    return base[:at] + junk + base[at + cut :]


requests = st.one_of(
    st.binary(max_size=400),
    st.builds(
        mutate, st.just(GOOD), st.integers(0, 200), st.binary(max_size=12), st.integers(0, 6)
    ),
    st.builds(
        lambda method, target, version, headers, body: (
            method + b" " + target + b" " + version + b"\r\n" + b"".join(headers) + b"\r\n" + body
        ),
        st.sampled_from([b"GET", b"POST", b"PUT", b"G\x00T", b"", b"CONNECT", b"PRI"]),
        st.sampled_from([b"/", b"*", b"http://x/", b"/%00", b"/" + b"a" * 9000, b"", b"/\r"]),
        st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 x", b"", b"HTTP/9"]),
        st.lists(
            st.sampled_from(
                [
                    b"Host: x\r\n",
                    b"Host: y\r\n",
                    b"Content-Length: 3\r\n",
                    b"Content-Length: -1\r\n",
                    b"Content-Length: 99999999999999999999\r\n",
                    b"Transfer-Encoding: chunked\r\n",
                    b"Transfer-Encoding: identity\r\n",
                    b"Expect: 100-continue\r\n",
                    b"Connection: close\r\n",
                    b"X: \x00\r\n",
                    b" folded\r\n",
                    b"NoColon\r\n",
                    b"X-Big: " + b"b" * 9000 + b"\r\n",
                ]
            ),
            max_size=5,
        ),
        st.sampled_from([b"", b"abc", b"0\r\n\r\n", b"zz\r\nabc\r\n", b"3\r\nabc\r\n0\r\n\r\n"]),
    ),
)


@FUZZ
@given(requests)
def test_any_bytes_get_a_4xx_or_a_close_never_a_crash(
    fuzzed: tuple[Proxy, int], data: bytes
) -> None:
    proxy, pid = fuzzed
    answer = send(proxy.port, data)
    assert psutil.pid_exists(pid), f"the proxy died on {data[:120]!r}"
    if answer:
        status_of(answer, data)


@FUZZ
@given(st.binary(min_size=1, max_size=300))
def test_garbage_heads_are_answered_with_a_4xx(fuzzed: tuple[Proxy, int], junk: bytes) -> None:
    """A whole head (it ends with an empty line) that is not HTTP gets its answer at once."""
    proxy, pid = fuzzed
    # empty lines before a request are ignored (RFC 9112 2.2): they are not a request yet
    assume(junk.lstrip(b"\r\n"))
    data = junk.replace(b"\r\n\r\n", b"") + b"\r\n\r\n"
    answer = send(proxy.port, data, half_close=False)
    assert psutil.pid_exists(pid), f"the proxy died on {data[:120]!r}"
    assert answer, f"no answer to {data[:120]!r}"
    status_of(answer, data)


def test_the_proxy_still_serves_after_the_fuzzing(fuzzed: tuple[Proxy, int]) -> None:
    proxy, _ = fuzzed
    assert send(proxy.port, GOOD, half_close=False).startswith(b"HTTP/1.1 200 ")
    with httpx.Client(base_url=proxy.url) as client:
        assert client.get("/").text == "a"
        # the admin and metrics endpoints live only on the unix socket: here they are the
        # upstream's paths like any other
        for path in ("/metrics", "/routes", "/healthz", "/stats"):
            assert "rollwise_proxy" not in client.get(path).text
            assert "generation" not in client.get(path).text
