"""What a smoke test run says: one ``TestResult`` per test, gathered in a ``SmokeTestSuite``.

``failed`` means the target misbehaved (a wrong status, a timeout, a card missing a field);
``error`` means the check itself could not run (a command that does not exist). Both stop a
rollout when the test is critical. The names are the mission's (``TestStatus``,
``TestSeverity``, ``TestResult``, ``SmokeTestSuite``); ``__test__ = False`` keeps pytest from
collecting them when a test module imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["SmokeTestSuite", "TestResult", "TestSeverity", "TestStatus"]


class TestStatus(StrEnum):
    __test__ = False

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR = "error"


class TestSeverity(StrEnum):
    __test__ = False

    CRITICAL = "critical"
    NON_CRITICAL = "non-critical"


@dataclass(frozen=True, slots=True)
class TestResult:
    """One test's outcome. ``message`` says what was expected and what came; ``duration``
    is seconds over all attempts; ``target`` is where it ran (a replica or a listener)."""

    __test__ = False

    test_name: str
    status: TestStatus
    message: str
    duration: float
    severity: TestSeverity = TestSeverity.CRITICAL
    kind: str = ""
    attempts: int = 1
    target: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in (TestStatus.PASSED, TestStatus.SKIPPED)

    @property
    def blocking(self) -> bool:
        """A critical test that did not pass: it stops a rollout."""
        return self.severity is TestSeverity.CRITICAL and not self.ok

    def as_json(self) -> dict[str, Any]:
        return {
            "test_name": self.test_name,
            "status": self.status.value,
            "severity": self.severity.value,
            "kind": self.kind,
            "message": self.message,
            "duration": round(self.duration, 4),
            "attempts": self.attempts,
            "target": self.target,
            "details": self.details,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TestResult:
        return cls(
            test_name=data["test_name"],
            status=TestStatus(data["status"]),
            message=data["message"],
            duration=float(data["duration"]),
            severity=TestSeverity(data.get("severity", "critical")),
            kind=data.get("kind", ""),
            attempts=int(data.get("attempts", 1)),
            target=data.get("target", ""),
            details=dict(data.get("details", {})),
        )


@dataclass(frozen=True, slots=True)
class SmokeTestSuite:
    """A run of several tests. ``success`` is true when no critical test failed or erred;
    ``failed`` counts failed and erred tests, so ``passed + failed + skipped == total_tests``."""

    test_results: list[TestResult]
    duration: float = 0.0

    @property
    def total_tests(self) -> int:
        return len(self.test_results)

    @property
    def passed(self) -> int:
        return sum(r.status is TestStatus.PASSED for r in self.test_results)

    @property
    def failed(self) -> int:
        return sum(r.status in (TestStatus.FAILED, TestStatus.ERROR) for r in self.test_results)

    @property
    def errors(self) -> int:
        return sum(r.status is TestStatus.ERROR for r in self.test_results)

    @property
    def skipped(self) -> int:
        return sum(r.status is TestStatus.SKIPPED for r in self.test_results)

    @property
    def success(self) -> bool:
        return not any(r.blocking for r in self.test_results)

    @property
    def blocking(self) -> list[TestResult]:
        return [r for r in self.test_results if r.blocking]

    def summary(self) -> str:
        """One line: the counts, then each critical failure with its message."""
        head = f"{self.passed}/{self.total_tests} passed"
        if self.failed:
            head += f", {self.failed} failed"
        if self.skipped:
            head += f", {self.skipped} skipped"
        breaks = [
            f"{r.test_name}{f' on {r.target}' if r.target else ''}: {r.message}"
            for r in self.blocking
        ]
        return head + ("; " + "; ".join(breaks) if breaks else "")

    def as_json(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "total_tests": self.total_tests,
            "passed": self.passed,
            "failed": self.failed,
            "skipped": self.skipped,
            "duration": round(self.duration, 4),
            "test_results": [r.as_json() for r in self.test_results],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SmokeTestSuite:
        return cls(
            [TestResult.from_json(r) for r in data.get("test_results", [])],
            float(data.get("duration", 0.0)),
        )

    @classmethod
    def merge(cls, suites: list[SmokeTestSuite]) -> SmokeTestSuite:
        """Runs against several targets (one per replica) as one suite."""
        return cls(
            [r for s in suites for r in s.test_results],
            max((s.duration for s in suites), default=0.0),
        )
