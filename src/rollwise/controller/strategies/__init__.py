"""The rollout strategies, side by side, with one shape: how many replicas the new revision
needs now (``replicas``) and one pass over its rollout (``step``), which moves the status on
the context and hands back a ``Decision``.

``canary`` moves traffic in steps; ``bluegreen`` runs a preview and swaps at once; ``verify``
is what both do after a promotion that has checks. The gates and analyses they share are in
``common``. A new strategy is one module here with the same two functions, chosen in
``strategy_for``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from rollwise.controller.context import PassContext
from rollwise.controller.decisions import Decision
from rollwise.controller.state import RevisionInfo
from rollwise.controller.strategies.bluegreen import BlueGreen
from rollwise.controller.strategies.canary import Canary
from rollwise.controller.strategies.verify import needs_verification, verify

__all__ = ["Strategy", "needs_verification", "strategy_for", "verify"]


class Strategy(Protocol):
    def replicas(self, ctx: PassContext, revision: RevisionInfo) -> int:
        """How many replicas of the new revision should run now."""

    def step(self, ctx: PassContext, revision: RevisionInfo) -> Awaitable[Decision]:
        """One pass over the rollout of ``revision`` (its replicas exist)."""


CANARY = Canary()
BLUE_GREEN = BlueGreen()


def strategy_for(ctx: PassContext, revision: RevisionInfo) -> Strategy:
    """The revision's own strategy; a first release (nothing to compare with) is a canary
    without steps, as in Argo Rollouts."""
    if revision.blue_green and ctx.status.stable is not None:
        return BLUE_GREEN
    return CANARY
