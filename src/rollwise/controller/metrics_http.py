"""The controller's ``/metrics`` on a loopback port, always in Prometheus' text format 0.0.4.

prometheus-client answers a scraper that asks for OpenMetrics (Prometheus does) in that
format, and its writer turns the colons of recorded-style names into underscores in the
samples (``slo:sli_error:ratio_rate5m`` arrives as ``slo_sli_error_ratio_rate5m``), while
the text format keeps them. Sloth's names are what dashboards and alert rules look for, so
this server offers the text format only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

__all__ = ["serve_metrics"]

TEXT_FORMAT = "text/plain; version=0.0.4"


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_metrics(host: str, port: int, registry: CollectorRegistry) -> tuple[WSGIServer, int]:
    """Serve ``registry`` on ``host:port`` (0: a free port) in a daemon thread; the server
    and its port."""
    app = make_wsgi_app(registry)

    def text_only(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["HTTP_ACCEPT"] = TEXT_FORMAT
        return app(environ, start_response)  # type: ignore[no-any-return]

    server = make_server(host, port, text_only, _Server, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server, server.server_port
