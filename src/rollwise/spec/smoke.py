"""Smoke tests in the spec (``smokeTests:``): what to check, how hard, how often.

A smoke test is one check (``http``, ``a2aCard``, ``a2aMessage`` or ``command``) with a
``severity``: a failed *critical* test stops a rollout and rolls back; a *non-critical* one is
reported only. ``retries`` with ``retryDelay`` (doubled each time) absorb a flaky first call;
``failFast`` skips the rest of the suite once this test fails; ``schedule`` runs it
continuously against the live listener (synthetic monitoring).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from rollwise.spec.base import Model, placeholders, status_code
from rollwise.spec.duration import Duration

if TYPE_CHECKING:
    from jsonpath_ng import JSONPath

__all__ = [
    "CHECK_KINDS",
    "A2ACardCheck",
    "A2AMessageCheck",
    "CommandCheck",
    "HttpCheck",
    "JsonPathAssertion",
    "SmokeTest",
    "parse_json_path",
]

COMMAND_FIELDS = frozenset({"url", "python", "app", "revision", "version"})
CHECK_KINDS = ("http", "a2a_card", "a2a_message", "command")


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{value!r} is not a regular expression: {exc}") from None
    return value


def parse_json_path(expression: str) -> JSONPath:
    """A JSONPath (jsonpath-ng's extended syntax: filters, arithmetic); imported lazily, as
    only specs with ``jsonPath`` assertions need it."""
    from jsonpath_ng.ext.parser import parse

    return parse(expression)


def _json_path(value: str) -> str:
    try:
        parse_json_path(value)
    except Exception as exc:  # jsonpath-ng raises several types for a bad expression
        raise ValueError(f"{value!r} is not a JSONPath; write e.g. $.status ({exc})") from None
    return value


Regex = Annotated[str, AfterValidator(_regex)]
Status = Annotated[str, BeforeValidator(status_code)]


class JsonPathAssertion(Model):
    """One assertion on a JSON answer: the value at ``path`` ``equals`` a value, matches a
    ``regex``, or ``exists`` (true) / does not (false). Exactly one of the three."""

    path: Annotated[str, AfterValidator(_json_path)]
    equals: Any = None
    regex: Regex | None = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [f for f in ("equals", "regex", "exists") if f in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(f"give exactly one of equals, regex, exists for {self.path}")
        return self


class HttpCheck(Model):
    """A request to the target and what its answer must be."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    path: str = "/healthz"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    json_body: Any = Field(default=None, alias="json")
    expect_status: Status | list[Status] = "200"
    json_path: list[JsonPathAssertion] = Field(default_factory=list)
    regex: Regex | None = None
    max_latency: Duration | None = None

    @property
    def statuses(self) -> list[str]:
        return self.expect_status if isinstance(self.expect_status, list) else [self.expect_status]


class A2ACardCheck(Model):
    """Fetch the agent card (``path``, default the app's ``a2a.card``, then the 0.3 path
    ``/.well-known/agent.json`` as a fallback that is reported) and validate it field by field
    for its protocol version; ``protocol`` may require one; ``skills`` must be present."""

    path: str | None = None
    protocol: Literal["1.0", "0.3"] | None = None
    skills: list[str] = Field(default_factory=list)


class A2AMessageCheck(Model):
    """``SendMessage`` (or ``SendStreamingMessage`` with ``stream: true``) with
    ``A2A-Version: 1.0``: the answer must be a task that completed or a message, and its text
    must contain ``expectText`` when given. ``extensions`` are activated with
    ``A2A-Extensions``."""

    text: str = "ping"
    expect_text: str | None = None
    stream: bool = False
    path: str = "/"
    extensions: list[str] = Field(default_factory=list)


def _argv(value: object) -> object:
    return {"argv": value} if isinstance(value, list) else value


class CommandCheck(Model):
    """Run ``argv`` (never through a shell) with ``{url}`` and friends filled in; the exit
    code must be ``exitCode``."""

    argv: Annotated[
        list[Annotated[str, AfterValidator(placeholders(COMMAND_FIELDS))]], Field(min_length=1)
    ]
    exit_code: int = 0
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None


class SmokeTest(Model):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    severity: Literal["critical", "non-critical"] = "critical"
    timeout: Duration = 10.0
    retries: Annotated[int, Field(ge=0, le=10)] = 0
    retry_delay: Duration = 0.5
    fail_fast: bool = False
    schedule: Duration | None = None
    http: HttpCheck | None = None
    a2a_card: A2ACardCheck | None = Field(default=None, alias="a2aCard")
    a2a_message: A2AMessageCheck | None = Field(default=None, alias="a2aMessage")
    command: Annotated[CommandCheck | None, BeforeValidator(_argv)] = None

    @model_validator(mode="after")
    def _exactly_one_check(self) -> Self:
        given = [k for k in CHECK_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "a smoke test has exactly one of http, a2aCard, a2aMessage, command; "
                f"{self.name!r} has {len(given)}"
            )
        if self.schedule is not None and self.schedule < 1.0:
            raise ValueError(f"schedule {self.schedule:g}s is too often; write at least 1s")
        return self

    @property
    def kind(self) -> str:
        return next(
            {"a2a_card": "a2aCard", "a2a_message": "a2aMessage"}.get(k, k)
            for k in CHECK_KINDS
            if getattr(self, k) is not None
        )
