"""The mission's ``ExtensionRegistry``: which A2A extensions an agent declares and serves.

Register ``ExtensionConfig("timestamp", "1.0.0")`` or ``("traceability", ...)``, toggle them
at run time, and let the registry build what a2a-sdk needs from the active ones: the card's
declarations and the executor wrapper (rollwise's timestamp and traceability extensions,
``rollwise.a2a.extensions``; a2a-sdk is imported only then).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from rollwise.toolkit.monitor import logger

__all__ = ["KNOWN", "ExtensionConfig", "ExtensionRegistry"]

KNOWN = ("timestamp", "traceability")


@dataclass
class ExtensionConfig:
    identifier: str
    version: str
    enabled: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.identifier, "version": self.version, "enabled": self.enabled}


@dataclass
class ExtensionRegistry:
    extensions: dict[str, ExtensionConfig] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def register(self, extension: ExtensionConfig) -> None:
        logger().info("registering extension", extension=extension.identifier)
        with self._lock:
            self.extensions[extension.identifier] = extension

    def toggle(self, identifier: str, enabled: bool) -> None:
        with self._lock:
            if identifier in self.extensions:
                self.extensions[identifier].enabled = enabled

    def active(self) -> list[ExtensionConfig]:
        with self._lock:
            return [ext for ext in self.extensions.values() if ext.enabled]

    def implementations(self) -> list[Any]:
        """rollwise's implementations of the active extensions it knows (``KNOWN``), for
        ``ExtendedExecutor(executor, registry.implementations())``."""
        from rollwise.a2a.extensions import TimestampExtension, TraceabilityExtension

        made = {"timestamp": TimestampExtension, "traceability": TraceabilityExtension}
        return [made[ext.identifier]() for ext in self.active() if ext.identifier in made]

    def executor(self, inner: Any) -> Any:
        """``inner`` (an a2a-sdk ``AgentExecutor``) serving the active extensions."""
        from rollwise.a2a.extensions import ExtendedExecutor

        return ExtendedExecutor(inner, self.implementations())

    def declare(self, card: Any) -> Any:
        """``card`` declaring the active extensions (as ``ExtendedExecutor.declare``)."""
        from rollwise.a2a.extensions import ExtendedExecutor

        return ExtendedExecutor.declare(card, self.implementations())
