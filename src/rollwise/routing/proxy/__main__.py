"""Run the proxy: ``python -m rollwise.routing.proxy --admin-socket PATH [--record FILE]``.

It starts with no routes (503 on every listener it has none for) and serves whatever table
the controller pushes last, with or without a controller alive.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from typing import IO

import uvloop

from rollwise.routing.proxy.admin import serve_admin
from rollwise.routing.proxy.limits import Limits
from rollwise.routing.proxy.server import ProxyServer


async def _main(args: argparse.Namespace, record: IO[str] | None) -> None:
    loop = asyncio.get_running_loop()
    limits = Limits(max_header_bytes=args.max_header_bytes, max_body_bytes=args.max_body_bytes)
    proxy = ProxyServer(loop, limits=limits, record=record)
    admin = await serve_admin(proxy, args.admin_socket)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"rollwise proxy pid {os.getpid()} admin {args.admin_socket}", flush=True)
    flusher = loop.create_task(_flush(record)) if record else None
    await stop.wait()
    admin.close()
    await proxy.close(args.grace)
    if flusher is not None:
        flusher.cancel()
    with contextlib.suppress(OSError):
        os.unlink(args.admin_socket)


async def _flush(record: IO[str]) -> None:
    while True:
        await asyncio.sleep(1.0)
        record.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="rollwise-proxy", description=__doc__)
    parser.add_argument("--admin-socket", required=True)
    parser.add_argument("--record", help="append one JSON line per request to this file")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds to drain on stop")
    parser.add_argument("--max-header-bytes", type=int, default=Limits().max_header_bytes)
    parser.add_argument("--max-body-bytes", type=int, default=Limits().max_body_bytes)
    args = parser.parse_args(argv)
    record = open(args.record, "a", buffering=1 << 16) if args.record else None  # noqa: SIM115
    try:
        uvloop.run(_main(args, record))
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        if record is not None:
            record.close()


if __name__ == "__main__":
    main()
