"""rollwise: progressive delivery for HTTP services and A2A agents.

The Python API (``BlueGreenDeployment``, ``CanaryDeployment``, ``RollbackManager``,
``SmokeTests`` and their types) is imported on first use: ``import rollwise`` stays cheap for
the CLI, which starts an interpreter per command, and the API's imports (the controller,
numpy, scipy) load only when a program asks for them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from rollwise._version import __version__

if TYPE_CHECKING:
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
    from rollwise.smoke import SmokeTests, SmokeTestSuite, TestResult, TestSeverity, TestStatus

__all__ = [
    "BlueGreenDeployment",
    "CanaryDeployment",
    "CanaryDeploymentResult",
    "CanaryPhase",
    "DeploymentEnvironment",
    "DeploymentResult",
    "DeploymentSnapshot",
    "DeploymentStatus",
    "EnvironmentState",
    "MetricsSnapshot",
    "RollbackManager",
    "RollbackReason",
    "RollbackResult",
    "RollbackStatus",
    "SmokeTestSuite",
    "SmokeTests",
    "TestResult",
    "TestSeverity",
    "TestStatus",
    "TrafficConfig",
    "__version__",
]


_SMOKE = frozenset({"SmokeTestSuite", "SmokeTests", "TestResult", "TestSeverity", "TestStatus"})


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        home = "rollwise.smoke" if name in _SMOKE else "rollwise.deployments"
        value = getattr(import_module(home), name)
        value.__module__ = "rollwise"  # shown, documented and pickled as rollwise.<name>
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rollwise' has no attribute {name!r}")
