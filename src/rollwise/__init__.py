"""rollwise: progressive delivery for HTTP services and A2A agents.

The Python API (``BlueGreenDeployment``, ``CanaryDeployment``, ``RollbackManager``,
``SmokeTests`` and their types; ``SLAWindow``, ``ProductionDashboard``,
``summarise_metrics``) is imported on first use: ``import rollwise`` stays cheap for
the CLI, which starts an interpreter per command, and the API's imports (the controller,
numpy, scipy) load only when a program asks for them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollwise._version import __version__
    from rollwise.autoscaling import Autoscaler
    from rollwise.bundle import Artifact, bundle_artifacts
    from rollwise.checklist import release_checklist
    from rollwise.deployments import (
        BlueGreenDeployment,
        CanaryDeployment,
        CanaryDeploymentResult,
        CanaryPhase,
        DeploymentEnvironment,
        DeploymentResult,
        DeploymentSnapshot,
        DeploymentStatus,
        EnvironmentState,
        MetricsSnapshot,
        RollbackManager,
        RollbackReason,
        RollbackResult,
        RollbackStatus,
        TrafficConfig,
    )
    from rollwise.flags import FeatureFlags
    from rollwise.maintenance import MaintenanceScheduler, MaintenanceTask
    from rollwise.runbooks import runbook_of
    from rollwise.slo.api import (
        ProductionDashboard,
        ProductionMetric,
        SLAWindow,
        summarise_metrics,
    )
    from rollwise.smoke import SmokeTests, SmokeTestSuite, TestResult, TestSeverity, TestStatus
    from rollwise.store.backup import list_backups

__all__ = [
    "Artifact",
    "Autoscaler",
    "BlueGreenDeployment",
    "CanaryDeployment",
    "CanaryDeploymentResult",
    "CanaryPhase",
    "DeploymentEnvironment",
    "DeploymentResult",
    "DeploymentSnapshot",
    "DeploymentStatus",
    "EnvironmentState",
    "FeatureFlags",
    "MaintenanceScheduler",
    "MaintenanceTask",
    "MetricsSnapshot",
    "ProductionDashboard",
    "ProductionMetric",
    "RollbackManager",
    "RollbackReason",
    "RollbackResult",
    "RollbackStatus",
    "SLAWindow",
    "SmokeTestSuite",
    "SmokeTests",
    "TestResult",
    "TestSeverity",
    "TestStatus",
    "TrafficConfig",
    "__version__",
    "bundle_artifacts",
    "list_backups",
    "release_checklist",
    "runbook_of",
    "summarise_metrics",
]


_SMOKE = frozenset({"SmokeTestSuite", "SmokeTests", "TestResult", "TestSeverity", "TestStatus"})
_OPS = frozenset({"ProductionDashboard", "ProductionMetric", "SLAWindow", "summarise_metrics"})
_HOMES = {
    "Artifact": "rollwise.bundle",
    "Autoscaler": "rollwise.autoscaling",
    "bundle_artifacts": "rollwise.bundle",
    "list_backups": "rollwise.store.backup",
    "release_checklist": "rollwise.checklist",
    "MaintenanceScheduler": "rollwise.maintenance",
    "FeatureFlags": "rollwise.flags",
    "MaintenanceTask": "rollwise.maintenance",
    "runbook_of": "rollwise.runbooks",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read from the installed metadata: 30 ms, when asked for
        from rollwise._version import __version__

        globals()[name] = __version__
        return __version__
    if name in __all__:
        home = _HOMES.get(name, "rollwise.deployments")
        if name in _SMOKE:
            home = "rollwise.smoke"
        elif name in _OPS:
            home = "rollwise.slo.api"
        value = getattr(import_module(home), name)
        value.__module__ = "rollwise"  # shown, documented and pickled as rollwise.<name>
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rollwise' has no attribute {name!r}")
