"""The mission's Python deployment API: async, typed, acting on a real controller.

``BlueGreenDeployment``, ``CanaryDeployment`` and ``RollbackManager`` drive the controller
that runs for the state directory (``.rollwise`` or ``$ROLLWISE_STATE_DIR``), or start one
inside the calling process; with no arguments they act on ``rollwise.yaml`` in the working
directory. The mission's module exported its 20 names together: so does this one
(``SmokeTests`` and its results live in ``rollwise.smoke``).
"""

from rollwise.deployments.bluegreen import (
    BlueGreenDeployment,
    DeploymentEnvironment,
    DeploymentResult,
    DeploymentStatus,
    EnvironmentState,
)
from rollwise.deployments.canary import (
    CanaryDeployment,
    CanaryDeploymentResult,
    CanaryPhase,
    MetricsSnapshot,
    TrafficConfig,
)
from rollwise.deployments.rollback import (
    DeploymentSnapshot,
    RollbackManager,
    RollbackReason,
    RollbackResult,
    RollbackStatus,
)
from rollwise.deployments.session import Session
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
    "Session",
    "SmokeTestSuite",
    "SmokeTests",
    "TestResult",
    "TestSeverity",
    "TestStatus",
    "TrafficConfig",
]
