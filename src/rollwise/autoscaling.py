"""The scaling decision, as Kubernetes' HorizontalPodAutoscaler takes it, and the mission's
``Autoscaler`` over it.

For each metric, ``ceil(current × value / target)``, unless every metric is within
``tolerance`` of its target; the largest proposal wins, clamped to min and max. Then HPA's
``behavior``: the proposal is stabilised (a scale-up takes the lowest proposal of its
window, a scale-down the highest of its own: a short dip does not remove replicas), and the
change is limited by the policies of its direction (``Pods`` or ``Percent`` per
``periodSeconds``, counted from the replicas at the start of each period; ``selectPolicy``
picks the most or least permissive, or ``Disabled`` forbids that direction).

The controller feeds it the app's measured in-flight requests and CPU per replica
(``controller/autoscaler.py``); ``Autoscaler(min, max, target_cpu).recommend(cpu)`` feeds
it one CPU figure at a time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rollwise.spec.autoscaling import Autoscaling, Behavior, ScalingRules, Targets

__all__ = ["Autoscaler", "ScaleDecision", "ScalePolicy", "hpa_manifest"]


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    replicas: int
    current: int
    why: str  # "in-flight 38.0/replica > target 10", "... (within tolerance)"


class ScalePolicy:
    def __init__(self, spec: Autoscaling) -> None:
        self.spec = spec
        self._proposals: list[tuple[float, int]] = []  # (when, proposal)
        self._changes: list[tuple[float, int]] = []  # (when, replicas added; < 0 removed)

    def decide(self, current: int, measured: dict[str, float], now: float) -> ScaleDecision:
        """``measured``: ``in_flight`` and ``cpu`` per replica, ``p95_latency`` in seconds
        (those of the spec's targets that were measured)."""
        spec = self.spec
        proposal, why = self._proposal(current, measured, spec.target)
        proposal = min(max(proposal, spec.min_replicas), spec.max_replicas)
        self._proposals.append((now, proposal))
        stable = self._stabilise(current, now)
        limited = self._limit(current, stable, now)
        limited = min(max(limited, spec.min_replicas), spec.max_replicas)
        horizon = now - max(self._longest_window(), self._longest_period())
        self._proposals = [p for p in self._proposals if p[0] >= horizon]
        self._changes = [c for c in self._changes if c[0] >= horizon]
        if limited != current:
            self._changes.append((now, limited - current))
        elif proposal != current:
            held = "scaleUp" if proposal > current else "scaleDown"
            why += f"; held by {held}'s stabilization window or policies"
        return ScaleDecision(limited, current, why)

    def _proposal(
        self, current: int, measured: dict[str, float], target: Targets
    ) -> tuple[int, str]:
        ratios: list[tuple[float, str]] = []
        if target.in_flight is not None and "in_flight" in measured:
            value = measured["in_flight"]
            ratio = value / target.in_flight
            shown = f"in-flight {value:.1f}/replica {_cmp(ratio)} target {target.in_flight:g}"
            ratios.append((ratio, shown))
        if target.cpu is not None and "cpu" in measured:
            value = measured["cpu"]
            ratio = value / target.cpu
            ratios.append((ratio, f"cpu {value:.0%}/replica {_cmp(ratio)} target {target.cpu:.0%}"))
        if target.p95_latency is not None and "p95_latency" in measured:
            value = measured["p95_latency"]
            ratio = value / target.p95_latency
            shown = (
                f"p95 {value * 1000:.0f} ms {_cmp(ratio)} target {target.p95_latency * 1000:g} ms"
            )
            ratios.append((ratio, shown))
        if not ratios:
            return current, "no metric measured"
        if all(abs(ratio - 1) <= self.spec.tolerance for ratio, _ in ratios):
            return current, "; ".join(w for _, w in ratios) + " (within tolerance)"
        ratio, why = max(ratios, key=lambda r: r[0])
        return max(1, math.ceil(current * ratio - 1e-9)), why

    def _stabilise(self, current: int, now: float) -> int:
        behavior: Behavior = self.spec.behavior
        up_window = behavior.scale_up.stabilization_window_seconds
        down_window = behavior.scale_down.stabilization_window_seconds
        ups = [p for t, p in self._proposals if t >= now - up_window]
        downs = [p for t, p in self._proposals if t >= now - down_window]
        result = current
        up = min(ups) if ups else current
        down = max(downs) if downs else current
        result = max(result, up)
        result = min(result, down)
        return result

    def _limit(self, current: int, wanted: int, now: float) -> int:
        if wanted == current:
            return current
        rules = self.spec.behavior.scale_up if wanted > current else self.spec.behavior.scale_down
        if rules.select_policy == "Disabled":
            return current
        if not rules.policies:
            return wanted
        limits = [
            self._policy_limit(current, wanted > current, p.type, p.value, p.period_seconds, now)
            for p in rules.policies
        ]
        if wanted > current:
            bound = max(limits) if rules.select_policy == "Max" else min(limits)
            return min(wanted, bound)
        bound = min(limits) if rules.select_policy == "Max" else max(limits)
        return max(wanted, bound)

    def _policy_limit(
        self, current: int, up: bool, kind: str, value: int, period: float, now: float
    ) -> int:
        changed = sum(d for t, d in self._changes if t > now - period and (d > 0) == up)
        start = current - changed
        if up:
            return start + value if kind == "Pods" else math.ceil(start * (1 + value / 100))
        return start - value if kind == "Pods" else math.floor(start * (1 - value / 100))

    def _longest_window(self) -> float:
        behavior = self.spec.behavior
        return max(
            behavior.scale_up.stabilization_window_seconds,
            behavior.scale_down.stabilization_window_seconds,
        )

    def _longest_period(self) -> float:
        rules: list[ScalingRules] = [self.spec.behavior.scale_up, self.spec.behavior.scale_down]
        return max([p.period_seconds for r in rules for p in r.policies] or [0.0])


def _cmp(ratio: float) -> str:
    return ">" if ratio > 1 else "<" if ratio < 1 else "="


def hpa_manifest(name: str, spec: Autoscaling) -> dict[str, object]:
    """The HorizontalPodAutoscaler (``autoscaling/v2``) this section would be on a cluster,
    scaling the Deployment ``name`` (rendered for a team to use; the Kubernetes backend does
    not apply it, since it writes each Deployment's replicas itself): ``cpu`` as a Resource
    target, ``inFlight`` as a Pods metric ``rollwise_in_flight`` and ``p95Latency`` as an
    External metric ``rollwise_p95_latency_seconds`` (both served by a metrics adapter over
    the data plane)."""
    metrics: list[dict[str, object]] = []
    if spec.target.cpu is not None:
        utilization = round(spec.target.cpu * 100)
        metrics.append(
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": utilization},
                },
            }
        )
    if spec.target.in_flight is not None:
        metrics.append(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "rollwise_in_flight"},
                    "target": {
                        "type": "AverageValue",
                        "averageValue": f"{spec.target.in_flight:g}",
                    },
                },
            }
        )
    if spec.target.p95_latency is not None:
        metrics.append(
            {
                "type": "External",
                "external": {
                    "metric": {
                        "name": "rollwise_p95_latency_seconds",
                        "selector": {"matchLabels": {"app": name}},
                    },
                    "target": {"type": "Value", "value": f"{spec.target.p95_latency:g}"},
                },
            }
        )

    def rules(r: ScalingRules) -> dict[str, object]:
        return {
            "stabilizationWindowSeconds": round(r.stabilization_window_seconds),
            "selectPolicy": r.select_policy,
            "policies": [
                {"type": p.type, "value": p.value, "periodSeconds": round(p.period_seconds)}
                for p in r.policies
            ],
        }

    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": spec.min_replicas,
            "maxReplicas": spec.max_replicas,
            "metrics": metrics,
            "behavior": {
                "scaleUp": rules(spec.behavior.scale_up),
                "scaleDown": rules(spec.behavior.scale_down),
            },
        },
    }


@dataclass
class Autoscaler:
    """The mission's autoscaler: ``recommend(cpu_utilisation)`` (a share of one core, e.g.
    0.85) answers the replica count, by the same policy as the controller's."""

    min_replicas: int
    max_replicas: int
    target_cpu: float
    current_replicas: int = 1
    behavior: Behavior | None = None
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _policy: ScalePolicy | None = field(default=None, init=False, repr=False)

    def recommend(self, cpu_utilisation: float) -> int:
        if self._policy is None:
            spec = Autoscaling(
                min_replicas=self.min_replicas,
                max_replicas=self.max_replicas,
                target=Targets(cpu=self.target_cpu),
                behavior=self.behavior or Behavior(),
            )
            self._policy = ScalePolicy(spec)
        decision = self._policy.decide(
            self.current_replicas, {"cpu": cpu_utilisation}, self.clock()
        )
        self.current_replicas = decision.replicas
        return decision.replicas
