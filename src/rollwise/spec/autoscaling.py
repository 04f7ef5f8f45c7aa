"""``autoscaling:``: how many replicas an app runs, in Kubernetes HPA's words.

    autoscaling:
      minReplicas: 2
      maxReplicas: 10
      target:
        inFlight: 10          # requests in flight per replica (the proxy counts them)
        cpu: 70%              # CPU per replica, as a share of one core (psutil)
        p95Latency: 250ms     # the app's p95 latency over the interval (the proxy measures)
      interval: 15s           # how often a decision is taken (HPA's sync period)
      tolerance: 10%          # no change while every metric is this close to its target
      behavior:               # HPA's behavior, same fields, same defaults
        scaleUp:
          stabilizationWindowSeconds: 0
          selectPolicy: Max
          policies: [{type: Percent, value: 100, periodSeconds: 15},
                     {type: Pods, value: 4, periodSeconds: 15}]
        scaleDown:
          stabilizationWindowSeconds: 300
          policies: [{type: Percent, value: 100, periodSeconds: 15}]

``spec.replicas`` is where an app starts; from then on the autoscaler's count is what stable
runs, and a canary's share of it (the weight keeps meaning what it says). A scale-down
drains the replicas it removes before they stop. A cluster app scales on ``cpu`` only, a
share of its pods' CPU request as the metrics API reports it (an HPA's utilization);
``hpa_manifest`` renders the section as a HorizontalPodAutoscaler (``autoscaling/v2``).
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from rollwise.spec.analysis import Fraction
from rollwise.spec.base import Model
from rollwise.spec.duration import Duration

__all__ = ["Autoscaling", "Behavior", "ScalingPolicy", "ScalingRules", "Targets"]


class ScalingPolicy(Model):
    type: Literal["Pods", "Percent"]
    value: Annotated[int, Field(ge=1)]
    period_seconds: Annotated[Duration, Field(gt=0)]


class ScalingRules(Model):
    stabilization_window_seconds: Annotated[Duration, Field(ge=0)] = 0.0
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    policies: list[ScalingPolicy] = Field(default_factory=list)


def _up() -> ScalingRules:
    return ScalingRules(
        stabilization_window_seconds=0.0,
        policies=[
            ScalingPolicy(type="Percent", value=100, period_seconds=15.0),
            ScalingPolicy(type="Pods", value=4, period_seconds=15.0),
        ],
    )


def _down() -> ScalingRules:
    return ScalingRules(
        stabilization_window_seconds=300.0,
        policies=[ScalingPolicy(type="Percent", value=100, period_seconds=15.0)],
    )


class Behavior(Model):
    scale_up: ScalingRules = Field(default_factory=_up)
    scale_down: ScalingRules = Field(default_factory=_down)


class Targets(Model):
    in_flight: Annotated[float, Field(gt=0)] | None = None
    cpu: Fraction | None = None
    # latency does not divide by replicas: more replicas bring it down only while they queue
    p95_latency: Annotated[Duration, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _some(self) -> Self:
        if self.in_flight is None and self.cpu is None and self.p95_latency is None:
            raise ValueError(
                "name at least one target: inFlight (per replica), cpu (e.g. 70%) or "
                "p95Latency (e.g. 250ms)"
            )
        if self.cpu is not None and self.cpu <= 0:
            raise ValueError("cpu must be above 0%")
        return self


class Autoscaling(Model):
    min_replicas: Annotated[int, Field(ge=1, le=64)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=64)]
    target: Targets
    interval: Annotated[Duration, Field(ge=0.2)] = 15.0
    tolerance: Fraction = 0.1
    behavior: Behavior = Field(default_factory=Behavior)

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas {self.min_replicas} is above maxReplicas {self.max_replicas}"
            )
        return self
