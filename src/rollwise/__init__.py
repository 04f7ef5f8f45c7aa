"""rollwise: progressive delivery for HTTP services and A2A agents."""

__version__ = "0.1.0"

# The version first: modules imported below read it.
from rollwise.deployments import (
    BlueGreenDeployment,
    DeploymentEnvironment,
    DeploymentResult,
    DeploymentSnapshot,
    DeploymentStatus,
    EnvironmentState,
    RollbackManager,
    RollbackReason,
    RollbackResult,
    RollbackStatus,
)

__all__ = [
    "BlueGreenDeployment",
    "DeploymentEnvironment",
    "DeploymentResult",
    "DeploymentSnapshot",
    "DeploymentStatus",
    "EnvironmentState",
    "RollbackManager",
    "RollbackReason",
    "RollbackResult",
    "RollbackStatus",
    "__version__",
]
