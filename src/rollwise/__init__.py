"""rollwise: progressive delivery for HTTP services and A2A agents."""

__version__ = "0.1.0"

# The version first: modules imported below read it.
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
