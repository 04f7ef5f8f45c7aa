"""Limits of the proxy's public listeners; defaults are those of nginx where it has one."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    max_header_bytes: int = 32 * 1024
    max_body_bytes: int = 64 * 1024 * 1024
    header_timeout_s: float = 10.0
    idle_timeout_s: float = 75.0
    upstream_timeout_s: float = 60.0
    connect_timeout_s: float = 2.0
    replay_bytes: int = 64 * 1024
    max_pipeline: int = 8
