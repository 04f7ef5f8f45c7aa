"""A small toolkit for the agents rollwise releases: monitoring, error handling, caching and
profiling decorators on maintained libraries, whose metrics rollwise can judge.

    from rollwise.toolkit import handle_errors, monitor_operation, optimize_operation

    @monitor_operation("api_call")
    @handle_errors(retry=True, circuit_breaker="api_circuit")
    @optimize_operation("api_call")
    def api_call_with_full_monitoring():
        ...

Every helper works on plain and ``async`` functions and as a (async) context manager. It
imports neither the controller nor the proxy nor the CLI (docs/toolkit.md); the pooled HTTP
clients (``http_client``, ``TraceContextMiddleware``) load httpx when first asked for, and
``A2AOutcomes`` (an agent's A2A exchanges counted as rollwise's proxy counts them) its JSON
decoder.
"""

from typing import TYPE_CHECKING, Any

from rollwise.toolkit.cache import cache_get, cache_set, clear_caches, optimize_operation
from rollwise.toolkit.config import load_env_config
from rollwise.toolkit.errors import (
    CircuitOpenError,
    breaker_states,
    categorize,
    error_stats,
    handle_errors,
)
from rollwise.toolkit.extensions import ExtensionConfig, ExtensionRegistry
from rollwise.toolkit.health import health_endpoint, health_report
from rollwise.toolkit.manifest import DeploymentConfig, ManifestWriter
from rollwise.toolkit.memory import MemoryWatch
from rollwise.toolkit.monitor import monitor_operation
from rollwise.toolkit.profile import (
    PerformanceEngine,
    Profile,
    performance_engine,
    profile_operation,
)

if TYPE_CHECKING:
    from rollwise.toolkit.a2a import A2AOutcomes
    from rollwise.toolkit.http import (
        TraceContextMiddleware,
        close_clients,
        http_client,
        pool_stats,
    )

__all__ = [
    "A2AOutcomes",
    "CircuitOpenError",
    "DeploymentConfig",
    "ExtensionConfig",
    "ExtensionRegistry",
    "ManifestWriter",
    "MemoryWatch",
    "PerformanceEngine",
    "Profile",
    "TraceContextMiddleware",
    "breaker_states",
    "cache_get",
    "cache_set",
    "categorize",
    "clear_caches",
    "close_clients",
    "error_stats",
    "handle_errors",
    "health_endpoint",
    "health_report",
    "http_client",
    "load_env_config",
    "monitor_operation",
    "optimize_operation",
    "performance_engine",
    "pool_stats",
    "profile_operation",
]

_LAZY = {"TraceContextMiddleware", "close_clients", "http_client", "pool_stats"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from rollwise.toolkit import http

        return getattr(http, name)
    if name == "A2AOutcomes":  # its JSON decoder loads when asked for
        from rollwise.toolkit.a2a import A2AOutcomes

        return A2AOutcomes
    raise AttributeError(f"module 'rollwise.toolkit' has no attribute {name!r}")
