"""The benchmark's upstream when nginx is not installed: ``python upstream.py PORT``.

A minimal uvloop + httptools server with the same paths as the nginx upstream: ``/small``
(13 bytes), ``/big`` (64 KiB), ``/post`` (reads the body, answers 3 bytes) and ``/`` (an A2A
task answer with new ids each time). It keeps
connections alive and does nothing else, so that it costs the proxy under test as little
CPU as possible on a shared machine.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path
from typing import cast

import httptools
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.proxy.answers import TASK_ANSWER

SMALL = b"hello, world\n"
BIG = b"x" * 65536
OK = b"ok\n"


def _response(body: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )


RESPONSES = {b"/small": _response(SMALL), b"/big": _response(BIG), b"/post": _response(OK)}
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
_numbers = itertools.count()


def _task_answer() -> bytes:
    n = next(_numbers)
    body = (TASK_ANSWER % {"id": f"t{n:031d}", "context": f"c{n:031d}"}).encode()
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


class Upstream(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        if self.transport is not None:
            path = self.url.split(b"?")[0]
            answer = _task_answer() if path == b"/" else RESPONSES.get(path, NOT_FOUND)
            self.transport.write(answer)
            if not self.parser.should_keep_alive():
                self.transport.close()
        self.url = b""


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(
        Upstream, "127.0.0.1", port, backlog=1024
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
