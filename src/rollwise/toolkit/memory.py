"""``MemoryWatch``: the process' resident memory checked on an interval (psutil), and the
registered cleanups called when it crosses a threshold.

An agent that caches results or keeps conversation state grows until something gives; the
watch gives first, in the agent's own terms (drop caches, trim histories), instead of the
kernel's OOM killer ending the replica mid-request. The toolkit's caches are cleared by
default (``clear_caches``). Each check sets ``rollwise_toolkit_memory_rss_bytes``; each
cleanup run counts in ``rollwise_toolkit_memory_cleanups_total{cleanup}``. A cleanup that
raises is counted and logged, and the others still run.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable
from typing import Any

import psutil

from rollwise.toolkit.cache import clear_caches
from rollwise.toolkit.metrics import MEMORY_CLEANUPS, MEMORY_RSS

__all__ = ["MemoryWatch"]

Cleanup = Callable[[], object]


class MemoryWatch:
    """Calls the cleanups when RSS is over ``threshold_mb``, at most every ``interval`` s.

    ``watch.register(fn)`` (or ``@watch.register``) adds a cleanup; ``check()`` looks once;
    ``await watch.run()`` (an ``asyncio`` task) or ``watch.start()`` (a daemon thread) looks
    every ``interval`` seconds until ``stop()``.
    """

    def __init__(
        self,
        threshold_mb: float,
        interval: float = 5.0,
        *,
        clear_toolkit_caches: bool = True,
        rss: Callable[[], int] | None = None,
    ) -> None:
        if threshold_mb <= 0:
            raise ValueError(f"threshold_mb must be above 0, not {threshold_mb}")
        self.threshold = int(threshold_mb * 1024 * 1024)
        self.interval = interval
        self.cleanups: dict[str, Cleanup] = {}
        if clear_toolkit_caches:
            self.cleanups["toolkit caches"] = clear_caches
        self._rss = rss or psutil.Process().memory_info
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_rss = 0
        self.runs = 0  # checks that found the process over the threshold
        self.failures: dict[str, str] = {}

    def register(self, cleanup: Cleanup, name: str | None = None) -> Cleanup:
        """Add a cleanup (a callable with no arguments); returns it, to serve as a decorator."""
        self.cleanups[name or str(getattr(cleanup, "__qualname__", repr(cleanup)))] = cleanup
        return cleanup

    def _read(self) -> int:
        value = self._rss()
        return int(value if isinstance(value, int) else value.rss)

    def check(self) -> bool:
        """Look once; run every cleanup (then a garbage collection) if over the threshold.
        Whether they ran."""
        self.last_rss = self._read()
        MEMORY_RSS.set(self.last_rss)
        if self.last_rss <= self.threshold:
            return False
        self.runs += 1
        for name, cleanup in list(self.cleanups.items()):
            MEMORY_CLEANUPS.labels(name).inc()
            try:
                cleanup()
            except Exception as exc:  # one failing cleanup must not stop the others
                self.failures[name] = f"{type(exc).__name__}: {exc}"
                _log_failure(name, exc)
        gc.collect()
        return True

    async def run(self) -> None:
        """Check every ``interval`` seconds until ``stop()`` or cancellation."""
        import asyncio  # loaded already: this runs in an event loop

        self._stopped.clear()
        while not self._stopped.is_set():
            self.check()
            await asyncio.sleep(self.interval)

    def start(self) -> MemoryWatch:
        """Check every ``interval`` seconds on a daemon thread, for code without a loop."""
        self._stopped.clear()

        def loop() -> None:
            while not self._stopped.wait(0 if self.last_rss == 0 else self.interval):
                self.check()

        self._thread = threading.Thread(target=loop, name="rollwise-memory-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 1)
            self._thread = None

    def report(self) -> dict[str, Any]:
        """For a health endpoint: RSS, threshold, how often cleanups ran and which failed."""
        return {
            "rss_bytes": self.last_rss,
            "threshold_bytes": self.threshold,
            "cleanup_runs": self.runs,
            "cleanups": sorted(self.cleanups),
            "failed_cleanups": dict(self.failures),
        }


def _log_failure(name: str, exc: Exception) -> None:
    with contextlib.suppress(Exception):  # logging must not turn a cleanup into a crash
        from rollwise.toolkit.monitor import logger

        logger().warning("memory cleanup failed", cleanup=name, error=str(exc))
