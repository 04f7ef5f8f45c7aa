"""The rollout spec (``rollwise.yaml``) as pydantic models.

Field names follow Argo Rollouts where one exists (``setWeight``, ``previewReplicaCount``,
``scaleDownDelaySeconds``), so that its users read a spec without a manual. Every model forbids
unknown fields: a typo must fail loudly rather than be ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from rollwise.redact import MASK, is_secret_name
from rollwise.spec.analysis import (
    AgentMetric,
    AnalysisSettings,
    AnalysisStep,
    ErrorRateJudge,
    LatencyJudge,
)
from rollwise.spec.autoscaling import Autoscaling
from rollwise.spec.backend import BackendSpec, Resources, cluster_problems
from rollwise.spec.base import Model, http_url, name_label, placeholders
from rollwise.spec.duration import Duration
from rollwise.spec.flags import FlagKey, FlagSpec
from rollwise.spec.gate import Gate
from rollwise.spec.maintenance import Maintenance
from rollwise.spec.runbook import Runbook, RunbookKind
from rollwise.spec.secrets import SecretRef, ref_problems
from rollwise.spec.slo import Alerting, BurnWindow, ErrorBudgetPolicy, Objective
from rollwise.spec.smoke import SmokeTest
from rollwise.spec.traffic import Affinity, Traffic
from rollwise.spec.windows import ReleaseWindows

__all__ = [
    "A2ASpec",
    "Affinity",
    "AgentMetric",
    "Alerting",
    "AnalysisSettings",
    "AnalysisStep",
    "BackendSpec",
    "BackupSettings",
    "BlueGreenStrategy",
    "BurnWindow",
    "CanaryStrategy",
    "ErrorBudgetPolicy",
    "ErrorRateJudge",
    "HeaderMatch",
    "LatencyJudge",
    "Metadata",
    "Objective",
    "PauseStep",
    "Readiness",
    "Rollout",
    "RolloutSpec",
    "Runbook",
    "SetCanaryScale",
    "SetHeaderRoute",
    "SmokeTest",
    "Step",
    "Strategy",
    "Template",
    "Traffic",
    "Webhook",
]

TEMPLATE_FIELDS = frozenset({"port", "version", "replica", "python", "app", "revision"})


def _weight(value: int) -> int:
    if not 0 <= value <= 100:
        raise ValueError(f"{value} is not in 0..100")
    return value


Weight = Annotated[int, AfterValidator(_weight)]


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not host:port; write e.g. 127.0.0.1:8080")
    return value


HostPort = Annotated[str, AfterValidator(_host_port)]
Templated = Annotated[str, AfterValidator(placeholders(TEMPLATE_FIELDS))]


class Metadata(Model):
    name: Annotated[str, AfterValidator(name_label("name", "sample-agent"))]
    labels: dict[str, str] = Field(default_factory=dict)


class Readiness(Model):
    """HTTP readiness probe of one replica (Kubernetes' names and defaults where they fit).

    ``interval`` applies while a replica becomes ready (and after a failed probe);
    ``healthInterval`` once it is ready: a steady check (Kubernetes' default period, 10 s)
    that costs little with hundreds of replicas, while the proxy's passive health (failures
    on live requests) calls for a probe at once and an exit is seen at once.
    """

    path: str = "/healthz"
    interval: Duration = 1.0
    health_interval: Duration = 10.0
    timeout: Duration = 2.0
    initial_delay: Duration = 0.0
    success_threshold: Annotated[int, Field(ge=1)] = 1
    failure_threshold: Annotated[int, Field(ge=1)] = 3
    start_timeout: Duration = 60.0


class Template(Model):
    """How to start one replica: an argv (never a shell string) and its environment."""

    command: Annotated[list[Templated], Field(min_length=1)]
    env: dict[str, Templated] = Field(default_factory=dict)
    secret_env: list[str] = Field(default_factory=list)
    secret_refs: dict[str, SecretRef] = Field(default_factory=dict)  # values kept elsewhere
    cwd: str | None = None
    image: Templated | None = None  # Kubernetes: the container's image
    resources: Resources = Field(default_factory=Resources)  # Kubernetes: requests, limits
    readiness: Readiness = Field(default_factory=Readiness)
    stop_grace_period: Duration = 10.0

    def is_secret(self, name: str) -> bool:
        """Listed in ``secretEnv``, or named like a secret (``*_TOKEN``, ``*_KEY``, ...)."""
        return name in self.secret_env or is_secret_name(name)

    def redacted_env(self) -> dict[str, str]:
        """The environment as history shows it: secret values replaced by ``***``."""
        return {name: MASK if self.is_secret(name) else value for name, value in self.env.items()}

    def secret_names(self) -> list[str]:
        return [name for name in self.env if self.is_secret(name)]

    def secret_values(self) -> list[str]:
        return [self.env[name] for name in self.secret_names()]

    @model_validator(mode="after")
    def _command_not_blank(self) -> Self:
        if not self.command[0]:
            raise ValueError("command[0] is empty; it must name the program to run")
        return self


class A2ASpec(Model):
    card: str = "/.well-known/agent-card.json"
    allow_breaking: bool = False


class PauseStep(Model):
    duration: Duration | None = None


class SetCanaryScale(Model):
    replicas: Annotated[int, Field(ge=0)] | None = None
    weight: Weight | None = None
    match_traffic_weight: bool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [f for f in ("replicas", "weight", "match_traffic_weight") if getattr(self, f)]
        if len(given) != 1 and not (self.replicas == 0 and not given):
            raise ValueError("give exactly one of replicas, weight, matchTrafficWeight")
        return self


class HeaderMatch(Model):
    header_name: str
    header_value: str


class SetHeaderRoute(Model):
    name: str
    match: Annotated[list[HeaderMatch], Field(min_length=1)]


STEP_KINDS = ("set_weight", "pause", "analysis", "set_canary_scale", "set_header_route")


class Step(Model):
    """One canary step: exactly one of the kinds below, with an optional ``name``."""

    name: str | None = None
    set_weight: Weight | None = None
    pause: PauseStep | None = None
    analysis: AnalysisStep | None = None
    set_canary_scale: SetCanaryScale | None = None
    set_header_route: SetHeaderRoute | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Self:
        given = [k for k in STEP_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            kinds = ", ".join(to_camel(k) for k in STEP_KINDS)
            raise ValueError(f"a step has exactly one of {kinds}; this one has {len(given)}")
        return self

    @property
    def kind(self) -> str:
        return next(to_camel(k) for k in STEP_KINDS if getattr(self, k) is not None)


class CanaryStrategy(Model):
    steps: list[Step] = Field(default_factory=list)
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    scale_down_delay_seconds: Duration = 30.0

    @model_validator(mode="after")
    def _unique_step_names(self) -> Self:
        seen: set[str] = set()
        for step in self.steps:
            if step.name is not None:
                if step.name in seen:
                    raise ValueError(f"duplicate step name {step.name!r}; step names are unique")
                seen.add(step.name)
        start = self.analysis.starting_step
        if start is not None and start >= len(self.steps):
            raise ValueError(
                f"analysis.startingStep {start} is past the last step (index {len(self.steps) - 1})"
            )
        return self


class BlueGreenStrategy(Model):
    """Argo Rollouts' blue-green: the new revision runs as a preview (on ``previewListen``
    when given, else reachable with the override header), is checked, then takes every new
    request at once; the old one stays warm for ``scaleDownDelaySeconds``."""

    preview_listen: HostPort | None = None
    preview_replica_count: Annotated[int, Field(ge=1)] | None = None
    auto_promotion_enabled: bool = True
    auto_promotion_seconds: Duration | None = None
    scale_down_delay_seconds: Duration = 30.0
    pre_promotion_analysis: AnalysisStep | None = None
    post_promotion_analysis: AnalysisStep | None = None
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)

    @model_validator(mode="after")
    def _no_background(self) -> Self:
        if self.analysis.starting_step is not None:
            raise ValueError(
                "analysis.startingStep is for canary steps; blue-green runs "
                "prePromotionAnalysis and postPromotionAnalysis"
            )
        return self


class Strategy(Model):
    canary: CanaryStrategy | None = None
    blue_green: BlueGreenStrategy | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> Self:
        if self.canary is not None and self.blue_green is not None:
            raise ValueError("give one of canary or blueGreen, not both")
        return self

    @property
    def name(self) -> str:
        return "blueGreen" if self.blue_green is not None else "canary"

    @property
    def analysis_settings(self) -> AnalysisSettings:
        """The judges' settings of whichever strategy is used (the defaults without one)."""
        chosen = self.blue_green or self.canary
        return chosen.analysis if chosen is not None else AnalysisSettings()


class Webhook(Model):
    """Where to POST this app's events (all kinds, or those listed), as JSON or Slack text."""

    url: Annotated[str, AfterValidator(http_url("https://hooks.example/x"))]
    events: list[str] = Field(default_factory=list)
    format: Literal["json", "slack"] = "json"
    timeout: Duration = 5.0
    retries: Annotated[int, Field(ge=0, le=10)] = 3


class BackupSettings(Model):
    """Backups of the controller's whole store (every app's state, history and events) into
    ``<state>/backups/``, every ``schedule``, keeping the ``keep`` newest. With several apps
    asking, the shortest schedule and the largest ``keep`` win."""

    schedule: Duration
    keep: Annotated[int, Field(ge=1, le=1000)] = 24

    @model_validator(mode="after")
    def _not_too_often(self) -> Self:
        if self.schedule < 1.0:
            raise ValueError(f"schedule {self.schedule:g}s is too often; write at least 1s")
        return self


class RolloutSpec(Model):
    replicas: Annotated[int, Field(ge=1, le=64)] = 1
    backend: BackendSpec = Field(default_factory=BackendSpec)
    listen: HostPort = "127.0.0.1:8080"
    template: Template
    traffic: Traffic = Field(default_factory=Traffic)
    a2a: A2ASpec | None = None
    strategy: Strategy = Field(default_factory=Strategy)
    smoke_tests: list[SmokeTest] = Field(default_factory=list)
    revision_history_limit: Annotated[int, Field(ge=1)] = 10
    webhooks: list[Webhook] = Field(default_factory=list)
    progress_deadline_seconds: Duration = 600.0
    backup: BackupSettings | None = None
    slos: list[Objective] = Field(default_factory=list, validate_default=True)
    alerting: Alerting = Field(default_factory=Alerting)
    error_budget_policy: ErrorBudgetPolicy | None = None
    runbooks: dict[RunbookKind, Runbook] = Field(default_factory=dict)
    gates: list[Gate] = Field(default_factory=list)
    release_windows: ReleaseWindows | None = None
    maintenance: Maintenance = Field(default_factory=Maintenance)
    flags: dict[FlagKey, FlagSpec] = Field(default_factory=dict)
    autoscaling: Autoscaling | None = None

    @property
    def analysis_settings(self) -> AnalysisSettings:
        """The judges of this app's analyses: its strategy's and, for an A2A app on a cluster
        (whose router reads no body), the agents' own count of their A2A exchanges
        (``rollwise.toolkit.A2AOutcomes``) as the agent metric ``a2a``, failing on
        ``traffic.failureOutcomes``, unless the spec names an agent metric ``a2a`` itself."""
        settings = self.strategy.analysis_settings
        failing = self.cluster_a2a_failures
        if not failing or any(m.name == "a2a" for m in settings.agent_metrics):
            return settings
        counter = "rollwise_toolkit_a2a_exchanges_total"
        metric = AgentMetric(
            name="a2a", failures=f'{counter}{{outcome=~"{failing}"}}', total=counter
        )
        return settings.model_copy(update={"agent_metrics": [*settings.agent_metrics, metric]})

    @property
    def cluster_a2a_failures(self) -> str:
        """An A2A app on a cluster (whose router reads no body): its failing outcomes as a
        regular expression over the agents' own counter; '' for another app (rollwise's
        proxy reads what an app on this machine answers)."""
        if self.backend.kind != "kubernetes" or not self.speaks_a2a:
            return ""
        return "|".join(self.traffic.failure_outcomes)

    @property
    def speaks_a2a(self) -> bool:
        """The proxy reads this app's exchanges as A2A (``traffic.protocol``, by default
        whether the app has ``a2a:``)."""
        protocol = self.traffic.protocol
        return protocol == "a2a" or (protocol is None and self.a2a is not None)

    @field_validator("slos")
    @classmethod
    def _slo_names_unique(cls, slos: list[Objective]) -> list[Objective]:
        names = [o.name for o in slos]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"slos names must be unique; repeated: {', '.join(twice)}")
        return slos

    @field_validator("slos")
    @classmethod
    def _burn_rate_guardrails_have_slos(
        cls, slos: list[Objective], info: ValidationInfo
    ) -> list[Objective]:
        strategy = info.data.get("strategy")
        if slos or strategy is None:
            return slos
        steps = [
            (f"canary.steps[{i}].analysis", step.analysis)
            for i, step in enumerate(strategy.canary.steps if strategy.canary else [])
        ]
        if strategy.blue_green is not None:
            steps += [
                ("blueGreen.prePromotionAnalysis", strategy.blue_green.pre_promotion_analysis),
                ("blueGreen.postPromotionAnalysis", strategy.blue_green.post_promotion_analysis),
            ]
        for where, analysis in steps:
            if analysis is not None and analysis.max_burn_rate is not None:
                raise ValueError(
                    f"strategy.{where}.maxBurnRate watches the app's SLOs, and it has none; "
                    "add slos or remove maxBurnRate"
                )
        return slos

    @field_validator("alerting")
    @classmethod
    def _windows_hold_rows(cls, alerting: Alerting, info: ValidationInfo) -> Alerting:
        for objective in info.data.get("slos", []):
            for window in alerting.windows:
                if window.short_s < objective.resolution:
                    raise ValueError(
                        f"alerting window {window.name} is shorter than SLO {objective.name}'s "
                        "resolution; lengthen the window or shorten the resolution"
                    )
        return alerting

    @field_validator("error_budget_policy")
    @classmethod
    def _policy_names_slos(
        cls, policy: ErrorBudgetPolicy | None, info: ValidationInfo
    ) -> ErrorBudgetPolicy | None:
        names = [o.name for o in info.data.get("slos", [])]
        if policy is not None and not names:
            raise ValueError("errorBudgetPolicy needs slos to watch; add slos or remove it")
        unknown = sorted(set(policy.slos if policy else []) - set(names))
        if unknown:
            raise ValueError(
                f"slos names {', '.join(unknown)}, not among the app's slos ({', '.join(names)})"
            )
        return policy

    @model_validator(mode="after")
    def _smoke_names_unique(self) -> Self:
        for field, names in (
            ("smokeTests", [t.name for t in self.smoke_tests]),
            ("gates", [g.name for g in self.gates]),
        ):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{field} names must be unique; repeated: {', '.join(twice)}")
        return self

    @model_validator(mode="after")
    def _runs_on_its_backend(self) -> Self:
        if self.backend.kind == "kubernetes":
            canary = self.strategy.blue_green is None
            steps = self.strategy.canary.steps if self.strategy.canary is not None else []
            headers = [len(s.set_header_route.match) for s in steps if s.set_header_route]
            problems = cluster_problems(
                self.backend,
                self.template.image,
                canary,
                headers,
                self.autoscaling.target if self.autoscaling is not None else None,
                self.template.resources.requests.get("cpu"),
            )
            if problems:
                raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _secret_refs_fit(self) -> Self:
        template = self.template
        problems = ref_problems(template.secret_refs, template.env, self.backend.kind)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _preview_port_differs(self) -> Self:
        blue_green = self.strategy.blue_green
        if blue_green is not None and blue_green.preview_listen == self.listen:
            raise ValueError(
                f"strategy.blueGreen.previewListen {self.listen} is spec.listen; "
                "give the preview its own port"
            )
        return self


class Rollout(Model):
    """A whole ``rollwise.yaml`` document."""

    api_version: Literal["rollwise/v1"]
    kind: Literal["Rollout"]
    metadata: Metadata
    spec: RolloutSpec

    @property
    def name(self) -> str:
        return self.metadata.name
