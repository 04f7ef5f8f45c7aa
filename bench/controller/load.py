"""The controller benchmark's load: ``python load.py CONFIG.json``, stopped by SIGTERM.

Open loop over many listeners at once: each URL of the config is asked ``rate`` times a
second at fixed instants, whatever the earlier answers did. A separate process, so that the
benchmark's own measuring never delays a request, nor the other way round.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from typing import Any

import httpx
import uvloop


async def _url(client: httpx.AsyncClient, url: str, rate: float, offset: float) -> None:
    start = time.monotonic() + offset
    tasks: set[asyncio.Task[Any]] = set()
    i = 0
    try:
        while True:
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            task = asyncio.create_task(client.get(url))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def main(config: dict[str, Any]) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(timeout=5.0, limits=limits, trust_env=False) as client:
        urls = config["urls"]
        jobs = [
            asyncio.create_task(_url(client, u["url"], u["rate"], i / max(1, len(urls))))
            for i, u in enumerate(urls)
        ]
        await stop.wait()
        for job in jobs:
            job.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*jobs, return_exceptions=True)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        uvloop.run(main(json.load(f)))
