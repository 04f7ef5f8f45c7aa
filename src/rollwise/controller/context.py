"""One pass, one context: everything a reconcile pass (or a command) reads, built once.

Argo Rollouts' ``rolloutContext`` is the model: the pass does not go back to the store or the
backend for what it already knows. The context carries the status being changed (a copy,
saved by the worker when ``changed``), the app's spec as applied, each revision's parsed spec
and version (from memory), each revision's health (read once from the backend), the clock's
``now``, and the app's checks, analyses and monitors; the events and history outcomes the
pass decides are kept with it and stored in one transaction with the status. Steps say what they
changed (``say``, ``mark``) and when the pass should run again if nothing else wakes it
(``wake_by``): a pause's end, a progress deadline, the next whole second of an analysis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rollwise.backends.base import Backend, RevisionHealth
from rollwise.controller.checks import ReleaseChecks
from rollwise.controller.events import Event
from rollwise.controller.judging import AppAnalyses
from rollwise.controller.monitor import SyntheticMonitor
from rollwise.controller.state import AppState, RevisionInfo
from rollwise.controller.status import RolloutStatus
from rollwise.spec import RolloutSpec
from rollwise.store import Store
from rollwise.words import EventKind, Outcome

__all__ = ["PassContext"]


@dataclass
class PassContext:
    app: str
    status: RolloutStatus
    state: AppState
    backend: Backend
    store: Store
    now: float
    checks: ReleaseChecks
    analyses: AppAnalyses
    monitor: SyntheticMonitor
    changed: bool = False
    wake_at: float = math.inf
    events: list[Event] = field(default_factory=list)
    finished: list[tuple[int, Outcome, str]] = field(default_factory=list)
    # per revision, the addresses of replicas on their way out (a scale-down drains them)
    draining: dict[int, set[str]] = field(default_factory=dict)
    _health: dict[int, RevisionHealth] = field(default_factory=dict)

    @property
    def spec(self) -> RolloutSpec:
        """The app's spec as applied now (not a revision's)."""
        return self.state.spec.spec

    @property
    def base_dir(self) -> str:
        return self.state.base_dir

    def revision(self, number: int) -> RevisionInfo:
        return self.state.revision(number)

    def health(self, number: int) -> RevisionHealth:
        """The revision's health as the backend reported it when the pass first asked."""
        health = self._health.get(number)
        if health is None:
            health = self._health[number] = self.backend.health(self.app, number)
        return health

    def emit(
        self,
        kind: EventKind,
        message: str,
        revision: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """An event, stored with the status it explains."""
        self.events.append(Event(kind, message, revision, data))

    def finish(self, number: int, outcome: Outcome, reason: str) -> None:
        """How a revision's rollout ended, for its history (stored with the status)."""
        self.finished.append((number, outcome, reason))

    def mark(self) -> None:
        self.changed = True

    def say(self, message: str) -> None:
        """Set the status message (a change only when it differs)."""
        if self.status.message != message:
            self.status.message = message
            self.changed = True

    def wake_by(self, when: float) -> None:
        """Run the next pass by ``when`` (unix seconds) at the latest."""
        self.wake_at = min(self.wake_at, when)
