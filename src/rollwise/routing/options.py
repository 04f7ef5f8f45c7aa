"""How the controller starts the built-in proxy: ``rollwise up --proxy-workers --record``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ProxyOptions"]


@dataclass(frozen=True, slots=True)
class ProxyOptions:
    """How the controller starts the proxy (``rollwise up --proxy-workers --record``)."""

    workers: int = 1
    record: str | None = None

    def argv(self) -> list[str]:
        argv = ["--workers", str(self.workers)]
        if self.record:
            argv += ["--record", self.record]
        return argv
