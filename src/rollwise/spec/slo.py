"""Service level objectives of an app, their burn-rate alerts and the error-budget policy.

Field names follow OpenSLO where they fit (``target``, ``timeWindow`` read as ``window``,
``indicator``); the alert windows are the Google SRE workbook's multiwindow, multi-burn-rate
set (table 5-8) unless a spec names its own. Everything is measured on the app's live
listener, on the traffic rollwise's proxy already counts.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from rollwise.spec.analysis import Fraction
from rollwise.spec.base import Model, http_url, name_label
from rollwise.spec.duration import Duration, format_duration

__all__ = [
    "DEFAULT_BURN_WINDOWS",
    "Alerting",
    "BurnWindow",
    "ErrorBudgetPolicy",
    "Objective",
]


def _target(value: float) -> float:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{value:g} is not a usable target; write e.g. 99.9% (below 100%)")
    return value


class Objective(Model):
    """One SLO: the share of good requests over a rolling ``window`` that the app promises.

    ``availability``: a request is good unless it failed as ``traffic.failureStatus`` says
    (connection errors and timeouts always fail). ``latency``: a request is good when it was
    answered within ``threshold`` (read from the proxy's 2 % latency buckets, so a request
    within 2 % of the threshold may count either way). ``resolution`` is the width of the
    stored rows (a minute; shorter only for tests and demos that scale the windows down).
    """

    name: Annotated[str, AfterValidator(name_label("SLO name", "availability"))]
    indicator: Literal["availability", "latency"]
    target: Annotated[Fraction, AfterValidator(_target)]
    window: Duration = 28 * 86400.0
    threshold: Duration | None = None
    runbook: str | None = None
    description: str = ""
    resolution: Duration = 60.0

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.indicator == "latency" and not self.threshold:
            raise ValueError(
                f"SLO {self.name}: a latency objective needs a threshold, e.g. threshold: 300ms"
            )
        if self.indicator == "availability" and self.threshold is not None:
            raise ValueError(
                f"SLO {self.name}: threshold applies to latency objectives only; remove it"
            )
        if not 1.0 <= self.resolution <= 3600.0 or self.resolution != int(self.resolution):
            raise ValueError(
                f"SLO {self.name}: resolution {format_duration(self.resolution)} must be whole "
                "seconds between 1s and 1h; 1m is the usual"
            )
        if self.window < 10 * self.resolution:
            raise ValueError(
                f"SLO {self.name}: window {format_duration(self.window)} holds fewer than 10 "
                f"rows of {format_duration(self.resolution)}; write e.g. window: 28d"
            )
        return self

    @property
    def error_budget(self) -> float:
        """The share of requests allowed to be bad over the window."""
        return 1.0 - self.target


class BurnWindow(Model):
    """One alert of the multiwindow, multi-burn-rate set: fire when the error budget burns
    at least ``burnRate`` times as fast as the window allows, over both the ``long`` window
    and the ``short`` one (a twelfth of it unless given), so that it fires fast and resolves
    fast. ``for`` holds it pending first, as a Prometheus rule's ``for``."""

    severity: Literal["page", "ticket"]
    long: Duration
    short: Duration | None = None
    burn_rate: Annotated[float, Field(gt=0)]
    for_: Annotated[Duration, Field(alias="for")] = 0.0

    @model_validator(mode="after")
    def _short_is_shorter(self) -> Self:
        if self.short is not None and self.short >= self.long:
            raise ValueError(
                f"short window {format_duration(self.short)} must be shorter than the long "
                f"window {format_duration(self.long)}"
            )
        return self

    @property
    def short_s(self) -> float:
        return self.short if self.short is not None else self.long / 12

    @property
    def name(self) -> str:
        """``1h/5m``: the ``window`` label of its alerts."""
        return f"{format_duration(self.long)}/{format_duration(self.short_s)}"


DEFAULT_BURN_WINDOWS: tuple[BurnWindow, ...] = (
    BurnWindow(severity="page", long=3600, short=300, burn_rate=14.4),
    BurnWindow(severity="page", long=6 * 3600, short=1800, burn_rate=6),
    BurnWindow(severity="ticket", long=3 * 86400, short=6 * 3600, burn_rate=1),
)


class Alerting(Model):
    """Where burn-rate alerts go besides the app's webhooks (which receive ``AlertFiring``
    and ``AlertResolved`` events): an Alertmanager's API v2, sent again every
    ``resendInterval`` while firing, as Prometheus does."""

    alertmanager: Annotated[str, AfterValidator(http_url("http://127.0.0.1:9093"))] | None = None
    windows: Annotated[list[BurnWindow], Field(min_length=1)] = Field(
        default_factory=lambda: list(DEFAULT_BURN_WINDOWS)
    )
    resend_interval: Duration = 60.0


class ErrorBudgetPolicy(Model):
    """What an exhausted budget stops: a ``deploy`` of a new version is refused while any
    SLO named in ``slos`` (all, when empty) has ``blockDeploysBelow`` of its budget left or
    less; ``--override-budget "reason"`` lets one through and is recorded. ``undo``,
    ``abort`` and rollbacks are never refused."""

    block_deploys_below: Fraction = 0.0
    slos: list[str] = Field(default_factory=list)
