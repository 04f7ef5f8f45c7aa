"""Run the proxy: ``python -m rollwise.routing.proxy --admin-socket PATH [--workers N]``.

It starts with no routes (503 on every listener it has none for) and serves whatever table
the controller pushes last, with or without a controller alive.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import uvloop

from rollwise.routing.handover import handover_path, serve_listeners, unlink_if_ours
from rollwise.routing.proxy.admin import serve_admin
from rollwise.routing.proxy.limits import Limits
from rollwise.routing.proxy.record import Recorder
from rollwise.routing.proxy.server import ProxyServer
from rollwise.routing.proxy.workers import WorkerPool


async def _main(args: argparse.Namespace, worker_argv: list[str]) -> None:
    loop = asyncio.get_running_loop()
    limits = Limits(
        max_header_bytes=args.max_header_bytes,
        max_body_bytes=args.max_body_bytes,
        header_timeout_s=args.header_timeout,
        idle_timeout_s=args.idle_timeout,
        upstream_timeout_s=args.upstream_timeout,
    )
    record = Recorder(args.record) if args.record else None
    spans = None
    if args.trace_sample > 0 and args.otlp_endpoint:
        from rollwise.routing.proxy.spans import SpanSink

        spans = SpanSink(args.trace_sample, args.otlp_endpoint)
    shared = args.workers > 1 or args.parent_pid is not None
    sources = [Path(args.listeners)] if args.listeners else []
    if args.parent_pid is not None and args.primary_socket:
        sources.append(handover_path(args.primary_socket))
    proxy = ProxyServer(
        loop,
        limits=limits,
        record=record,
        stats=args.stats,
        reuse_port=shared,
        spans=spans,
        sources=tuple(sources),
        conversations=Path(args.conversations),
    )
    pool = WorkerPool(args.workers, args.admin_socket, worker_argv) if args.workers > 1 else None
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # What is alive now lives as long as the process: the collector need not look at it
    # again (a full collection over the imported modules' objects costs the hot path).
    gc.freeze()
    if pool is not None:
        await pool.start(lambda: proxy.table_json)
    admin = await serve_admin(proxy, args.admin_socket, pool)
    admin_inode = os.stat(args.admin_socket).st_ino
    stop_handover = serve_listeners(handover_path(args.admin_socket), proxy.held_listeners)
    role = f"worker of {args.parent_pid}" if args.parent_pid else f"{args.workers} worker(s)"
    print(f"rollwise proxy pid {os.getpid()} {role} admin {args.admin_socket}", flush=True)
    tasks = []
    if record is not None:
        tasks.append(loop.create_task(_flush(record)))
    if args.parent_pid is not None:
        _watch_parent(loop, args.parent_pid, stop)
    await stop.wait()
    admin.close()
    stop_handover()
    closing = [proxy.close(args.grace)]
    if pool is not None:
        closing.append(pool.close(args.grace))
    await asyncio.gather(*closing)
    for task in tasks:
        task.cancel()
    if record is not None:
        record.close()
    if spans is not None:
        spans.close()
    with contextlib.suppress(OSError):
        unlink_if_ours(args.admin_socket, admin_inode)


async def _flush(record: Recorder) -> None:
    while True:
        await asyncio.sleep(1.0)
        record.flush()


def _watch_parent(loop: asyncio.AbstractEventLoop, parent: int, stop: asyncio.Event) -> None:
    """A worker outlives its primary only to drain: it must not hold a port on its own.

    A pidfd becomes readable when the process exits, so the watch costs nothing until then.
    """
    if os.getppid() != parent:
        stop.set()
        return
    fd = os.pidfd_open(parent)

    def gone() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        stop.set()

    loop.add_reader(fd, gone)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="rollwise-proxy", description=__doc__)
    parser.add_argument("--admin-socket", required=True)
    parser.add_argument("--workers", type=int, default=1, help="processes sharing each port")
    parser.add_argument("--record", help="append one JSON line per request to this file")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds to drain on stop")
    parser.add_argument("--max-header-bytes", type=int, default=Limits().max_header_bytes)
    parser.add_argument("--max-body-bytes", type=int, default=Limits().max_body_bytes)
    parser.add_argument(
        "--header-timeout",
        type=float,
        default=Limits().header_timeout_s,
        help="seconds a client has to send a whole request head (slowloris guard)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=Limits().idle_timeout_s,
        help="seconds an idle keep-alive client connection stays open",
    )
    parser.add_argument(
        "--upstream-timeout",
        type=float,
        default=Limits().upstream_timeout_s,
        help="seconds a replica has to start answering (504 after)",
    )
    parser.add_argument(
        "--no-stats",
        dest="stats",
        action="store_false",
        help="keep no per-revision statistics (only to measure what they cost)",
    )
    parser.add_argument(
        "--trace-sample",
        type=float,
        default=0.0,
        help="the share of requests (0..1) sent as server spans to --otlp-endpoint",
    )
    parser.add_argument("--otlp-endpoint", help="OTLP/HTTP base URL for sampled spans")
    parser.add_argument(
        "--listeners",
        help="a unix socket that hands over the listening sockets (the controller keeps them)",
    )
    parser.add_argument(
        "--conversations",
        help="a directory for the A2A conversation maps, shared by the workers and by a proxy "
        "started later (default: a temporary one, removed at exit)",
    )
    parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--primary-socket", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 1 <= args.workers <= 64:
        parser.error("--workers must be between 1 and 64")
    if not 0.0 <= args.trace_sample <= 1.0:
        parser.error("--trace-sample must be between 0 and 1")
    scratch = None
    if args.conversations is None:
        scratch = args.conversations = tempfile.mkdtemp(prefix="rollwise-conversations-")
    try:
        uvloop.run(_main(args, _worker_argv(args)))
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _worker_argv(args: argparse.Namespace) -> list[str]:
    """What the primary starts its other workers with: its own options, the conversation
    directory it settled on, and its admin socket (for the listeners it hands over)."""
    return [
        "--conversations",
        args.conversations,
        "--grace",
        str(args.grace),
        "--max-header-bytes",
        str(args.max_header_bytes),
        "--max-body-bytes",
        str(args.max_body_bytes),
        "--header-timeout",
        str(args.header_timeout),
        "--idle-timeout",
        str(args.idle_timeout),
        "--upstream-timeout",
        str(args.upstream_timeout),
        *(["--record", args.record] if args.record else []),
        *(["--listeners", args.listeners] if args.listeners else []),
        "--primary-socket",
        args.admin_socket,
        *([] if args.stats else ["--no-stats"]),
        *(
            ["--trace-sample", repr(args.trace_sample), "--otlp-endpoint", args.otlp_endpoint]
            if args.trace_sample > 0 and args.otlp_endpoint
            else []
        ),
    ]


if __name__ == "__main__":
    main()
