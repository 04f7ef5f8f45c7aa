"""rollwise: progressive delivery for HTTP services and A2A agents.

The Python API (``BlueGreenDeployment``, ``CanaryDeployment``, ``RollbackManager`` and their
types) is imported on first use: ``import rollwise`` stays cheap for the CLI, which starts an
interpreter per command, and the API's imports (the controller, numpy, scipy) load only when
a program asks for them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

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
    "TrafficConfig",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        value = getattr(import_module("rollwise.deployments"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rollwise' has no attribute {name!r}")
