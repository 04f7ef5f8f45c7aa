"""One app's persisted state, held in memory: its status, its spec and its revisions.

The store is the truth a restarted controller reads; within a running controller the app's
worker is the only writer of its status, and revisions are immutable once created (their
spec and version never change, only their outcome). So a pass reads everything from memory:
an idle app costs no store read and no spec parse. Writes go through to the store at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollwise.backends.base import Workload
from rollwise.controller.status import RolloutStatus
from rollwise.spec import Rollout, RolloutSpec, spec_from_dict
from rollwise.store import Store

__all__ = ["AppState", "RevisionInfo"]


@dataclass(frozen=True, slots=True)
class RevisionInfo:
    """An immutable revision: its number, version and parsed spec."""

    number: int
    version: str
    rollout: Rollout

    @property
    def spec(self) -> RolloutSpec:
        return self.rollout.spec

    @property
    def blue_green(self) -> bool:
        return self.rollout.spec.strategy.blue_green is not None

    def workload(
        self, app: str, base_dir: str, extra_env: tuple[tuple[str, str], ...] = ()
    ) -> Workload:
        template = self.rollout.spec.template
        return Workload(app, self.number, self.version, template, base_dir, extra_env, self.rollout)


class AppState:
    def __init__(self, app: str, store: Store) -> None:
        self.app = app
        self.store = store
        raw = store.get_status(app)
        self._status = RolloutStatus.model_validate(raw) if raw else RolloutStatus()
        self._revisions: dict[int, RevisionInfo] = {}
        self._spec: Rollout | None = None
        self._base_dir = "."

    # status

    def status(self) -> RolloutStatus:
        """A copy to change; ``save`` makes it the status."""
        return self._status.model_copy(deep=True)

    @property
    def current(self) -> RolloutStatus:
        """The saved status, to read only."""
        return self._status

    def save(self, status: RolloutStatus, now: float) -> None:
        """Write ``status`` (in the caller's transaction, if any), then hold it."""
        status.updated = now
        if status.phase != self._status.phase or not status.phase_since:
            status.phase_since = now
        self.store.put_status(self.app, status.model_dump(mode="json"))
        self._status = status.model_copy(deep=True)

    def reload(self) -> None:
        """Read the status back (a transaction that wrote it was rolled back)."""
        raw = self.store.get_status(self.app)
        self._status = RolloutStatus.model_validate(raw) if raw else RolloutStatus()

    # the app's spec as applied now

    @property
    def spec(self) -> Rollout:
        if self._spec is None:
            spec_json, self._base_dir = self.store.get_app(self.app)
            self._spec = spec_from_dict(spec_json, file=f"app {self.app}")
        return self._spec

    @property
    def base_dir(self) -> str:
        _ = self.spec
        return self._base_dir

    def spec_applied(self) -> None:
        """``apply`` stored a new spec: read it at next use."""
        self._spec = None

    # revisions

    def revision(self, number: int) -> RevisionInfo:
        """Revision ``number``; ``NotFoundError`` (naming the fix) when there is none."""
        info = self._revisions.get(number)
        if info is None:
            row = self.store.revision(self.app, number)
            info = RevisionInfo(number, row.version, spec_from_dict(row.spec))
            self._revisions[number] = info
        return info

    def forget(self, number: int) -> None:
        """The revision left the history."""
        self._revisions.pop(number, None)
