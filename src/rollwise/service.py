"""The controller with its admin API: what ``rollwise up`` runs, and what the Python API
starts inside a program when no controller runs.

The controller serves an ASGI app it is given; the admin API (``api/admin.py``) is built for
a controller. This module ties the two, so that neither imports the other's module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.types import ASGIApp

from rollwise.api.admin import build_app
from rollwise.api.auth import BearerAuth, ensure_tokens
from rollwise.controller.controller import Controller
from rollwise.dashboard import build_dashboard
from rollwise.routing.options import ProxyOptions

if TYPE_CHECKING:
    from rollwise.kubernetes.connection import ClusterAccess

__all__ = ["controller_with_api"]


def _behind_tokens(controller: Controller) -> ASGIApp:
    """The loopback listener's admin API: every request carries a bearer token."""
    return BearerAuth(build_app(controller), ensure_tokens(controller.state_dir))


def controller_with_api(
    state_dir: Path,
    *,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    proxy: ProxyOptions | None = None,
    handle_signals: bool = True,
    api_listen: tuple[str, int] | None = None,
    clock: Callable[[], float] | None = None,
    otlp_endpoint: str | None = None,
    dashboard_listen: tuple[str, int] | None = None,
    cluster: ClusterAccess | None = None,
) -> Controller:
    return Controller(
        state_dir,
        build_app,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        proxy=proxy,
        handle_signals=handle_signals,
        api_listen=api_listen,
        loopback_app=_behind_tokens,
        clock=clock,
        otlp_endpoint=otlp_endpoint,
        dashboard=(dashboard_listen, build_dashboard) if dashboard_listen else None,
        cluster=cluster,
    )
