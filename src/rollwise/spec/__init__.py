"""The rollout spec: models of ``rollwise.yaml`` and loading with precise error lines."""

from rollwise.spec.duration import Duration, format_duration, parse_duration
from rollwise.spec.loading import apply_overrides, load_spec, parse_spec, spec_from_dict
from rollwise.spec.models import Rollout, RolloutSpec, Step, Template

__all__ = [
    "Duration",
    "Rollout",
    "RolloutSpec",
    "Step",
    "Template",
    "apply_overrides",
    "format_duration",
    "load_spec",
    "parse_duration",
    "parse_spec",
    "spec_from_dict",
]
