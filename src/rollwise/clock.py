"""A wall clock that does not jump.

Pauses, progress deadlines, analysis windows and the proxy's per-second statistics are all
measured in wall-clock seconds, because they are stored and must survive a restart. But an
NTP step or a hand-set clock moves ``time.time()`` by minutes or hours at once: forward, a
pause would end at once and every rollout in progress would pass its progress deadline;
backward, a 30 s pause would last an hour. ``SteadyClock`` reads the wall clock once, at
start, and then advances with the monotonic clock, which is never stepped (NTP slews it, as
it slews the wall clock). A step is thus ignored by a running controller and proxy, and seen
by the processes started after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["SteadyClock"]


class SteadyClock:
    """Wall-clock seconds read once, then advanced by ``time.monotonic``."""

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._monotonic = monotonic
        self._offset = wall() - monotonic()

    def __call__(self) -> float:
        return self._offset + self._monotonic()
