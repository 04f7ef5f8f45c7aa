"""Toolkit benchmark: what ``monitor_operation`` adds to a call, and the other decorators.

    make bench-toolkit [ARGS="--calls 200000"]

Times a no-op function bare and under each decorator (no span exporter configured: the
OpenTelemetry API's no-op tracer), best of 5 rounds of ``--calls`` calls, and prints JSON;
writes ``bench/results/toolkit.json`` and ``bench/results/toolkit.md``. Goal: monitor_operation
adds ≤ 10 µs a call.
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from pathlib import Path

from rollwise.toolkit import handle_errors, monitor_operation, optimize_operation

RESULTS = Path(__file__).resolve().parents[1] / "results"


def noop() -> None:
    return None


def per_call_us(func: object, calls: int) -> float:
    timer = timeit.Timer(func)  # type: ignore[arg-type]
    return min(timer.repeat(repeat=5, number=calls)) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--no-write", action="store_true", help="Print only (the test smoke).")
    args = parser.parse_args()
    bare = per_call_us(noop, args.calls)
    monitored = per_call_us(monitor_operation("bench")(noop), args.calls)
    handled = per_call_us(handle_errors(name="bench")(noop), args.calls)
    cached = per_call_us(optimize_operation("bench")(noop), args.calls)
    result = {
        "python": sys.version.split()[0],
        "calls": args.calls,
        "bare_us": round(bare, 3),
        "monitor_operation_us": round(monitored, 3),
        "monitor_overhead_us": round(monitored - bare, 3),
        "handle_errors_overhead_us": round(handled - bare, 3),
        "optimize_operation_hit_us": round(cached, 3),
    }
    table = "\n".join(
        [
            "| decorator | µs per call (no-op function) |",
            "|---|---:|",
            f"| none | {result['bare_us']} |",
            f"| monitor_operation | {result['monitor_operation_us']} |",
            "| handle_errors (no retry, no breaker): added | "
            f"{result['handle_errors_overhead_us']} |",
            f"| optimize_operation, a hit | {result['optimize_operation_hit_us']} |",
            "",
        ]
    )
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "toolkit.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / "toolkit.md").write_text(table)
    print(json.dumps(result, indent=2))
    print(table, file=sys.stderr)


if __name__ == "__main__":
    main()
