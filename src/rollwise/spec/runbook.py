"""``runbooks:``: what a person does when an event happens, keyed by the event's kind.

    runbooks:
      RolloutAborted:
        steps: ["read the evidence: rollwise get APP", "the canary's logs: rollwise logs APP"]
        link: https://wiki.example.com/runbooks/aborted
      AlertFiring:
        steps: ["rollwise slo APP", "rollwise undo APP if the release is the cause"]

A runbook is shown by ``rollwise get`` while its event happened in the current phase, by
``rollwise runbook APP [EVENT]``, and travels with the event to webhooks (JSON ``runbook``,
a Slack line) and to Alertmanager (``AlertFiring``'s steps as an annotation).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from rollwise.spec.base import Model, http_url
from rollwise.words import EventKind

__all__ = ["Runbook", "RunbookKind"]


def _event_kind(value: str) -> str:
    if value not in {k.value for k in EventKind}:
        known = ", ".join(sorted(k.value for k in EventKind))
        raise ValueError(f"{value!r} is not an event kind rollwise records; one of: {known}")
    return value


RunbookKind = Annotated[str, AfterValidator(_event_kind)]


class Runbook(Model):
    """The steps to take (at least one), and where the full runbook lives."""

    steps: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    link: Annotated[str, AfterValidator(http_url("https://wiki.example.com/runbooks/x"))] | None = (
        None
    )

    def as_json(self) -> dict[str, object]:
        return {"steps": list(self.steps), "link": self.link}

    def line(self) -> str:
        """One line for chat: the steps, then the link."""
        text = "; ".join(self.steps)
        return f"{text} ({self.link})" if self.link else text
