"""SLO store benchmark: how big 28 days of SLI rows are, and what one evaluation costs.

    make bench-slo [ARGS="--days 28 --slos 2 --resolution 60"]

Writes, through the store's own methods, the rows the controller would have folded for one
app served every second of ``--days`` days, with ``--slos`` SLOs (availability and latency),
a release every 2 days whose canary ran for an hour beside stable (so those minutes hold a
row per revision), into a fresh SQLite store; then measures the file's size (after a WAL
checkpoint), and the time of one evaluation of every window of one SLO (what the keeper
does once a minute: the 28-day window scans every row), of the windows of an hour or less
(what it reads at every fold), and of folding one more minute.

It prints JSON, writes ``bench/results/slo.json`` and ``bench/results/slo.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rollwise.slo import SloReport
from rollwise.spec.slo import DEFAULT_BURN_WINDOWS, Objective
from rollwise.store import SliRow, Store

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results"
NOW = 1_800_000_000


def fill(store: Store, days: int, slos: list[str], resolution: int) -> int:
    """Rows for ``days`` of traffic; how many were written."""
    rows = 0
    start = NOW - days * 86400
    release_every, canary_for = 2 * 86400, 3600
    revision = 1
    batch: list[SliRow] = []
    for t in range(start, NOW, resolution):
        since_release = (t - start) % release_every
        if since_release == 0 and t != start:
            revision += 1
        revisions = [revision]
        if since_release < canary_for and t - start >= release_every:
            revisions = [revision - 1, revision]  # the canary hour: stable and canary rows
        for slo in slos:
            for rev in revisions:
                batch.append(SliRow(slo, t, rev, 5940, 6000))
        if len(batch) >= 5000:
            rows += _write(store, batch)
            batch = []
    return rows + _write(store, batch)


def _write(store: Store, batch: list[SliRow]) -> int:
    with store.transaction():
        store.add_sli("app", batch)
    return len(batch)


def measure(days: int, slos: int, resolution: int) -> dict[str, Any]:
    names = ["availability", "latency", "slo-3", "slo-4"][:slos]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        empty = Store(path)
        empty.close()
        base = os.path.getsize(path)
        store = Store(path)
        started = time.perf_counter()
        rows = fill(store, days, names, resolution)
        fill_s = time.perf_counter() - started
        store._run("PRAGMA wal_checkpoint(TRUNCATE)")
        size = os.path.getsize(path) - base
        objective = Objective(
            name="availability",
            indicator="availability",
            target=0.999,
            window=days * 86400,
            resolution=resolution,
        )
        evals = []
        for _ in range(20):
            t0 = time.perf_counter()
            report = SloReport.evaluate(
                "app",
                objective,
                DEFAULT_BURN_WINDOWS,
                NOW,
                lambda starts: store.sli_sums("app", "availability", starts),
            )
            evals.append(time.perf_counter() - t0)
        short = [NOW - w - resolution + 1 for w in (300, 1800, 3600)]
        ticks = []
        for _ in range(20):  # what a fold reads again: the windows of an hour or less
            t0 = time.perf_counter()
            store.sli_sums("app", "availability", short)
            ticks.append(time.perf_counter() - t0)
        folds = []
        for i in range(20):
            t0 = time.perf_counter()
            with store.transaction():
                store.add_sli("app", [SliRow(n, NOW + i * resolution, 99, 10, 10) for n in names])
                store.prune_sli("app", "availability", NOW - days * 86400)
            folds.append(time.perf_counter() - t0)
        store.close()
    return {
        "days": days,
        "slos": slos,
        "resolution_s": resolution,
        "rows": rows,
        "store_bytes": size,
        "bytes_per_row": round(size / rows, 1),
        "fill_s": round(fill_s, 2),
        "evaluate_ms_median": round(statistics.median(evals) * 1000, 2),
        "fold_ms_median": round(statistics.median(folds) * 1000, 2),
        "short_windows_ms_median": round(statistics.median(ticks) * 1000, 3),
        "sli": report.sli,
        "budget_remaining": report.budget_remaining,
    }


def markdown(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            "| days | SLOs | row width | rows | store size | bytes/row | evaluate one SLO "
            "(every window) | its windows ≤ 1 h | fold a minute (+ prune) |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {result['days']} | {result['slos']} | {result['resolution_s']} s | "
            f"{result['rows']:,} | {result['store_bytes'] / 1e6:.1f} MB | "
            f"{result['bytes_per_row']} | {result['evaluate_ms_median']} ms | "
            f"{result['short_windows_ms_median']} ms | {result['fold_ms_median']} ms |",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--slos", type=int, default=2, choices=[1, 2, 3, 4])
    parser.add_argument("--resolution", type=int, default=60)
    parser.add_argument("--no-write", action="store_true", help="Print only (the test smoke).")
    args = parser.parse_args()
    result = measure(args.days, args.slos, args.resolution)
    report = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "result": result,
    }
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "slo.json").write_text(json.dumps(report, indent=2) + "\n")
        (RESULTS / "slo.md").write_text(markdown(result))
    print(json.dumps(report, indent=2))
    print(markdown(result), file=sys.stderr)


if __name__ == "__main__":
    main()
