"""Offline replay: judge a recorded request log with a spec's analysis settings.

The proxy's ``--record FILE`` writes one JSON line per request (``ts``, ``app``,
``revision``, ``status``, ``latency_ms``, and for an A2A exchange its ``method`` and
``outcome``). Replay groups them into whole seconds per revision, counts a request failed as
the proxy did (its status among ``failureStatus``, or its outcome among
``failureOutcomes``),
feeds the same :class:`~rollwise.analysis.run.AnalysisRun` the controller uses, and reports
every change of a judge's outcome: tuning alpha, tolerances or guardrails on real traffic
without touching a rollout. Its verdict is the *first decisive* outcome, the one a live
``until: pass`` step would have acted on (pass → advance, fail → abort), with the moment and
the evidence then; it keeps judging after it, to show what the rest of the log held.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rollwise.a2a.labels import OK, failing_outcomes
from rollwise.analysis.run import AnalysisRun, Verdict
from rollwise.analysis.series import ArmSecond
from rollwise.errors import InputError, UsageError
from rollwise.routing.proxy.table import failing_statuses
from rollwise.spec.models import AnalysisStep, Rollout
from rollwise.words import preview_app

__all__ = ["Replay", "TimelineEntry", "replay_file"]


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    elapsed: float
    judge: str
    outcome: str
    summary: str

    def as_json(self) -> dict[str, Any]:
        return {
            "elapsed_s": self.elapsed,
            "judge": self.judge,
            "outcome": self.outcome,
            "summary": self.summary,
        }


@dataclass
class Replay:
    """What a replay found: the arms, the seconds judged, the timeline, the verdict a live
    step would have acted on (``verdict``; at ``decided_at`` seconds, ``None`` when nothing
    decided) and the state at the end of the log (``end``)."""

    app: str
    canary: str
    baseline: str
    seconds: int
    requests: dict[str, int]
    verdict: Verdict
    end: Verdict
    decided_at: float | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "canary": self.canary,
            "baseline": self.baseline,
            "seconds": self.seconds,
            "requests": self.requests,
            "timeline": [t.as_json() for t in self.timeline],
            "verdict": {**self.verdict.as_json(), "at_s": self.decided_at},
            "end": self.end.as_json(),
        }


# (latency in seconds, status, "<method> <outcome>" of an A2A exchange or "")
Request = tuple[float, int, str]


def _read(path: Path, apps: set[str]) -> dict[str, dict[int, list[Request]]]:
    """Per revision, per whole second: each request's latency, status and A2A outcome."""
    by_revision: dict[str, dict[int, list[Request]]] = defaultdict(lambda: defaultdict(list))
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read the request log {path}: {exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if apps and item.get("app", "") not in apps:
                continue
            second = math.floor(float(item["ts"]))
            latency = float(item["latency_ms"]) / 1000
            said = f"{item['method']} {item['outcome']}" if "outcome" in item else ""
            by_revision[str(item["revision"])][second].append((latency, int(item["status"]), said))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"{path}:{number}: not a request record ({type(exc).__name__}: {exc}); each "
                'line is JSON like {"ts": 1.5, "revision": "2", "status": 200, "latency_ms": 3.1}'
            ) from None
    return by_revision


def _arms(path: Path, held: list[str], canary: str | None, baseline: str | None) -> tuple[str, str]:
    """The revisions to compare: as given, else the highest and the next one down."""
    numbered = sorted(held, key=lambda r: (int(r) if r.isdigit() else math.inf, r))
    if len(numbered) < 2 and (canary is None or baseline is None):
        raise UsageError(f"{path} holds only revision {numbered[0]}: there is nothing to compare")
    if canary is None:
        canary = numbered[-1] if baseline != numbered[-1] else numbered[-2]
    if baseline is None:
        lower = [r for r in numbered if r != canary and numbered.index(r) < numbered.index(canary)]
        if not lower:
            raise UsageError(
                f"{path} holds revisions {', '.join(numbered)}: none below {canary} to compare "
                "with; name one with --baseline REV"
            )
        baseline = lower[-1]
    for name in (canary, baseline):
        if name not in numbered:
            raise UsageError(f"revision {name} is not in {path} (it holds {', '.join(numbered)})")
    return canary, baseline


def _arm(
    requests: list[Request], failing: tuple[bool, ...], failing_a2a: frozenset[str]
) -> ArmSecond:
    outcomes: Counter[str] = Counter()
    failed = []
    for _, status, said in requests:
        outcome = said.partition(" ")[2]
        if outcome and outcome != OK:
            outcomes[said] += 1
        failed.append((0 <= status < len(failing) and failing[status]) or outcome in failing_a2a)
    return ArmSecond.from_requests([r[0] for r in requests], failed, outcomes)


def replay_file(
    path: Path,
    rollout: Rollout,
    *,
    canary: str | None = None,
    baseline: str | None = None,
    step: AnalysisStep | None = None,
) -> Replay:
    """Judge the record at ``path`` with ``rollout``'s analysis settings.

    By default the canary is the highest revision in the log and the baseline the next one
    down (a rollout's new revision and its stable). ``step`` gives the guardrails (default:
    the spec's first analysis step, if any).
    """
    app = rollout.metadata.name
    revisions = _read(path, {app, preview_app(app)})
    if not revisions:
        raise InputError(f"{path}: no requests of app {app!r}; is this the right spec (-f)?")
    canary, baseline = _arms(path, sorted(revisions), canary, baseline)
    strategy = rollout.spec.strategy
    if step is None:
        steps = strategy.canary.steps if strategy.canary is not None else []
        inline = [s.analysis for s in steps if s.analysis is not None]
        step = inline[0] if inline else AnalysisStep()
    step = step.model_copy(update={"until": "pass", "max_duration": math.inf})
    traffic = rollout.spec.traffic
    failing = failing_statuses(list(traffic.failure_status))
    a2a = rollout.spec.speaks_a2a
    failing_a2a = failing_outcomes(traffic.failure_outcomes) if a2a else frozenset()
    run = AnalysisRun(strategy.analysis_settings, step)
    canary_seconds, baseline_seconds = revisions[canary], revisions[baseline]
    both = set(canary_seconds) & set(baseline_seconds)
    first = min(both) if both else 0
    seconds = sorted(s for s in set(canary_seconds) | set(baseline_seconds) if s >= first)
    timeline: list[TimelineEntry] = []
    seen: dict[str, str] = {}
    verdict = run.verdict(0.0)
    decision: Verdict | None = None
    decided_at: float | None = None
    start = seconds[0] if seconds else 0
    for second in seconds:
        run.feed(
            second,
            _arm(canary_seconds.get(second, []), failing, failing_a2a),
            _arm(baseline_seconds.get(second, []), failing, failing_a2a),
        )
        elapsed = float(second + 1 - start)
        verdict = run.verdict(elapsed)
        if decision is None and verdict.outcome in ("pass", "fail"):
            decision, decided_at = verdict, elapsed
        for judge in verdict.judges:
            if seen.get(judge.name, "inconclusive") != judge.outcome:
                seen[judge.name] = judge.outcome
                timeline.append(TimelineEntry(elapsed, judge.name, judge.outcome, judge.summary))
    if verdict.outcome == "wait":
        verdict = replace(
            verdict, outcome="inconclusive", detail=f"no verdict by the end: {verdict.detail}"
        )
    return Replay(
        app,
        canary,
        baseline,
        len(seconds),
        {
            canary: sum(len(v) for v in canary_seconds.values()),
            baseline: sum(len(v) for v in baseline_seconds.values()),
        },
        decision or verdict,
        verdict,
        decided_at,
        timeline,
    )
