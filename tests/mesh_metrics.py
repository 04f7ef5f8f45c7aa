"""What a mesh's sidecars would report for Services it fronts, on /metrics, for Prometheus:
``python tests/mesh_metrics.py PORT NAMESPACE SERVICE:RATE:FAILING ...``.

Istio cannot run on the test machines; the cluster's analysis reads its series from
Prometheus. This process exposes Istio's series (``istio_requests_total`` and
``istio_request_duration_milliseconds``, ``reporter="destination"``) in the Prometheus text
format for each Service: ``RATE`` requests a second since it started, a ``FAILING`` share of
them answered 500, every one in the 5 ms bucket.
"""

from __future__ import annotations

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTED = time.monotonic()
NAMESPACE = sys.argv[2]
SERVICES = [
    (name, float(rate), float(failing))
    for name, rate, failing in (arg.split(":") for arg in sys.argv[3:])
]


def exposition() -> str:
    elapsed = time.monotonic() - STARTED
    lines = [
        "# TYPE istio_requests_total counter",
        "# TYPE istio_request_duration_milliseconds histogram",
    ]
    for name, rate, failing in SERVICES:
        total = int(elapsed * rate)
        failed = int(total * failing)
        labels = (
            f'reporter="destination",destination_service_name="{name}",'
            f'destination_service_namespace="{NAMESPACE}"'
        )
        lines.append(f'istio_requests_total{{{labels},response_code="200"}} {total - failed}')
        lines.append(f'istio_requests_total{{{labels},response_code="500"}} {failed}')
        for bound in ("1", "5", "+Inf"):
            count = 0 if bound == "1" else total
            lines.append(
                f'istio_request_duration_milliseconds_bucket{{{labels},le="{bound}"}} {count}'
            )
        lines.append(f"istio_request_duration_milliseconds_count{{{labels}}} {total}")
        lines.append(f"istio_request_duration_milliseconds_sum{{{labels}}} {total * 4.0}")
    return "\n".join(lines) + "\n"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = exposition().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
