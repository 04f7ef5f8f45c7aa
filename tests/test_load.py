"""``rollwise load``'s own accounting: every request sent is counted once, as an answer or as
the reason it has none."""

from __future__ import annotations

import asyncio

from rollwise.load import LoadConfig, run_load


async def _trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A server whose answer never ends: a byte now and then keeps every read timeout away."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
    try:
        while True:
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.1)
    except (ConnectionError, asyncio.CancelledError):
        writer.close()


def test_requests_still_running_when_the_load_ends_are_counted_unanswered() -> None:
    async def main() -> None:
        server = await asyncio.start_server(_trickle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        config = LoadConfig(url=f"http://127.0.0.1:{port}/", rate=10, duration=0.3, timeout=0.5)
        async with server:
            report = await run_load(config)
        assert report.sent == 3
        assert report.ok == 0
        assert report.errors == {"unanswered": 3}

    asyncio.run(main())
