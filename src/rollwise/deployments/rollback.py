"""``RollbackManager``: the mission's rollback API over the controller's ``undo`` and ``abort``.

    result = await RollbackManager(current_version="1.2.0", previous_version="1.1.0").rollback(
        reason=RollbackReason.HEALTH_CHECK_FAILURE
    )

A rollback is the controller's ``undo``: instant (a routing change) when the target still
runs — the stable revision under a canary, or a replaced one kept warm for
``scaleDownDelaySeconds`` — else the target is started and takes all traffic once ready,
without steps or analysis. The result says which it was and how long it took.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from rollwise.deployments.session import Closing, Session
from rollwise.errors import ConflictError, NotFoundError

__all__ = [
    "DeploymentSnapshot",
    "RollbackManager",
    "RollbackReason",
    "RollbackResult",
    "RollbackStatus",
]


class RollbackReason(StrEnum):
    HEALTH_CHECK_FAILURE = "health check failure"
    ANALYSIS_FAILURE = "analysis failure"
    SMOKE_TEST_FAILURE = "smoke test failure"
    DEPLOYMENT_TIMEOUT = "deployment timeout"
    CRASH_LOOP = "crash loop"
    MANUAL = "manual"


class RollbackStatus(StrEnum):
    SUCCEEDED = "succeeded"
    NOT_NEEDED = "not needed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DeploymentSnapshot:
    """One revision as the history keeps it: what ran, who made it, why and how it ended."""

    revision: int
    version: str
    strategy: str
    created_at: float
    created_by: str
    cause: str
    outcome: str
    reason: str
    finished_at: float | None

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> DeploymentSnapshot:
        return cls(
            revision=int(row["revision"]),
            version=str(row["version"]),
            strategy=str(row["strategy"]),
            created_at=float(row["created_at"]),
            created_by=str(row["created_by"]),
            cause=str(row["cause"]),
            outcome=str(row["outcome"]),
            reason=str(row["reason"]),
            finished_at=row["finished_at"],
        )


@dataclass(frozen=True, slots=True)
class RollbackResult:
    success: bool
    status: RollbackStatus
    reason: RollbackReason
    from_version: str | None
    target_version: str | None
    to_revision: int | None
    instant: bool
    duration_seconds: float
    message: str

    @property
    def to_version(self) -> str | None:
        """``target_version`` by its other name."""
        return self.target_version


@dataclass
class _Active:
    kind: str
    version: str
    since: float = field(default_factory=time.time)


class RollbackManager(Closing):
    """Roll an app back, stop its rollouts, and keep track of deployments in flight."""

    def __init__(
        self,
        current_version: str | None = None,
        previous_version: str | None = None,
        *,
        app: str | None = None,
        spec_file: str | Path | None = None,
        state_dir: str | Path | None = None,
        timeout: float = 300.0,
        session: Session | None = None,
    ) -> None:
        self.current_version = current_version
        self.previous_version = previous_version
        self.timeout = timeout
        self.session = session or Session(app, spec_file, state_dir)
        self.active: dict[str, _Active] = {}

    async def rollback(
        self,
        reason: RollbackReason | str = RollbackReason.MANUAL,
        target_version: str | None = None,
        force: bool = False,
    ) -> RollbackResult:
        """Go back to ``target_version`` (default: ``previous_version``, else the revision that
        was stable before the current one). Unless ``force``, refuse when the app does not run
        ``current_version``: a rollback must not undo someone else's release."""
        why = RollbackReason(reason)
        started = time.monotonic()
        view = await self.session.view()
        running = _versions(view)
        current = running.get(view["canary"]) or running.get(view["stable"])
        if self.current_version and not force and self.current_version not in running.values():
            return self._result(
                False,
                RollbackStatus.FAILED,
                why,
                current,
                None,
                started,
                f"{self.session.app} runs {', '.join(sorted(running.values())) or 'nothing'}, "
                f"not {self.current_version}; pass force=True to roll back anyway",
            )
        wanted = target_version or self.previous_version
        try:
            revision = await self._revision_of(wanted) if wanted else None
            if revision is not None and revision == view["stable"] and view["canary"] is None:
                return self._result(
                    True,
                    RollbackStatus.NOT_NEEDED,
                    why,
                    current,
                    wanted,
                    started,
                    f"{wanted} is already stable",
                    revision,
                )
            after = await self.session.command("undo", {"to_revision": revision, "reason": why})
        except (ConflictError, NotFoundError) as exc:
            return self._result(
                False, RollbackStatus.FAILED, why, current, wanted, started, str(exc)
            )
        target = int(after["stable"] if after["canary"] is None else after["canary"])
        instant = after["stable"] == target and after["canary"] is None
        final, ok = await self.session.wait(
            lambda v: v["stable"] == target and v["canary"] is None and v["phase"] == "Healthy",
            self.timeout,
        )
        to_version = _versions(final).get(target)
        if not ok:
            message = f"rollback to revision {target} did not finish: {final['message']}"
            return self._result(
                False, RollbackStatus.FAILED, why, current, to_version, started, message, target
            )
        return self._result(
            True,
            RollbackStatus.SUCCEEDED,
            why,
            current,
            to_version,
            started,
            f"revision {target} ({to_version}) serves all traffic",
            target,
            instant,
        )

    async def route_all_traffic(self, target_version: str) -> RollbackResult:
        """Send every request to ``target_version`` (instant if it still runs)."""
        return await self.rollback(RollbackReason.MANUAL, target_version, force=True)

    async def stop_deployments(self) -> list[str]:
        """Abort the rollout in progress, if any; returns the versions stopped."""
        view = await self.session.view()
        if view["canary"] is None or view["aborted"]:
            return []
        version = _versions(view)[view["canary"]]
        await self.session.command("abort")
        for key in [k for k, a in self.active.items() if a.version == version]:
            del self.active[key]
        return [version]

    async def cleanup_failed_deployment(self, version: str) -> list[str]:
        """Stop what is left of failed revisions of ``version`` and delete their logs."""
        removed: list[str] = []
        for row in await self.session.history():
            if row["version"] == version and row["outcome"] in ("aborted", "superseded"):
                answer = await self.session.command("cleanup", {"revision": row["revision"]})
                removed.extend(answer["removed"])
        return removed

    def add_active_deployment(self, deployment_id: str, kind: str, version: str) -> None:
        self.active[deployment_id] = _Active(kind, version)

    def remove_active_deployment(self, deployment_id: str) -> None:
        self.active.pop(deployment_id, None)

    @property
    def active_deployments(self) -> dict[str, tuple[str, str]]:
        """``deployment_id → (kind, version)`` of the deployments registered as in flight."""
        return {k: (a.kind, a.version) for k, a in self.active.items()}

    async def history(self) -> list[DeploymentSnapshot]:
        return [DeploymentSnapshot.from_json(row) for row in await self.session.history()]

    async def _revision_of(self, version: str) -> int:
        rows = await self.session.history()
        good = [r for r in rows if r["version"] == version and r["outcome"] != "aborted"]
        chosen = good or [r for r in rows if r["version"] == version]
        if not chosen:
            raise NotFoundError(
                f"{self.session.app} has no revision of version {version}; "
                "`rollwise history` lists them"
            )
        return int(chosen[-1]["revision"])

    def _result(
        self,
        success: bool,
        status: RollbackStatus,
        reason: RollbackReason,
        from_version: str | None,
        to_version: str | None,
        started: float,
        message: str,
        to_revision: int | None = None,
        instant: bool = False,
    ) -> RollbackResult:
        return RollbackResult(
            success=success,
            status=status,
            reason=reason,
            from_version=from_version,
            target_version=to_version,
            to_revision=to_revision,
            instant=instant,
            duration_seconds=round(time.monotonic() - started, 3),
            message=message,
        )


def _versions(view: dict[str, Any]) -> dict[int, str]:
    return {int(r["number"]): str(r["version"]) for r in view["revisions"]}
