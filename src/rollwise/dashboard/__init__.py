"""The web dashboard (``rollwise up --dashboard``): every app at a glance, each rollout's
steps, weights, replicas and analysis evidence, live; actions with the write token."""

from rollwise.dashboard.app import build_dashboard

__all__ = ["build_dashboard"]
