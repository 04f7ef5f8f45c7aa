"""Smoke tests: check kinds (http, a2aCard, a2aMessage, command), the runner with timeouts,
retries and failFast, the results, and the mission's ``SmokeTests`` API."""

from rollwise.smoke.api import SmokeTests
from rollwise.smoke.checks import Target
from rollwise.smoke.results import SmokeTestSuite, TestResult, TestSeverity, TestStatus
from rollwise.smoke.runner import run_on_targets, run_suite, run_test

__all__ = [
    "SmokeTestSuite",
    "SmokeTests",
    "Target",
    "TestResult",
    "TestSeverity",
    "TestStatus",
    "run_on_targets",
    "run_suite",
    "run_test",
]
