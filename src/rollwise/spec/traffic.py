"""``spec.traffic``: how the proxy picks a revision and a replica for each request of an app,
which answers count as failed, and, for an A2A app, how it keeps conversations together."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from rollwise.a2a.labels import DEFAULT_FAILURES, outcome_names
from rollwise.spec.base import Model, status_code
from rollwise.spec.duration import Duration

__all__ = ["Affinity", "Traffic"]

_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _header_name(value: str) -> str:
    if not _TOKEN_RE.match(value):
        raise ValueError(f"{value!r} is not an HTTP header name; write e.g. X-Session-Id")
    return value


def _cookie_name(value: str) -> str:
    if not _TOKEN_RE.match(value):
        raise ValueError(f"{value!r} is not a cookie name; write e.g. rollwise-session")
    return value


def _outcomes(value: object) -> object:
    """A2A outcome labels (YAML reads ``-32603`` as a number)."""
    if not isinstance(value, list):
        return value
    return outcome_names(value)


class Affinity(Model):
    """An A2A app's conversations stay on the replica that holds their task (a2a-sdk keeps
    tasks in the replica's memory): the proxy learns each task and context id from the
    answers and sends every request that names one there, whatever the weights.

    ``maxConversations`` bounds the proxy's map (the oldest are forgotten first), ``ttl``
    forgets a conversation nobody asked about for that long. A revision taken out of the
    routes (promotion, abort, undo) keeps serving its conversations' follow-ups until none
    was asked about for ``idle``, at most ``drainTimeout`` (Argo Rollouts'
    ``scaleDownDelaySeconds`` plays this part for ReplicaSets).
    """

    enabled: bool = True
    max_conversations: Annotated[int, Field(ge=100, le=10_000_000)] = 100_000
    ttl: Duration = 3600.0
    idle: Duration = 30.0
    drain_timeout: Duration = 300.0


class Traffic(Model):
    """How the proxy picks a revision and a replica for each request of this app.

    ``overrideHeader`` / ``overrideCookie`` name a revision outright (its number, ``stable`` or
    ``canary``), for testers. ``stickyHeader`` / ``stickyCookie`` keep one session on one
    revision by hashing the value. ``loadBalancer`` spreads a revision's requests over its
    replicas. ``failureStatus`` says which answers count as failed in the statistics analysis
    reads (connection errors and timeouts always do); passive health ejects on 5xx
    regardless.

    ``protocol: a2a`` (the default when the app has ``a2a:``) makes the proxy read each A2A
    exchange (docs/analysis.md): an answer also fails when its outcome is among
    ``failureOutcomes`` (JSON-RPC error codes, ``server-error``, ``other-error``, and the task
    states ``failed``, ``rejected``, ``canceled``, ``input-required``, ``auth-required``), and
    ``affinity`` keeps each conversation on its replica.
    """

    override_header: Annotated[str, AfterValidator(_header_name)] = "X-Rollwise-Revision"
    override_cookie: Annotated[str, AfterValidator(_cookie_name)] | None = None
    sticky_header: Annotated[str, AfterValidator(_header_name)] | None = None
    sticky_cookie: Annotated[str, AfterValidator(_cookie_name)] | None = None
    load_balancer: Literal["leastRequest", "roundRobin"] = "leastRequest"
    failure_status: Annotated[
        list[Annotated[str, BeforeValidator(status_code)]], Field(min_length=1)
    ] = Field(default_factory=lambda: ["5xx"])
    protocol: Literal["http", "a2a"] | None = None
    failure_outcomes: Annotated[list[str], BeforeValidator(_outcomes)] = Field(
        default_factory=lambda: list(DEFAULT_FAILURES)
    )
    affinity: Affinity = Field(default_factory=Affinity)
