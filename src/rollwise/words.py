"""The words of a rollout's story, as types: phases, pause reasons, event kinds, outcomes.

They are stored (status, history, events), shown (``rollwise get``, ``events``, the API),
sent (webhooks) and matched by people's scripts, so each is spelled once, here. Values are
Argo Rollouts' where it has a word for the thing (``Progressing``, ``CanaryPauseStep``,
``BlueGreenPause``); ``StrEnum`` members compare and serialise as their plain strings, so a
status stored before these types existed reads back unchanged.
"""

from __future__ import annotations

import re
from enum import StrEnum

__all__ = [
    "PREVIEW_SUFFIX",
    "EventKind",
    "Outcome",
    "PauseReason",
    "Phase",
    "Reason",
    "is_warning",
    "preview_app",
]

# The proxy serves a blue-green preview on its own listener, as an app of this name.
PREVIEW_SUFFIX = ".preview"


def preview_app(app: str) -> str:
    """The data plane's name for ``app``'s preview listener."""
    return f"{app}{PREVIEW_SUFFIX}"


class Phase(StrEnum):
    """Where an app's rollout stands (Argo Rollouts' phases)."""

    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    HEALTHY = "Healthy"
    DEGRADED = "Degraded"


class PauseReason(StrEnum):
    """Why a rollout is paused, and so what continues it."""

    CANARY_STEP = "CanaryPauseStep"  # a ``pause`` step: its duration, or ``promote``
    BLUE_GREEN = "BlueGreenPause"  # the preview waits for ``promote``
    USER = "user"  # ``rollwise pause`` or a weight set by hand: ``resume`` or ``promote``
    INCONCLUSIVE = "inconclusive"  # an analysis could not decide: ``promote`` or ``abort``
    GATE = "gate"  # a confirm-* gate holds: its hook answers 2xx, or ``approve``


class Outcome(StrEnum):
    """How a revision's rollout ended, in its history."""

    PENDING = "pending"
    PROMOTED = "promoted"
    REPLACED = "replaced"
    ABORTED = "aborted"
    SUPERSEDED = "superseded"
    ROLLED_BACK = "rolled back"


class Reason(StrEnum):
    """Why a rollout was aborted (the history's ``reason``; the Python API's
    ``RollbackReason`` uses the same strings)."""

    MANUAL = "manual"
    CRASH_LOOP = "crash loop"
    DEADLINE = "deployment timeout"
    ANALYSIS = "analysis failure"
    SMOKE = "smoke test failure"
    BREAKING = "breaking change"
    GATE = "gate"


class EventKind(StrEnum):
    """Every event the controller records; webhooks' ``events:`` filter names these."""

    # a rollout
    ROLLOUT_STARTED = "RolloutStarted"
    ROLLOUT_COMPLETED = "RolloutCompleted"
    ROLLOUT_ABORTED = "RolloutAborted"
    ROLLOUT_SUPERSEDED = "RolloutSuperseded"
    ROLLOUT_PAUSED = "RolloutPaused"
    ROLLOUT_RESUMED = "RolloutResumed"
    ROLLOUT_RETRIED = "RolloutRetried"
    PROMOTE_REQUESTED = "PromoteRequested"
    STEP_COMPLETED = "StepCompleted"
    WEIGHT_SET = "WeightSet"
    ROLLED_BACK = "RolledBack"
    ROLLBACK_STARTED = "RollbackStarted"
    PREVIEW_READY = "PreviewReady"
    ACTIVE_SWITCHED = "ActiveSwitched"
    # analysis and checks
    ANALYSIS_STARTED = "AnalysisStarted"
    ANALYSIS_PASSED = "AnalysisPassed"
    ANALYSIS_FAILED = "AnalysisFailed"
    ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
    SMOKE_TESTS_PASSED = "SmokeTestsPassed"
    SMOKE_TESTS_FAILED = "SmokeTestsFailed"
    SMOKE_CHECK_FAILED = "SmokeCheckFailed"
    SMOKE_CHECK_RECOVERED = "SmokeCheckRecovered"
    AGENT_CARD_CHANGED = "AgentCardChanged"
    AGENT_CARD_UNAVAILABLE = "AgentCardUnavailable"
    BREAKING_CHANGE_BLOCKED = "BreakingChangeBlocked"
    GATE_WAITING = "GateWaiting"
    GATE_OPENED = "GateOpened"
    GATE_APPROVED = "GateApproved"
    GATE_FAILED = "GateFailed"
    ROLLBACK_REQUESTED = "RollbackRequested"
    # revisions and replicas
    REVISION_STOPPED = "RevisionStopped"
    REVISION_PRUNED = "RevisionPruned"
    REVISION_CLEANED_UP = "RevisionCleanedUp"
    REPLICA_CRASHED = "ReplicaCrashed"
    CRASH_LOOP = "CrashLoop"
    OBJECT_NOT_OURS = "ObjectNotOurs"  # a cluster object of that name is not rollwise's
    REPLICA_EJECTED = "ReplicaEjected"
    REPLICA_RESTORED = "ReplicaRestored"
    # what was released: SLOs and their error budgets
    ALERT_FIRING = "AlertFiring"
    ALERT_RESOLVED = "AlertResolved"
    BUDGET_OVERRIDDEN = "BudgetOverridden"
    WINDOW_OVERRIDDEN = "WindowOverridden"
    # people
    DASHBOARD_ACTION = "DashboardAction"
    # the controller (app ``-``) and specs
    SPEC_APPLIED = "SpecApplied"
    PROXY_RESTARTED = "ProxyRestarted"
    BACKUP_TAKEN = "BackupTaken"
    BACKUP_FAILED = "BackupFailed"
    TASK_SUCCEEDED = "TaskSucceeded"
    TASK_FAILED = "TaskFailed"
    TASK_MISSED = "TaskMissed"
    FLAG_CHANGED = "FlagChanged"
    SCALED_UP = "ScaledUp"
    SCALED_DOWN = "ScaledDown"


_WARNING = re.compile(r"Fail|Abort|Block|Unavailable|Crash|Degraded|Error|Lost|RolledBack|NotOurs")


def is_warning(kind: str) -> bool:
    """Whether an event of this kind tells of something going wrong (red in ``rollwise
    events``, ``type: Warning`` as a cluster's Event)."""
    return bool(_WARNING.search(kind))
