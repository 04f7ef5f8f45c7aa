"""The benchmark's upstream when nginx is not installed: ``python upstream.py PORT``.

A minimal uvloop + httptools server with the same paths as the nginx upstream: ``/small``
(13 bytes), ``/big`` (64 KiB) and ``/post`` (reads the body, answers 3 bytes). It keeps
connections alive and does nothing else, so that it costs the proxy under test as little
CPU as possible on a shared machine.
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast

import httptools
import uvloop

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
            self.transport.write(RESPONSES.get(self.url.split(b"?")[0], NOT_FOUND))
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
