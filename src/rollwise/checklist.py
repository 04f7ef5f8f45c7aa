"""The release checklist as people and scripts read it: items with ✔ / ✗ / – and a fix.

The controller derives the items from an app's spec and its live state
(``controller/checklist.py``; ``GET /api/v1/apps/{app}/checklist``); ``rollwise checklist
APP`` prints them, ``rollwise deploy --require-checklist`` refuses while one fails, and
``release_checklist()`` is the mission's call, answering the same lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["ChecklistItem", "release_checklist"]

ItemState = Literal["pass", "fail", "info"]
MARKS: dict[str, str] = {"pass": "✔", "fail": "✗", "info": "–"}


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    item: str
    state: ItemState
    detail: str
    fix: str = ""  # what to do about it (a fail always has one)

    def as_json(self) -> dict[str, Any]:
        return {"item": self.item, "state": self.state, "detail": self.detail, "fix": self.fix}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChecklistItem:
        return cls(data["item"], data["state"], data["detail"], data.get("fix") or "")

    def line(self) -> str:
        """``✗ smoke tests: none defined — add smokeTests to the spec``."""
        text = f"{MARKS[self.state]} {self.item}: {self.detail}"
        return f"{text} — {self.fix}" if self.fix and self.state != "pass" else text


def release_checklist(app: str | None = None, state_dir: Path | None = None) -> list[str]:
    """The mission's ``release_checklist()``: the checklist of ``app`` (the only app when
    there is one) from the running controller, one line per item."""
    from rollwise.client import AdminClient, default_state_dir
    from rollwise.errors import UsageError

    with AdminClient(state_dir or default_state_dir()) as client:
        if app is None:
            names = [a["name"] for a in client.request("GET", "/apps")]
            if len(names) != 1:
                raise UsageError(
                    f"name the app whose checklist to print: {', '.join(names) or 'none yet'}"
                )
            app = names[0]
        rows = client.request("GET", f"/apps/{app}/checklist")
    return [ChecklistItem.from_json(row).line() for row in rows]
