"""The mission's ``RUNBOOK``: event kind → steps, read from a spec's ``runbooks:``
(``spec/runbook.py``; shown by ``rollwise runbook``, docs/operations.md)."""

from __future__ import annotations

from pathlib import Path

from rollwise.spec.loading import load_spec
from rollwise.spec.models import Rollout

__all__ = ["runbook_of"]


def runbook_of(spec: str | Path | Rollout = "rollwise.yaml") -> dict[str, list[str]]:
    """The mission's ``RUNBOOK`` shape from a spec file (or a loaded spec): event kind →
    steps, the link last when there is one."""
    rollout = load_spec(Path(spec)) if isinstance(spec, str | Path) else spec
    return {
        kind: [*book.steps, *([book.link] if book.link else [])]
        for kind, book in rollout.spec.runbooks.items()
    }
