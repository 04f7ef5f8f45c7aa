"""``gates:``: release gates in Flagger's words, as HTTP hooks or manual approvals.

    gates:
      - name: load-test-done         # a hook: POSTed JSON, a 2xx opens the gate
        type: confirm-traffic-increase
        url: http://127.0.0.1:9090/gate/check
      - name: product-owner          # no url: held until `rollwise approve APP --gate ...`
        type: confirm-promotion

The six kinds are Flagger's webhook types, with the same moments and meanings:

- ``confirm-rollout``: before the canary (or the preview) starts; held, nothing runs;
- ``pre-rollout``: once the new revision is ready, before its first request; a refusal
  aborts the rollout;
- ``confirm-traffic-increase``: before each step that raises the canary's weight; held;
- ``confirm-promotion``: before the new revision takes all traffic; held;
- ``post-rollout``: once the rollout ended (promoted or aborted); told, changes nothing;
- ``rollback``: asked every ``interval`` while the rollout runs; a 2xx aborts it.

A ``confirm-*`` gate without ``url`` is a manual approval. One with a ``url`` opens when
the hook answers 2xx or when someone approves it by hand, whichever comes first.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from rollwise.spec.base import Model, http_url, name_label
from rollwise.spec.duration import Duration

__all__ = ["CONFIRMING", "Gate", "GateType"]

GateType = Literal[
    "confirm-rollout",
    "pre-rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
]
# the gates that hold a rollout until they open; only these can be approved by hand
CONFIRMING: frozenset[str] = frozenset(
    {"confirm-rollout", "confirm-traffic-increase", "confirm-promotion"}
)


class Gate(Model):
    """One gate: its kind, and the hook it calls (none: a manual approval)."""

    name: Annotated[str, AfterValidator(name_label("gate name", "qa-signoff"))]
    type: GateType
    url: Annotated[str, AfterValidator(http_url("http://127.0.0.1:9090/gate/check"))] | None = None
    timeout: Duration = 10.0
    # how long a hook that held (or, for ``rollback``, did not ask) waits before it is asked
    # again
    interval: Duration = 5.0
    metadata: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _hook_or_approval(self) -> Self:
        if self.url is None and self.type not in CONFIRMING:
            raise ValueError(
                f"gate {self.name} ({self.type}) calls a hook and has no url; give it a url, "
                "or make it a confirm-rollout, confirm-traffic-increase or confirm-promotion "
                "gate to approve it by hand"
            )
        if self.interval < 0.1 or self.timeout <= 0:
            raise ValueError(f"gate {self.name}: interval must be ≥ 0.1s and timeout > 0")
        return self

    @property
    def manual(self) -> bool:
        return self.url is None
