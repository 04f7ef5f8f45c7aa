"""The per-app commands by name, as the admin API and the dashboard take them: one place
that reads a command's body and calls it."""

from __future__ import annotations

from typing import Any

from rollwise.controller.commands import Commands
from rollwise.errors import NotFoundError, UsageError

__all__ = ["ACTIONS", "ACTIONS_WITH_BODY", "revision_number", "run_action"]

ACTIONS = (
    "promote",
    "abort",
    "retry",
    "pause",
    "resume",
    "undo",
    "weight",
    "cleanup",
    "approve",
)
ACTIONS_WITH_BODY = frozenset({"promote", "undo", "cleanup", "weight", "approve"})
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
    plain = {
        "abort": commands.abort,
        "retry": commands.retry,
        "pause": commands.pause,
        "resume": commands.resume,
    }
    if name in plain:
        await plain[name]()
    elif name == "promote":
        await commands.promote(full=bool(body.get("full", False)))
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
    elif name == "approve":
        await _approve(commands, body)
    else:
        raise NotFoundError(f"no command {name!r}; commands: {', '.join(ACTIONS)}")
    return None


async def _approve(commands: Commands, body: dict[str, Any]) -> None:
    gate, by, note = body.get("gate"), body.get("by"), body.get("note") or ""
    if gate is not None and not isinstance(gate, str):
        raise UsageError(f"approve's gate must be a gate's name, not {gate!r}")
    if not isinstance(by, str) or not by.strip() or not isinstance(note, str):
        raise UsageError("approve needs who approves, e.g. {'by': 'alice', 'note': '...'}")
    await commands.approve(gate, by.strip(), note.strip())
