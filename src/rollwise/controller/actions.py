"""The per-app commands by name, as the admin API and the dashboard take them: one place
that reads a command's body and calls it."""

from __future__ import annotations

from typing import Any

from rollwise.controller.commands import Commands
from rollwise.errors import NotFoundError, UsageError

__all__ = ["ACTIONS", "ACTIONS_WITH_BODY", "revision_number", "run_action"]

ACTIONS = ("promote", "abort", "retry", "pause", "resume", "undo", "weight", "cleanup")
ACTIONS_WITH_BODY = frozenset({"promote", "undo", "cleanup", "weight"})
MAX_INT = 2**63 - 1  # SQLite's INTEGER


def revision_number(value: Any, name: str, what: str = "a revision number") -> int | None:
    """A revision number from a JSON body (None when absent)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INT:
        raise UsageError(f"{name} must be {what}, not {value!r}")
    return value


async def run_action(commands: Commands, name: str, body: dict[str, Any]) -> list[str] | None:
    """Run the command ``name`` with ``body``; what ``cleanup`` removed, else ``None``."""
    if name == "promote":
        await commands.promote(full=bool(body.get("full", False)))
    elif name == "abort":
        await commands.abort()
    elif name == "retry":
        await commands.retry()
    elif name == "pause":
        await commands.pause()
    elif name == "resume":
        await commands.resume()
    elif name == "undo":
        target = revision_number(body.get("to_revision"), "to_revision")
        await commands.undo(target, str(body.get("reason") or "manual"))
    elif name == "weight":
        weight = body.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int):
            raise UsageError(f"weight must be a number 0..100, not {weight!r}")
        await commands.set_weight(weight)
    elif name == "cleanup":
        revision = revision_number(body.get("revision"), "cleanup's revision")
        if revision is None:
            raise UsageError("cleanup needs a revision number, e.g. {'revision': 3}")
        return await commands.cleanup(revision)
    else:
        raise NotFoundError(f"no command {name!r}; commands: {', '.join(ACTIONS)}")
    return None
