"""``releaseWindows:``: when a deploy may start, and the freezes when it may not.

    releaseWindows:
      timeZone: Europe/Paris            # IANA name; default UTC
      allow:                            # deploys start only inside one (none listed: any time)
        - {schedule: "0 9 * * 1-4", duration: 8h}        # Monday to Thursday, 09:00-17:00
      freeze:                           # never inside one, whatever allow says
        - {schedule: "0 0 * * 5", duration: 24h, reason: no releases on Fridays}
        - {start: "2026-12-21T00:00", end: "2027-01-04T00:00", reason: year-end freeze}

A window is a cron schedule (five fields, read by croniter) and how long each opening lasts,
or a fixed ``start``/``end`` (ISO 8601; without an offset, in ``timeZone``). Only the start
of a deploy is checked: a rollout that began inside a window finishes outside it, and
``abort``/``undo`` are never held. ``rollwise deploy --override-window "why"`` deploys
anyway and records why.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import AfterValidator, Field, model_validator

from rollwise.spec.base import Model
from rollwise.spec.duration import Duration

__all__ = ["ReleaseWindows", "Window", "WindowCheck", "cron_schedule", "time_zone"]


def cron_schedule(value: str) -> str:
    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise ValueError(
            f"{value!r} is not a cron schedule of five fields (minute hour day month "
            "weekday); write e.g. '0 9 * * 1-5'"
        )
    return value


def time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{value!r} is not a time zone name; write an IANA name, e.g. Europe/Paris or UTC"
        ) from None
    return value


_cron, _zone = cron_schedule, time_zone  # a field named time_zone hides the function


class Window(Model):
    """A recurring window (``schedule`` + ``duration``) or a fixed one (``start`` + ``end``)."""

    schedule: Annotated[str, AfterValidator(_cron)] | None = None
    duration: Duration | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    reason: str = ""

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        recurring = self.schedule is not None or self.duration is not None
        fixed = self.start is not None or self.end is not None
        if recurring == fixed:
            raise ValueError(
                "a window is either {schedule, duration} or {start, end}; "
                "e.g. {schedule: '0 9 * * 1-5', duration: 8h}"
            )
        if recurring and (self.schedule is None or not self.duration):
            raise ValueError("a recurring window needs both schedule and a duration above 0")
        if fixed and (self.start is None or self.end is None):
            raise ValueError("a fixed window needs both start and end")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError(f"window start {self.start} is not before its end {self.end}")
        return self

    def around(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
        """The opening of this window that contains ``now`` (aware, in the zone), if any."""
        if self.schedule is None:
            start, end = self._fixed(now.tzinfo)
            return (start, end) if start <= now < end else None
        assert self.duration is not None
        # croniter's get_prev is strictly before: start just after ``now`` to include it
        last = croniter(self.schedule, now + dt.timedelta(seconds=1)).get_prev(dt.datetime)
        end = last + dt.timedelta(seconds=self.duration)
        return (last, end) if last <= now < end else None

    def next_start(self, now: dt.datetime) -> dt.datetime | None:
        """When this window opens next after ``now`` (``None``: a fixed one that passed)."""
        if self.schedule is None:
            start, _ = self._fixed(now.tzinfo)
            return start if start > now else None
        nxt: dt.datetime = croniter(self.schedule, now).get_next(dt.datetime)
        return nxt

    def _fixed(self, zone: dt.tzinfo | None) -> tuple[dt.datetime, dt.datetime]:
        assert self.start is not None
        assert self.end is not None
        start, end = self.start, self.end
        if start.tzinfo is None:
            start = start.replace(tzinfo=zone)
        if end.tzinfo is None:
            end = end.replace(tzinfo=zone)
        return start, end


@dataclass(frozen=True, slots=True)
class WindowCheck:
    open: bool
    why: str  # "inside the window 0 9 * * 1-4 until 17:00 CET", "frozen: year-end freeze ..."
    until: float | None = None  # when this answer changes, as far as is known


class ReleaseWindows(Model):
    time_zone: Annotated[str, AfterValidator(_zone)] = "UTC"
    allow: list[Window] = Field(default_factory=list)
    freeze: list[Window] = Field(default_factory=list)

    def check(self, now: float) -> WindowCheck:
        """May a deploy start at ``now`` (unix seconds)? With why, in the spec's zone."""
        zone = ZoneInfo(self.time_zone)
        at = dt.datetime.fromtimestamp(now, zone)
        for window in self.freeze:
            inside = window.around(at)
            if inside is not None:
                why = window.reason or _describe(window)
                return WindowCheck(
                    False, f"frozen ({why}) until {_when(inside[1])}", inside[1].timestamp()
                )
        if not self.allow:
            return WindowCheck(True, "no release windows: any time")
        for window in self.allow:
            inside = window.around(at)
            if inside is not None:
                return WindowCheck(
                    True,
                    f"inside the window {_describe(window)} until {_when(inside[1])}",
                    inside[1].timestamp(),
                )
        starts = [s for w in self.allow if (s := w.next_start(at)) is not None]
        if not starts:
            return WindowCheck(False, "outside every release window, and none opens again")
        nxt = min(starts)
        return WindowCheck(
            False, f"outside the release windows; the next opens {_when(nxt)}", nxt.timestamp()
        )


def _describe(window: Window) -> str:
    if window.schedule is not None:
        assert window.duration is not None
        hours = window.duration / 3600
        return f"'{window.schedule}' for {hours:g}h"
    return f"{window.start} to {window.end}"


def _when(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z")
