"""The mission's ``SmokeTests``: a suite against one endpoint, from Python.

Without ``tests`` it runs the checks every A2A agent should pass: the health endpoint, a
valid agent card, and a ``SendMessage`` round trip. Given the spec's ``smokeTests`` (models
or the dicts a YAML file holds), it runs those, exactly as the controller's gates do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import httpx

from rollwise.smoke.checks import Target
from rollwise.smoke.results import SmokeTestSuite, TestResult
from rollwise.smoke.runner import run_suite, run_test
from rollwise.spec.smoke import A2ACardCheck, A2AMessageCheck, HttpCheck, SmokeTest

__all__ = ["SmokeTests"]

TestLike = SmokeTest | Mapping[str, Any]


class SmokeTests:
    """Smoke tests against ``endpoint_url``. ``timeout`` bounds each test (seconds);
    ``fail_fast`` skips the rest once a critical test fails."""

    __test__ = False

    def __init__(
        self,
        endpoint_url: str,
        timeout: float = 30.0,
        fail_fast: bool = False,
        *,
        tests: Sequence[TestLike] | None = None,
        health_path: str = "/healthz",
        card_path: str = "/.well-known/agent-card.json",
        message_text: str = "ping",
        expect_text: str | None = None,
        retries: int = 0,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.timeout = timeout
        self.fail_fast = fail_fast
        self.health_path = health_path
        self.card_path = card_path
        self.message_text = message_text
        self.expect_text = expect_text
        self.retries = retries
        self.tests = [self._model(t) for t in tests] if tests is not None else None

    def _model(self, test: TestLike) -> SmokeTest:
        if isinstance(test, SmokeTest):
            return test
        return SmokeTest.model_validate({"timeout": self.timeout, **test})

    def _target(self) -> Target:
        return Target(self.endpoint_url, card_path=self.card_path)

    def default_tests(self) -> list[SmokeTest]:
        """Health, card, message: what ``run_all()`` runs when given no tests."""
        common = {"timeout": self.timeout, "retries": self.retries}
        message = A2AMessageCheck(text=self.message_text, expect_text=self.expect_text)
        return [
            SmokeTest(
                name="health",
                http=HttpCheck(path=self.health_path),
                timeout=self.timeout,
                retries=self.retries,
            ),
            SmokeTest.model_validate({"name": "agent_card", "a2aCard": A2ACardCheck(), **common}),
            SmokeTest.model_validate({"name": "basic_agent_call", "a2aMessage": message, **common}),
        ]

    async def run_all(self, tests: Sequence[TestLike] | None = None) -> SmokeTestSuite:
        chosen = (
            [self._model(t) for t in tests]
            if tests is not None
            else self.tests or self.default_tests()
        )
        return await run_suite(chosen, self._target(), fail_fast=self.fail_fast)

    async def _one(self, test: SmokeTest) -> TestResult:
        async with httpx.AsyncClient() as client:
            return await run_test(test, self._target(), client)

    async def test_health_endpoint(self) -> TestResult:
        return await self._one(self.default_tests()[0])

    async def test_agent_card(self) -> TestResult:
        return await self._one(self.default_tests()[1])

    async def test_basic_agent_call(self) -> TestResult:
        return await self._one(self.default_tests()[2])

    async def close(self) -> None:
        """Nothing to release (a client per run); here for ``async with`` like the others."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
