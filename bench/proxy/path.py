"""The Python cost of one request through the proxy, without sockets or a load generator.

    python bench/proxy/path.py [--case small|post|a2a|a2a-aware] [--requests 200000] [--profile]

The proxy's request and response protocols are fed a recorded request and a recorded nginx
answer through transports that only count bytes, so what is timed is the Python (and
httptools) work per request: parsing, routing, framing, statistics. ``bench/proxy/run.py``
measures the whole; this says how much of it is ours to cut (docs/performance.md). The A2A
cases send ``SendMessage`` and answer a task with new ids each time, to an app without
(``a2a``) and with (``a2a-aware``) the table's ``a2a``: the second reads the call and the
answer and learns the conversation into a map in a temporary directory. It prints
one JSON line: microseconds per request for the client side (request read, routed, sent),
the upstream side (answer read, forwarded, counted) and both, the best of five runs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.proxy.answers import SEND_MESSAGE, TASK_ANSWER

from rollwise.routing.proxy.forward import ClientConnection, UpstreamConnection
from rollwise.routing.proxy.server import ProxyServer

ANSWER = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 30 Nov 2026 19:00:00 GMT\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n"
    b"Connection: keep-alive\r\n\r\n%s"
)
CASES = {
    "small": (
        b"GET /small HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
        ANSWER % (13, b"hello, world\n"),
    ),
    "post": (
        b"POST /post HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 16384\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n" + b"x" * 16384,
        ANSWER % (3, b"ok\n"),
    ),
}
SEND = (
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n"
    b"A2A-Version: 1.0\r\nContent-Length: %d\r\n\r\n%s" % (len(SEND_MESSAGE), SEND_MESSAGE.encode())
)
A2A_TABLE = {
    "failureOutcomes": ["-32603", "-32006", "server-error", "failed", "rejected"],
    "affinity": {"maxConversations": 100_000, "ttl": 3600, "idle": 30.0},
}


def task_answers(count: int) -> list[bytes]:
    """``count`` answers of a2a-sdk's shape, each about a task and context of its own."""
    out = []
    for n in range(count):
        body = (TASK_ANSWER % {"id": f"t{n:035d}", "context": f"c{n:035d}"}).encode()
        out.append(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )
    return out


class CountingTransport(asyncio.Transport):
    """A transport that takes every write and counts its bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.written += len(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True


async def measure(case: str, requests: int, profile: bool) -> dict[str, Any]:
    scratch = tempfile.TemporaryDirectory(prefix="rollwise-path-")
    proxy = ProxyServer(asyncio.get_running_loop(), conversations=Path(scratch.name))
    replica = {"address": "127.0.0.1:9"}
    revision = {"name": "1", "version": "v1", "labels": ["stable"], "weight": 100}
    app: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "revisions": [{**revision, "replicas": [replica]}],
    }
    if case == "a2a-aware":
        app["a2a"] = A2A_TABLE
    elif case == "a2a-read":  # outcomes read and counted, no conversation map
        app["a2a"] = {"failureOutcomes": A2A_TABLE["failureOutcomes"]}
    await proxy.apply({"generation": 1, "apps": {"bench": app}})
    rep = proxy.table.apps["bench"].revisions[0].replicas[0]
    upstream = UpstreamConnection(proxy, rep)
    upstream.connection_made(CountingTransport())
    rep.idle.append(upstream)
    client = ClientConnection(proxy, "bench")
    client.connection_made(CountingTransport())
    if case.startswith("a2a"):
        request, answers = SEND, task_answers(requests)
    else:
        request, answer = CASES[case]
        answers = [answer] * requests
    clock = time.perf_counter
    best = (float("inf"), 0.0, 0.0)
    for _ in range(5):
        client_s = upstream_s = 0.0
        for answer in answers:
            t0 = clock()
            client.data_received(request)
            t1 = clock()
            upstream.data_received(answer)
            client_s += t1 - t0
            upstream_s += clock() - t1
        if client_s + upstream_s < best[0]:
            best = (client_s + upstream_s, client_s, upstream_s)
    served = rep.served
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for answer in itertools.islice(answers, requests // 4):
            client.data_received(request)
            upstream.data_received(answer)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    await proxy.close(0)
    scratch.cleanup()
    return {
        "case": case,
        "requests": requests,
        "served": served,
        "us_per_request": round(best[0] / requests * 1e6, 2),
        "client_us": round(best[1] / requests * 1e6, 2),
        "upstream_us": round(best[2] / requests * 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--case", choices=[*sorted(CASES), "a2a", "a2a-read", "a2a-aware"], default="small"
    )
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--profile", action="store_true", help="also print a cProfile table")
    args = parser.parse_args()
    print(json.dumps(uvloop.run(measure(args.case, args.requests, args.profile))))


if __name__ == "__main__":
    main()
