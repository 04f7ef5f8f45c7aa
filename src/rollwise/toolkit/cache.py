"""``optimize_operation(name, ttl=…)``: results cached by arguments (cachetools' TTL cache, a
least-recently-used bound), with hits and misses counted; ``cache_set`` / ``cache_get``: a
shared cache where each entry has its own time to live (cachetools' TLRU cache).

Thread-safe (one lock per cache); for ``async`` functions the result is cached, never the
coroutine, and concurrent calls with the same arguments share one computation.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from cachetools import TLRUCache, TTLCache

from rollwise.toolkit.metrics import CACHE

if TYPE_CHECKING:
    import asyncio

__all__ = ["cache_get", "cache_set", "clear_caches", "optimize_operation"]

F = TypeVar("F", bound=Callable[..., Any])
_MISSING = object()


def _key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
    return (args, tuple(sorted(kwargs.items()))) if kwargs else args


_caches: weakref.WeakSet[optimize_operation] = weakref.WeakSet()


class optimize_operation:
    def __init__(
        self,
        name: str,
        ttl: float = 300.0,
        maxsize: int = 1024,
        *,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.cache: TTLCache[Hashable, Any] = TTLCache(maxsize=maxsize, ttl=ttl, timer=timer)
        self.lock = threading.Lock()
        self._hit = CACHE.labels(name, "hit")
        self._miss = CACHE.labels(name, "miss")
        self._running: dict[Hashable, asyncio.Future[Any]] = {}
        _caches.add(self)

    def _lookup(self, key: Hashable) -> Any:
        with self.lock:
            value = self.cache.get(key, _MISSING)
        (self._miss if value is _MISSING else self._hit).inc()
        return value

    def _store(self, key: Hashable, value: Any) -> None:
        with self.lock:
            self.cache[key] = value

    def clear(self) -> None:
        with self.lock:
            self.cache.clear()

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                import asyncio  # loaded already: this runs in an event loop

                key = _key(args, kwargs)
                value = self._lookup(key)
                if value is not _MISSING:
                    return value
                running = self._running.get(key)
                if running is not None:  # the same call is being computed: share it
                    return await asyncio.shield(running)
                future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                self._running[key] = future
                try:
                    value = await func(*args, **kwargs)
                except BaseException as exc:
                    future.set_exception(exc)
                    future.exception()  # retrieved: no "never retrieved" warning
                    raise
                finally:
                    self._running.pop(key, None)
                self._store(key, value)
                future.set_result(value)
                return value

            run_async.cache = self  # type: ignore[attr-defined]
            return cast(F, run_async)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            key = _key(args, kwargs)
            value = self._lookup(key)
            if value is _MISSING:
                value = func(*args, **kwargs)
                self._store(key, value)
            return value

        run.cache = self  # type: ignore[attr-defined]
        return cast(F, run)


def _until(_key: Hashable, entry: tuple[Any, float], now: float) -> float:
    return now + entry[1]


_shared: TLRUCache[Hashable, tuple[Any, float]] = TLRUCache(
    maxsize=10_000, ttu=_until, timer=time.monotonic
)
_shared_lock = threading.Lock()


def cache_set(key: Hashable, value: Any, ttl: float = 300.0) -> None:
    """Keep ``value`` under ``key`` for ``ttl`` seconds (at most 10 000 entries)."""
    with _shared_lock:
        _shared[key] = (value, ttl)


def cache_get(key: Hashable, default: Any = None) -> Any:
    """The value kept under ``key``, or ``default`` once it expired or was never set."""
    with _shared_lock:
        entry = _shared.get(key)
    CACHE.labels("shared", "miss" if entry is None else "hit").inc()
    return default if entry is None else entry[0]


def clear_caches() -> int:
    """Empty every cache of this process (each ``optimize_operation``'s and the shared one);
    the number of entries dropped. The memory watch's default cleanup."""
    dropped = 0
    for cache in list(_caches):
        with cache.lock:
            dropped += len(cache.cache)
            cache.cache.clear()
    with _shared_lock:
        dropped += len(_shared)
        _shared.clear()
    return dropped
