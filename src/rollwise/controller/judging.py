"""The analysis runs of one app, fed second by second from the proxy's statistics.

A run lives in memory and is fed only whole seconds it has not seen (the proxy's current second
is still filling; ``SETTLE_S`` later it is complete in every worker). Its verdict is written to
the store whenever it changes and at most every ``SAVE_EVERY_S`` otherwise, so that ``get``,
the API and a restarted controller see it. After a controller restart a run is rebuilt from the
seconds the proxy still holds (15 minutes), which is a fresh, equally valid test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rollwise.analysis import AnalysisRun, ArmSecond, Verdict
from rollwise.controller.dataplane import DataPlane
from rollwise.spec.models import AnalysisSettings, AnalysisStep
from rollwise.store import Store
from rollwise.store.db import AnalysisRow

__all__ = ["AppAnalyses"]

SETTLE_S = 1.25
SAVE_EVERY_S = 2.0


@dataclass
class _Live:
    run: AnalysisRun
    row: AnalysisRow
    identity: tuple[Any, ...]


class AppAnalyses:
    def __init__(
        self,
        app: str,
        apps: tuple[str, ...],
        store: Store,
        dataplane: DataPlane,
        clock: Callable[[], float],
    ) -> None:
        self.app = app
        self.apps = apps  # proxy apps whose requests count for the canary (main, preview)
        self.store = store
        self.dataplane = dataplane
        self.clock = clock
        self.live: dict[str, _Live] = {}

    async def judge(
        self,
        key: str,
        kind: str,
        settings: AnalysisSettings,
        step: AnalysisStep,
        canary: int,
        baseline: int | None,
        since: float,
        *,
        judges: bool = True,
    ) -> Verdict:
        """Feed the run named ``key`` what is new since its last call and return its verdict."""
        now = self.clock()
        identity = (canary, baseline, since, settings, step, judges)
        live = self.live.get(key)
        if live is None or live.identity != identity:
            row = AnalysisRow(
                self.app, key, canary, baseline, kind, since, now, "wait", {"outcome": "wait"}
            )
            live = _Live(AnalysisRun(settings, step, judges=judges), row, identity)
            self.live[key] = live
        run = live.run
        first = int(since) + 1  # the second holding ``since`` is partly before it
        start = first if run.last_second is None else max(first, run.last_second + 1)
        complete = int(now - SETTLE_S)  # seconds < this one are whole
        if start < complete:
            stats = await self.dataplane.stats(start)
            for second in range(start, complete):
                run.feed(
                    second,
                    _arm(stats, self.apps, canary, second),
                    _arm(stats, (self.app,), baseline, second),
                )
        verdict = run.verdict(now - since)
        if verdict.outcome != live.row.outcome or now - live.row.updated >= SAVE_EVERY_S:
            row = live.row
            live.row = AnalysisRow(
                row.app,
                key,
                canary,
                baseline,
                kind,
                since,
                now,
                verdict.outcome,
                verdict.as_json(),
            )
            self.store.put_analysis(live.row)
        return verdict

    def forget(self, key: str) -> None:
        self.live.pop(key, None)


def _arm(
    stats: Mapping[str, Any], apps: tuple[str, ...], revision: int | None, second: int
) -> ArmSecond:
    if revision is None:
        return ArmSecond.empty()
    parts = [
        stats["apps"].get(app, {}).get(str(revision), {}).get("seconds", {}).get(str(second))
        for app in apps
    ]
    present = [p for p in parts if p]
    if len(present) <= 1:
        return ArmSecond.from_stats(present[0] if present else None)
    merged: dict[str, Any] = {"requests": 0, "failures": 0, "hist": {}}
    for part in present:
        merged["requests"] += part["requests"]
        merged["failures"] += part["failures"]
        for index, count in part["hist"].items():
            merged["hist"][index] = merged["hist"].get(index, 0) + count
    return ArmSecond.from_stats(merged)
