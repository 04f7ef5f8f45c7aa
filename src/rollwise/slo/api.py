"""The mission's operations helpers, over what the controller measures.

``SLAWindow``, ``ProductionMetric``, ``ProductionDashboard`` and ``summarise_metrics`` keep
the mission's names and behaviour (record samples, average them, compare with an
objective), and each can also be filled from a running controller:

    window = await SLAWindow.of_slo("sample-agent", "availability")
    print(window.status())            # "met" while the error budget is not spent

    dashboard = await ProductionDashboard.of_app("sample-agent")
    print(summarise_metrics(dashboard))

``SLAWindow.of_slo`` reads the stored SLO: its objective is the error budget (the share of
requests allowed to fail, ``1 - target``) and its one sample the error ratio over the SLO's
window, so ``status()`` is ``met`` exactly when budget is left. ``ProductionDashboard.of_app``
holds the app's last minute on its listeners, one sample per second (requests, error rate,
p50 and p95 latency), and each SLO's SLI and budget left.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollwise.client import AsyncAdminClient
from rollwise.errors import NotFoundError
from rollwise.routing.proxy.stats import quantile

__all__ = ["ProductionDashboard", "ProductionMetric", "SLAWindow", "summarise_metrics"]


@dataclass
class SLAWindow:
    """Samples against an objective that their average must not exceed."""

    objective: float
    samples: list[float] = field(default_factory=list)

    def record(self, value: float) -> None:
        self.samples.append(value)

    def status(self) -> str:
        average = sum(self.samples) / len(self.samples) if self.samples else 0.0
        return "met" if average <= self.objective else "breached"

    @classmethod
    async def of_slo(cls, app: str, slo: str, *, state_dir: Path | None = None) -> SLAWindow:
        """The stored SLO ``slo`` of ``app``: the error budget, and the error ratio over its
        window (no sample before the first request)."""
        async with _client(state_dir) as client:
            reports = await client.request("GET", f"/apps/{app}/slos")
        for report in reports:
            if report["slo"] == slo:
                window = cls(1.0 - float(report["target"]))
                if report["sli"] is not None:
                    window.record(1.0 - float(report["sli"]))
                return window
        names = ", ".join(r["slo"] for r in reports) or "none"
        raise NotFoundError(f"app {app} has no SLO named {slo!r} (its SLOs: {names})")


@dataclass
class ProductionMetric:
    name: str
    values: list[float]

    def average(self) -> float:
        return sum(self.values) / len(self.values) if self.values else 0.0


@dataclass
class ProductionDashboard:
    metrics: dict[str, ProductionMetric] = field(default_factory=dict)

    def update(self, name: str, value: float) -> None:
        metric = self.metrics.setdefault(name, ProductionMetric(name, []))
        metric.values.append(value)

    def report(self) -> dict[str, float]:
        return {name: metric.average() for name, metric in self.metrics.items()}

    @classmethod
    async def of_app(
        cls, app: str, *, seconds: int = 60, state_dir: Path | None = None
    ) -> ProductionDashboard:
        """``app``'s last ``seconds`` as the proxy counted them (every revision together),
        one sample per second with traffic, and each SLO's SLI and budget left."""
        dashboard = cls()
        since = int(time.time()) - seconds
        async with _client(state_dir) as client:
            stats = await client.request("GET", f"/apps/{app}/stats", params={"since": since})
            reports = await client.request("GET", f"/apps/{app}/slos")
        per_second: dict[int, dict[str, Any]] = {}
        for body in stats["revisions"].values():
            for second, counts in body["seconds"].items():
                into = per_second.setdefault(int(second), {"n": 0, "f": 0, "h": {}})
                into["n"] += counts["requests"]
                into["f"] += counts["failures"]
                for index, n in counts["hist"].items():
                    into["h"][int(index)] = into["h"].get(int(index), 0) + n
        for second in sorted(per_second):
            counts = per_second[second]
            if not counts["n"]:
                continue
            dashboard.update("requests_per_s", counts["n"])
            dashboard.update("error_rate", counts["f"] / counts["n"])
            for name, q in (("latency_p50_ms", 0.5), ("latency_p95_ms", 0.95)):
                value = quantile(counts["h"], q)
                if value is not None:
                    dashboard.update(name, value * 1000)
        for report in reports:
            if report["sli"] is not None:
                dashboard.update(f"slo_{report['slo']}_sli", float(report["sli"]))
            dashboard.update(f"slo_{report['slo']}_budget_left", float(report["budgetRemaining"]))
        return dashboard


def summarise_metrics(dashboard: ProductionDashboard) -> str:
    lines = ["# Metrics Summary"]
    for name, metric in dashboard.metrics.items():
        lines.append(f"- {name}: {metric.average():.2f}")
    return "\n".join(lines)


@contextlib.asynccontextmanager
async def _client(state_dir: Path | None) -> AsyncIterator[AsyncAdminClient]:
    client = AsyncAdminClient(state_dir)
    try:
        yield client
    finally:
        await client.aclose()
