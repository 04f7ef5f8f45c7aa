"""Canary analysis: canary vs baseline over the same seconds, with anytime-valid statistics.

``evidence`` holds the e-processes and confidence sequences, ``judges`` the failure-rate and
latency judges and the guardrails, ``run`` one analysis run and its verdict, ``replay`` the
offline judging of a recorded request log, ``source`` where the numbers come from.

The names below load on first use (PEP 562): numpy and scipy cost a controller 0.15 s at
start, and an app that never runs an analysis never needs them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollwise.analysis.evidence import RatioEProcess, quantile_band, rate_bounds
    from rollwise.analysis.judges import (
        FailureRateJudge,
        Guardrails,
        JudgeResult,
        LatencyJudgeRun,
    )
    from rollwise.analysis.run import AnalysisRun, Verdict
    from rollwise.analysis.series import ArmSecond

__all__ = [
    "AnalysisRun",
    "ArmSecond",
    "FailureRateJudge",
    "Guardrails",
    "JudgeResult",
    "LatencyJudgeRun",
    "RatioEProcess",
    "Verdict",
    "quantile_band",
    "rate_bounds",
]

_HOMES = {
    "RatioEProcess": "evidence",
    "quantile_band": "evidence",
    "rate_bounds": "evidence",
    "FailureRateJudge": "judges",
    "Guardrails": "judges",
    "JudgeResult": "judges",
    "LatencyJudgeRun": "judges",
    "AnalysisRun": "run",
    "Verdict": "run",
    "ArmSecond": "series",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'rollwise.analysis' has no attribute {name!r}")
    value = getattr(import_module(f"rollwise.analysis.{home}"), name)
    globals()[name] = value
    return value
