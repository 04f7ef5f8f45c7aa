"""``profile_operation(name)``: wall time, CPU time and the memory delta of a block or a call
(tracemalloc's traced memory when it is tracing, else the process' RSS via psutil), kept as
``.last`` and exported as metrics; ``profile_to=`` also writes a sampling profile (HTML) with
pyinstrument when it is installed.

``performance_engine`` is the mission's object: ``profile_operation`` and ``cache_set`` /
``cache_get`` in one place.
"""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from rollwise.toolkit._wrap import Around
from rollwise.toolkit.cache import cache_get, cache_set
from rollwise.toolkit.metrics import PROFILE_MEMORY, PROFILE_SECONDS

__all__ = ["PerformanceEngine", "Profile", "performance_engine", "profile_operation"]

_process = psutil.Process()


@dataclass(frozen=True)
class Profile:
    name: str
    wall_s: float
    cpu_s: float
    memory_delta_bytes: int
    memory_source: str  # "tracemalloc" or "rss"


def _memory() -> tuple[int, str]:
    if tracemalloc.is_tracing():
        return tracemalloc.get_traced_memory()[0], "tracemalloc"
    return int(_process.memory_info().rss), "rss"


class profile_operation(Around):
    def __init__(self, name: str, *, profile_to: str | Path | None = None) -> None:
        self.name = name
        self.profile_to = Path(profile_to) if profile_to is not None else None
        self.last: Profile | None = None

    def enter(self) -> Any:
        profiler = None
        if self.profile_to is not None:
            try:
                from pyinstrument import Profiler  # type: ignore[import-not-found]
            except ImportError:
                raise RuntimeError(
                    "profile_to needs pyinstrument: pip install pyinstrument"
                ) from None
            profiler = Profiler()
            profiler.start()
        memory, _ = _memory()
        return profiler, memory, time.perf_counter(), time.process_time()

    def exit(self, token: Any, error: BaseException | None) -> None:
        profiler, memory, wall, cpu = token
        wall_s, cpu_s = time.perf_counter() - wall, time.process_time() - cpu
        now, source = _memory()
        self.last = Profile(self.name, wall_s, cpu_s, now - memory, source)
        PROFILE_SECONDS.labels(self.name, "wall").observe(wall_s)
        PROFILE_SECONDS.labels(self.name, "cpu").observe(cpu_s)
        PROFILE_MEMORY.labels(self.name).set(now - memory)
        if profiler is not None and self.profile_to is not None:
            profiler.stop()
            self.profile_to.write_text(profiler.output_html())


class PerformanceEngine:
    """The mission's ``performance_engine``: profiling and the shared cache."""

    @staticmethod
    def profile_operation(name: str, **options: Any) -> profile_operation:
        return profile_operation(name, **options)

    @staticmethod
    def cache_set(key: Any, value: Any, ttl: float = 300.0) -> None:
        cache_set(key, value, ttl)

    @staticmethod
    def cache_get(key: Any, default: Any = None) -> Any:
        return cache_get(key, default)


performance_engine = PerformanceEngine()
