"""A small toolkit for the agents rollwise releases: monitoring, error handling, caching and
profiling decorators on maintained libraries, whose metrics rollwise can judge.

    from rollwise.toolkit import handle_errors, monitor_operation, optimize_operation

    @monitor_operation("api_call")
    @handle_errors(retry=True, circuit_breaker="api_circuit")
    @optimize_operation("api_call")
    def api_call_with_full_monitoring():
        ...

Every helper works on plain and ``async`` functions and as a (async) context manager. It
imports neither the controller nor the proxy nor the CLI (docs/toolkit.md).
"""

from rollwise.toolkit.cache import cache_get, cache_set, optimize_operation
from rollwise.toolkit.config import load_env_config
from rollwise.toolkit.errors import (
    CircuitOpenError,
    breaker_states,
    categorize,
    error_stats,
    handle_errors,
)
from rollwise.toolkit.extensions import ExtensionConfig, ExtensionRegistry
from rollwise.toolkit.monitor import monitor_operation
from rollwise.toolkit.profile import (
    PerformanceEngine,
    Profile,
    performance_engine,
    profile_operation,
)

__all__ = [
    "CircuitOpenError",
    "ExtensionConfig",
    "ExtensionRegistry",
    "PerformanceEngine",
    "Profile",
    "breaker_states",
    "cache_get",
    "cache_set",
    "categorize",
    "error_stats",
    "handle_errors",
    "load_env_config",
    "monitor_operation",
    "optimize_operation",
    "performance_engine",
    "profile_operation",
]
