"""One analysis run: the strategy's judges and a step's guardrails over seconds of two arms.

A run is fed whole seconds in order (``feed``) and asked for a verdict at any time
(``verdict``): Fail as soon as any acting judge or guardrail fails; Pass when every acting
judge passed (``until: pass``) or when the ``duration`` ended without a failure
(``until: duration``), in both cases only after ``minRequests`` canary requests; otherwise
Wait, or Inconclusive once the time is up. Dry-run judges are judged and reported but never
decide. No data is never a failure. An agent metric (``agentMetrics``) is a failure-rate
judge of the agent's own counters, fed beside the proxy's arms; it holds back a pass only
with ``mustPass``. An A2A app's exchanges that did not end plainly are added up per arm
(``outcomes``): a failed verdict names the canary's (``canary: 412 × -32603 on SendMessage``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rollwise.a2a.labels import told
from rollwise.analysis.judges import FailureRateJudge, Guardrails, JudgeResult, LatencyJudgeRun
from rollwise.analysis.series import ArmSecond
from rollwise.spec.models import AnalysisSettings, AnalysisStep

__all__ = ["AnalysisRun", "Verdict"]

VerdictOutcome = Literal["pass", "fail", "wait", "inconclusive"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The state of a run: its outcome, a one-line reason and every judge's evidence."""

    outcome: VerdictOutcome
    detail: str
    elapsed: float
    requests: int
    failures: int
    judges: list[JudgeResult] = field(default_factory=list)
    # A2A exchanges that did not end plainly, per arm: "<method> <outcome>" -> count
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = {
            "outcome": self.outcome,
            "detail": self.detail,
            "elapsed_s": round(self.elapsed, 3),
            "requests": self.requests,
            "failures": self.failures,
            "judges": [j.as_json() for j in self.judges],
        }
        if any(self.outcomes.values()):
            data["a2a"] = self.outcomes
        return data


class AnalysisRun:
    """The judges of ``settings`` and the guardrails of ``step`` for one canary/baseline pair."""

    def __init__(
        self, settings: AnalysisSettings, step: AnalysisStep, *, judges: bool = True
    ) -> None:
        self.settings = settings
        self.step = step
        self.judges: list[FailureRateJudge | LatencyJudgeRun] = []
        if judges and settings.error_rate is not None:
            errors = settings.error_rate
            self.judges.append(FailureRateJudge(errors, alpha=settings.judge_alpha(errors)))
        if judges and settings.latency is not None:
            latency = settings.latency
            self.judges.append(LatencyJudgeRun(latency, alpha=settings.judge_alpha(latency)))
        self.proxy_judges = list(self.judges)  # fed the proxy's arms; agent metrics their own
        self.agents: dict[str, FailureRateJudge] = {}
        self.optional: set[str] = set()  # judges that fail a run but never hold back a pass
        for metric in settings.agent_metrics if judges else []:
            name = f"agent {metric.name}"
            judge = FailureRateJudge(metric, alpha=settings.judge_alpha(metric), name=name)
            self.agents[metric.name] = judge
            self.judges.append(judge)
            if not metric.must_pass:
                self.optional.add(name)
        self.guardrails = Guardrails(step)
        self.outcomes: dict[str, Counter[str]] = {"canary": Counter(), "baseline": Counter()}
        self.last_second: int | None = None
        self.seconds = 0
        self._results: tuple[int, list[JudgeResult], JudgeResult] | None = None

    def feed(
        self,
        second: int,
        canary: ArmSecond,
        baseline: ArmSecond,
        agents: Mapping[str, tuple[ArmSecond, ArmSecond]] | None = None,
    ) -> None:
        """Add one whole second (with each agent metric's (canary, baseline) of it); seconds
        at or before the last one fed are ignored."""
        if self.last_second is not None and second <= self.last_second:
            return
        self.last_second = second
        self.seconds += 1
        for judge in self.proxy_judges:
            judge.update(canary, baseline)
        for name, arms in (agents or {}).items():
            if name in self.agents:
                self.agents[name].update(*arms)
        self.guardrails.update(canary)
        self.outcomes["canary"].update(canary.outcomes)
        self.outcomes["baseline"].update(baseline.outcomes)

    def verdict(self, elapsed: float) -> Verdict:
        step = self.step
        if self._results is None or self._results[0] != self.seconds:
            # the evidence changes only with new seconds; the controller asks 10 times a second
            self._results = (
                self.seconds,
                [j.result() for j in self.judges],
                self.guardrails.result(),
            )
        _, results, guard = self._results
        requests, failures = int(self.guardrails.requests), int(self.guardrails.failures)
        acting = [r for r in results if not r.dry_run]

        outcomes = {arm: dict(counts) for arm, counts in self.outcomes.items()}

        def made(outcome: VerdictOutcome, detail: str) -> Verdict:
            judged = [*results, guard]
            return Verdict(outcome, detail, elapsed, requests, failures, judged, outcomes)

        failed = [r for r in acting if r.outcome == "fail"]
        if guard.outcome == "fail":
            failed.append(guard)
        if failed:
            said = [r.summary for r in failed]
            if self.outcomes["canary"]:  # what the agent answered, in A2A's words
                said.append(f"canary: {told(self.outcomes['canary'])}")
            return made("fail", "; ".join(said) + f" after {elapsed:.0f} s")
        enough = requests >= step.min_requests
        if step.until == "duration":
            assert step.duration is not None
            if elapsed < step.duration:
                return made("wait", _progress(results, guard))
            if not enough:
                return made("inconclusive", guard.summary)
            return made("pass", _progress(results, guard))
        deciding = [r for r in acting if r.name not in self.optional]
        if enough and all(r.outcome == "pass" for r in deciding):
            return made("pass", _progress(results, guard))
        if elapsed >= step.max_duration:
            waiting = [r.summary for r in deciding if r.outcome != "pass"]
            if not enough:
                waiting.insert(0, guard.summary)
            return made(
                "inconclusive",
                f"no verdict after {elapsed:.0f} s (maxDuration): " + "; ".join(waiting),
            )
        return made("wait", _progress(results, guard))


def _progress(results: list[JudgeResult], guard: JudgeResult) -> str:
    parts = [f"{r.name} {r.outcome}: {r.summary}" for r in results]
    return "; ".join([*parts, guard.summary])
