"""The analysis settings of a spec: which judges compare canary with baseline, at what
level, and the guardrails of an ``analysis`` step. Percentages (``10%``) and quantiles
(``p95``) are read as people write them.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from rollwise.spec.base import Model
from rollwise.spec.duration import Duration
from rollwise.spec.prometheus import PrometheusSource
from rollwise.spec.selector import check_selector

__all__ = [
    "AgentMetric",
    "AnalysisSettings",
    "AnalysisStep",
    "ErrorRateJudge",
    "Fraction",
    "LatencyJudge",
]


def _fraction(value: object) -> object:
    """``10%`` or ``0.1``; a bare number above 1 is a mistake, not 10 000 %."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            raise ValueError(f"{value!r} is not a percentage; write e.g. 10%") from None
    return value


def _in_unit(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{value} is not between 0 and 1 (0% and 100%)")
    return value


def _quantile(value: object) -> object:
    """``p95``, ``95%`` or ``0.95``."""
    if isinstance(value, str) and re.fullmatch(r"[pP]\d+(\.\d+)?", value.strip()):
        return float(value.strip()[1:]) / 100
    return _fraction(value)


def _alpha(value: float) -> float:
    if not 0.0 < value < 0.5:
        raise ValueError(f"{value} is not a usable alpha; write e.g. 0.01 (between 0 and 0.5)")
    return value


def _open_unit(value: float) -> float:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{value} is not a quantile; write e.g. p95 or 0.95")
    return value


Fraction = Annotated[float, BeforeValidator(_fraction), AfterValidator(_in_unit)]
Increase = Annotated[float, BeforeValidator(_fraction), Field(ge=0.0, le=10.0)]
Alpha = Annotated[float, AfterValidator(_alpha)]
Quantile = Annotated[float, BeforeValidator(_quantile), AfterValidator(_open_unit)]


class ErrorRateJudge(Model):
    """Canary vs baseline failure rate over the same seconds, anytime-valid both ways.

    **Fail**: once it is shown, at level ``alpha`` (default: its share of the analysis'
    ``alpha``), that the canary fails more often than baseline × (1 + ``tolerance``).

    **Pass**: only once it is *shown*, at the same level, that the canary is no worse than
    one of the rules below allows; a canary worse than every rule it was given passes with
    probability at most ``alpha`` (the level is split between the rules given):

    - ``passTolerance`` (default 50 %): canary ≤ baseline × (1 + passTolerance). A ratio
      needs failures to be shown: with none in either arm it stays inconclusive.
    - ``maxFailureRate`` (off unless given): canary ≤ this absolute rate (what the app can
      afford; with zero failures it is the rule that can pass).
    - ``margin`` (0, off): canary ≤ baseline + margin, "accept up to X points worse".

    Between ``tolerance`` and ``passTolerance`` lies the indifference zone: a canary there
    neither fails nor passes quickly. ``dryRun`` records without acting.
    """

    alpha: Alpha | None = None
    tolerance: Increase = 0.0
    pass_tolerance: Increase = 0.5
    max_failure_rate: Fraction | None = None
    margin: Fraction = 0.0
    dry_run: bool = False

    @model_validator(mode="after")
    def _zone(self) -> Self:
        if self.pass_tolerance < self.tolerance:
            raise ValueError(
                f"passTolerance {self.pass_tolerance:.0%} is below tolerance "
                f"{self.tolerance:.0%}: a canary must be shown no worse than the pass line, "
                "which is at or above the fail line"
            )
        return self


class LatencyJudge(Model):
    """Canary vs baseline latency at one or more quantiles (anytime-valid, per quantile).

    Fails once the canary is shown slower than the baseline × (1 + ``tolerance``) around the
    quantile; passes once it is shown faster than that. ``alpha`` is shared by the quantiles.
    ``initialDelay`` (Argo's word) skips the canary's first seconds of traffic: a fresh process
    answers its first requests slowly (imports, caches, connection pools), which says nothing
    about the release. Failures are judged from the first second.
    """

    quantile: Quantile | list[Quantile] = 0.95
    alpha: Alpha | None = None
    tolerance: Increase = 0.10
    initial_delay: Duration = 10.0
    dry_run: bool = False

    @property
    def quantiles(self) -> list[float]:
        return list(self.quantile) if isinstance(self.quantile, list) else [self.quantile]


Selector = Annotated[str, AfterValidator(check_selector)]
MetricName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]


class AgentMetric(ErrorRateJudge):
    """A failure ratio the agent counts itself, judged like ``errorRate``: canary against
    baseline, anytime-valid, the same pass rules and ``tolerance``.

    rollwise scrapes ``path`` (Prometheus text) on every ready replica of both arms once a
    second while an analysis runs, and takes the increase of the counters that ``failures``
    and ``total`` select (``name{label="v",other!="w"}``, summed over matching series) as
    the second's failures and requests. This sees what the proxy cannot: a dependency that
    fails behind an agent that still answers 200 from a fallback, a circuit breaker that
    opens more often in the canary (``rollwise.toolkit``'s series, docs/toolkit.md).

    An agent metric fails an analysis as soon as it shows the canary worse; it holds back a
    pass (``until: pass``) only with ``mustPass: true``, since many agent ratios have no
    failures to prove anything with.
    """

    name: MetricName
    failures: Selector
    total: Selector
    path: Annotated[str, Field(pattern=r"^/")] = "/metrics"
    must_pass: bool = False


class AnalysisSettings(Model):
    """The judges an analysis runs (``errorRate: null`` or ``latency: null`` turns one off;
    ``agentMetrics`` adds the agent's own ratios), what an inconclusive analysis leads to, and
    the step that starts background analysis.

    ``alpha`` bounds the false-rollback rate of the whole analysis: it is split evenly between
    the acting judges (a judge's own ``alpha`` overrides its share). ``onInconclusive: pause``
    (default) waits for a person; ``wait`` keeps judging until a verdict, and
    ``progressDeadlineSeconds`` aborts if none comes. Lack of data never fails.
    """

    alpha: Alpha = 0.01
    error_rate: ErrorRateJudge | None = Field(default_factory=ErrorRateJudge)
    latency: LatencyJudge | None = Field(default_factory=LatencyJudge)
    agent_metrics: list[AgentMetric] = Field(default_factory=list)
    prometheus: PrometheusSource | None = None  # the judges' counts from PromQL, not the proxy
    on_inconclusive: Literal["pause", "wait"] = "pause"
    starting_step: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _unique_metrics(self) -> Self:
        names = [m.name for m in self.agent_metrics]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"agentMetrics: the name {twice[0]} is used twice; names are unique")
        return self

    def judge_alpha(self, judge: ErrorRateJudge | LatencyJudge) -> float:
        """The level a judge runs at: its own ``alpha``, else its share of the analysis'."""
        if judge.alpha is not None:
            return judge.alpha
        judges = [self.error_rate, self.latency, *self.agent_metrics]
        acting = [j for j in judges if j is not None and not j.dry_run]
        return self.alpha / max(1, len(acting))


class AnalysisStep(Model):
    """An analysis: the strategy's judges (``analysis`` settings) plus this step's guardrails.

    ``until: pass`` ends the step as soon as every judge passes (and ``minRequests`` canary
    requests were seen), or at ``maxDuration`` as inconclusive (10 minutes by default: a pass
    must be proven, which at a 1 % failure rate and 100 req/s per arm takes about 2 minutes
    and at lower rates longer); ``until: duration`` watches
    for the whole ``duration`` and passes if nothing failed. Guardrails are absolute limits
    on the canary alone, applied once it served ``minRequests``: ``maxErrorRate`` and
    ``maxLatency`` (e.g. ``{p99: 500ms}``). ``maxBurnRate`` watches the whole app instead:
    the step fails while any of its SLOs burns its error budget faster than that over the
    shortest alert window (``slos:``, docs/operations.md). A failure at any moment ends the
    step as failed.
    """

    until: Literal["pass", "duration"] = "pass"
    duration: Duration | None = None
    max_duration: Duration = 600.0
    max_error_rate: Fraction | None = None
    max_latency: dict[Quantile, Duration] = Field(default_factory=dict)
    min_requests: Annotated[int, Field(ge=1)] = 50
    max_burn_rate: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _duration_given(self) -> Self:
        if self.until == "duration" and self.duration is None:
            raise ValueError("until: duration needs a duration, e.g. duration: 30s")
        return self
