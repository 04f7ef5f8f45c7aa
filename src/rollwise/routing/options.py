"""How the controller starts the built-in proxy: ``rollwise up --proxy-workers --record
--trace-sample``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ProxyOptions"]


@dataclass(frozen=True, slots=True)
class ProxyOptions:
    """How the controller starts the proxy (``rollwise up --proxy-workers --record``)."""

    workers: int = 1
    record: str | None = None
    trace_sample: float = 0.0  # the share of requests traced (``routing/proxy/spans.py``)
    otlp_endpoint: str | None = None

    def argv(self) -> list[str]:
        argv = ["--workers", str(self.workers)]
        if self.record:
            argv += ["--record", self.record]
        if self.trace_sample > 0 and self.otlp_endpoint:
            argv += ["--trace-sample", repr(self.trace_sample)]
            argv += ["--otlp-endpoint", self.otlp_endpoint]
        return argv
