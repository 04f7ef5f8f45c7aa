"""One app's release checks, as gates of its rollouts: the agent-card check (an A2A app's
candidate must not break the clients of the revision it replaces) and the smoke tests.

Before a revision's first request (``preTraffic`` for a canary, ``preview`` for blue-green)
both run against its own replicas, the card check first; after promotion
(``postPromotion``) the smoke tests run where live traffic enters (the proxy's listener, a
cluster's stable Service). The backend's ``Reach`` says how each is reached. Each gate runs
once per rollout (``status.gates_passed``); every verdict is an event with its evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx

from rollwise.a2a.card import CARD_PATH, fetch_card
from rollwise.a2a.diff import CardDiff, diff_cards
from rollwise.backends.base import DIRECT, Reach, RevisionHealth
from rollwise.controller.gates import Gates
from rollwise.controller.state import RevisionInfo
from rollwise.controller.status import RolloutStatus
from rollwise.smoke import SmokeTestSuite, Target, run_on_targets
from rollwise.spec import Rollout
from rollwise.spec.smoke import SmokeTest
from rollwise.store import Store
from rollwise.words import EventKind, Reason

if TYPE_CHECKING:
    from rollwise.controller.release_gates import ReleaseGates

__all__ = ["GateOutcome", "ReleaseChecks"]

Emit = Callable[[EventKind, str, int | None, dict[str, Any] | None], None]
# the revision whose clients a candidate must keep, and its health
Baseline = tuple[RevisionInfo, RevisionHealth]


@dataclass(frozen=True, slots=True)
class GateOutcome:
    state: Literal["pass", "wait", "fail"]
    detail: str = ""
    reason: Reason = Reason.SMOKE


PASS = GateOutcome("pass")


def card_path(rollout: Rollout) -> str:
    return rollout.spec.a2a.card if rollout.spec.a2a is not None else CARD_PATH


class ReleaseChecks:
    def __init__(
        self,
        app: str,
        store: Store,
        emit: Emit,
        wake: Callable[[], None],
        hooks: ReleaseGates,
        reach: Reach = DIRECT,
    ) -> None:
        self.app = app
        self.reach = reach  # how the replicas are reached (a cluster's: maybe its API server)
        self.store = store
        self.emit = emit
        self.gates = Gates(wake)
        self.hooks = hooks

    def targets(self, revision: RevisionInfo, health: RevisionHealth | None) -> list[Target]:
        """Each ready replica of ``revision`` (``health`` given), else the app's entry."""
        number, version, rollout = revision.number, revision.version, revision.rollout
        if health is not None:
            where = [
                (self.reach.url(r.address), f"revision {number} at {r.address}")
                for r in health.replicas
                if r.state == "ready"
            ]
        else:
            where = [self.reach.entry(self.app, rollout.spec)]
        return [
            Target(url, self.app, number, version, card_path(rollout), label)
            for url, label in where
        ]

    def before_traffic(
        self,
        status: RolloutStatus,
        key: str,
        revision: RevisionInfo,
        health: RevisionHealth,
        baseline: Baseline | None,
    ) -> GateOutcome:
        """The card check (against ``baseline``, the revision whose clients it must keep),
        then the smoke tests, on the revision's own ready replicas."""
        targets = self.targets(revision, health)
        outcome = self._card_gate(status, key, revision, targets, baseline)
        if outcome.state != "pass":
            return outcome
        return self._smoke_gate(status, key, revision, targets)

    def after_promotion(self, status: RolloutStatus, revision: RevisionInfo) -> GateOutcome:
        return self._smoke_gate(status, "postPromotion", revision, self.targets(revision, None))

    async def smoke_now(
        self, revision: RevisionInfo, health: RevisionHealth | None, url: str | None
    ) -> SmokeTestSuite:
        """``rollwise smoke``: against ``url``, the ready replicas (``health``), or the app's
        entry. Changes nothing."""
        rollout = revision.rollout
        if url is not None:
            targets = [Target(url, self.app, revision.number, revision.version, card_path(rollout))]
        else:
            targets = self.targets(revision, health)
        # a URL of the user's own never gets the cluster's credentials
        return await _smoke(rollout.spec.smoke_tests, targets, DIRECT if url else self.reach)

    def _smoke_gate(
        self,
        status: RolloutStatus,
        key: str,
        revision: RevisionInfo,
        targets: list[Target],
    ) -> GateOutcome:
        number = revision.number
        tests = revision.spec.smoke_tests
        if not tests or key in status.gates_passed:
            return PASS
        suite = self.gates.result(f"{number}/{key}", lambda: _smoke(tests, targets, self.reach))
        if suite is None:
            return GateOutcome("wait", f"smoke tests ({key}) of revision {number} running")
        data = {"gate": key, **suite.as_json()}
        if suite.success:
            status.gates_passed.append(key)
            message = f"smoke tests ({key}): {suite.summary()}"
            self.emit(EventKind.SMOKE_TESTS_PASSED, message, number, data)
            return PASS
        version = revision.version
        detail = f"smoke tests ({key}) of revision {number} ({version}) failed: {suite.summary()}"
        self.emit(EventKind.SMOKE_TESTS_FAILED, detail, number, data)
        return GateOutcome("fail", detail, Reason.SMOKE)

    def _card_gate(
        self,
        status: RolloutStatus,
        key: str,
        revision: RevisionInfo,
        targets: list[Target],
        baseline: Baseline | None,
    ) -> GateOutcome:
        number = revision.number
        a2a = revision.spec.a2a
        done = f"{key}.card"
        if a2a is None or done in status.gates_passed or not targets:
            return PASS
        before = baseline[0].number if baseline is not None else None
        old_targets = self.targets(*baseline) if baseline is not None else []
        result = self.gates.result(
            f"{number}/{done}", lambda: self._compare(number, targets[0], before, old_targets)
        )
        if result is None:
            return GateOutcome("wait", f"checking the agent card of revision {number}")
        diff, problem = result
        if problem:
            detail = f"agent card of revision {number}: {problem}"
            self.emit(EventKind.AGENT_CARD_UNAVAILABLE, detail, number, None)
            return GateOutcome("fail", detail, Reason.SMOKE)
        breaks = diff.breaking if diff is not None else []
        if diff is not None and diff.changes:
            data = {"baseline": before, **diff.as_json()}
            summary = "; ".join(str(c) for c in diff.changes)
            message = f"revision {before} → {number}: {summary}"
            self.emit(EventKind.AGENT_CARD_CHANGED, message, number, data)
        if breaks and not a2a.allow_breaking:
            listed = "; ".join(str(c) for c in breaks)
            detail = (
                f"the agent card of revision {number} breaks clients of revision {before} "
                f"({len(breaks)} breaking change{'s' if len(breaks) > 1 else ''}): {listed}. "
                "Keep them compatible, or set spec.a2a.allowBreaking: true to release anyway"
            )
            self.emit(EventKind.BREAKING_CHANGE_BLOCKED, detail, number, {"baseline": before})
            return GateOutcome("fail", detail, Reason.BREAKING)
        status.gates_passed.append(done)
        return PASS

    async def _compare(
        self, number: int, target: Target, before: int | None, old_targets: list[Target]
    ) -> tuple[CardDiff | None, str]:
        """Fetch (and keep) the candidate's card from its own replica; diff it against the
        card the baseline served (kept, else fetched now). ``(diff, problem)``."""
        async with self.reach.client(10.0) as client:
            try:
                fetched = await fetch_card(client, target.url, target.card_path)
            except (ValueError, httpx.HTTPError) as exc:
                return None, str(exc) or type(exc).__name__
            self.store.put_card(self.app, number, fetched.card)
            if before is None:
                return None, ""
            old = self.store.card(self.app, before)
            if old is None and old_targets:
                try:
                    old = (
                        await fetch_card(client, old_targets[0].url, old_targets[0].card_path)
                    ).card
                except (ValueError, httpx.HTTPError):
                    old = None
                if old is not None:
                    self.store.put_card(self.app, before, old)
        if old is None:
            return None, ""
        return diff_cards(old, fetched.card), ""

    async def fetch_missing_cards(
        self, revisions: list[RevisionInfo], health: dict[int, RevisionHealth]
    ) -> None:
        """Fetch and keep the card of each running A2A revision that has none kept."""
        kept = self.store.cards(self.app)
        async with self.reach.client(5.0) as client:
            for revision in revisions:
                number = revision.number
                if number in kept or revision.spec.a2a is None:
                    continue
                targets = self.targets(revision, health[number])
                if not targets:
                    continue
                try:
                    fetched = await fetch_card(client, targets[0].url, targets[0].card_path)
                except (ValueError, httpx.HTTPError):
                    continue
                self.store.put_card(self.app, number, fetched.card)

    def forget(self, number: int) -> None:
        self.gates.forget(number)
        self.hooks.forget(number)

    def close(self) -> None:
        self.gates.close()
        self.hooks.close()


async def _smoke(tests: Sequence[SmokeTest], targets: list[Target], reach: Reach) -> SmokeTestSuite:
    # no timeout of the client's own: each test's ``timeout`` bounds it
    async with reach.client(None) as client:
        return await run_on_targets(tests, targets, client)
