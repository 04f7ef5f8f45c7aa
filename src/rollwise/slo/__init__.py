"""Service level objectives: the SLI of an app's requests, error budgets, burn rates, and the
Prometheus rules that compute the same numbers in a team's own Prometheus."""

from rollwise.slo.budget import SloReport, WindowFigures, burn_rate, prometheus_duration
from rollwise.slo.sli import fold_seconds, good_of

__all__ = [
    "SloReport",
    "WindowFigures",
    "burn_rate",
    "fold_seconds",
    "good_of",
    "prometheus_duration",
]
