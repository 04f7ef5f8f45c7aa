"""Canary analysis: canary vs baseline over the same seconds, with anytime-valid statistics.

``evidence`` holds the e-processes and confidence sequences, ``judges`` the failure-rate and
latency judges and the guardrails, ``run`` one analysis run and its verdict, ``replay`` the
offline judging of a recorded request log.
"""

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
