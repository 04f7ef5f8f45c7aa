"""Error budgets and burn rates, as the Google SRE workbook defines them (ch. 5).

- error ratio over a window = bad requests ÷ requests in it (0 with no request);
- burn rate = error ratio ÷ (1 − target): 1 spends the budget exactly over the SLO's window,
  14.4 spends 2 % of a 30-day budget in one hour;
- budget remaining = 1 − error ratio over the SLO's window ÷ (1 − target) (1 with no request;
  below 0 once overspent);
- a burn-rate alert is active when both its long and its short window burn at least its rate.

A window covers the rows that overlap it (rows are ``resolution`` wide), ending at the last
second the controller has folded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rollwise.spec.duration import format_duration
from rollwise.spec.slo import BurnWindow, Objective

__all__ = [
    "AlertCheck",
    "SloReport",
    "WindowFigures",
    "burn_rate",
    "prometheus_duration",
    "windows_of",
]


def prometheus_duration(seconds: float) -> str:
    """``300`` → ``5m``, ``2419200`` → ``28d``: the same spelling in specs and PromQL."""
    return format_duration(seconds)


def burn_rate(error_ratio: float, target: float) -> float:
    """How many times faster than allowed the budget burns at ``error_ratio``."""
    return error_ratio / (1.0 - target)


@dataclass(frozen=True, slots=True)
class WindowFigures:
    window_s: float
    good: int
    total: int

    @property
    def error_ratio(self) -> float:
        return (self.total - self.good) / self.total if self.total else 0.0

    def as_json(self, target: float) -> dict[str, Any]:
        return {
            "window": prometheus_duration(self.window_s),
            "good": self.good,
            "total": self.total,
            "errorRatio": self.error_ratio,
            "burnRate": burn_rate(self.error_ratio, target),
        }


@dataclass(frozen=True, slots=True)
class AlertCheck:
    """One burn-rate alert's two windows, now."""

    window: BurnWindow
    long_burn: float
    short_burn: float

    @property
    def active(self) -> bool:
        rate = self.window.burn_rate * (1 - 1e-9)  # 144/10000 / 0.001 is 14.3999…
        return self.long_burn >= rate and self.short_burn >= rate

    def numbers(self) -> dict[str, Any]:
        return {
            "burnRate": self.window.burn_rate,
            "longWindow": prometheus_duration(self.window.long),
            "longBurnRate": round(self.long_burn, 4),
            "shortWindow": prometheus_duration(self.window.short_s),
            "shortBurnRate": round(self.short_burn, 4),
        }


def windows_of(objective: Objective, alerts: Sequence[BurnWindow]) -> list[float]:
    """Every window an SLO's figures need: its own, and both of each alert's."""
    wanted = {objective.window}
    for window in alerts:
        wanted |= {window.long, window.short_s}
    return sorted(wanted)


@dataclass(frozen=True)
class SloReport:
    """An SLO evaluated at one moment: the figures of each window and each alert's check."""

    app: str
    objective: Objective
    at: float
    figures: dict[float, WindowFigures]
    checks: list[AlertCheck] = field(default_factory=list)

    @classmethod
    def evaluate(
        cls,
        app: str,
        objective: Objective,
        alerts: Sequence[BurnWindow],
        at: float,
        sums: Callable[[list[int]], list[tuple[int, int]]],
    ) -> SloReport:
        """``sums(starts)`` answers (good, total) from each row start on (``Store.sli_sums``)."""
        windows = windows_of(objective, alerts)
        starts = [int(at - w - objective.resolution) + 1 for w in windows]
        figures = {
            w: WindowFigures(w, good, total)
            for w, (good, total) in zip(windows, sums(starts), strict=True)
        }
        target = objective.target
        checks = [
            AlertCheck(
                window,
                burn_rate(figures[window.long].error_ratio, target),
                burn_rate(figures[window.short_s].error_ratio, target),
            )
            for window in alerts
        ]
        return cls(app, objective, at, figures, checks)

    @property
    def period(self) -> WindowFigures:
        return self.figures[self.objective.window]

    @property
    def sli(self) -> float | None:
        """The share of good requests over the SLO's window; ``None`` with no request."""
        period = self.period
        return period.good / period.total if period.total else None

    @property
    def budget_remaining(self) -> float:
        return 1.0 - burn_rate(self.period.error_ratio, self.objective.target)

    @property
    def current_burn_rate(self) -> float:
        """The burn rate over the shortest window alerts look at (5 minutes by default)."""
        shortest = min(self.figures)
        return burn_rate(self.figures[shortest].error_ratio, self.objective.target)

    def as_json(self) -> dict[str, Any]:
        objective = self.objective
        return {
            "app": self.app,
            "slo": objective.name,
            "indicator": objective.indicator,
            "target": objective.target,
            "threshold": objective.threshold,
            "window": prometheus_duration(objective.window),
            "runbook": objective.runbook,
            "at": self.at,
            "sli": self.sli,
            "requests": self.period.total,
            "budgetRemaining": self.budget_remaining,
            "currentBurnRate": self.current_burn_rate,
            "windows": [f.as_json(objective.target) for f in self.figures.values()],
            "alerts": [
                {
                    "severity": check.window.severity,
                    "window": check.window.name,
                    "active": check.active,
                    **check.numbers(),
                }
                for check in self.checks
            ],
        }
