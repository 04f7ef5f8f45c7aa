"""Running smoke tests: each test's timeout, its retries with backoff, ``failFast``, and one
``TestResult`` per test whatever happened (a crash inside a check is an ``error`` result,
never an exception out of the suite)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import httpx
import stamina

from rollwise.smoke.checks import (
    CheckError,
    Outcome,
    Target,
    run_a2a_card,
    run_a2a_message,
    run_command,
    run_http,
)
from rollwise.smoke.results import SmokeTestSuite, TestResult, TestSeverity, TestStatus
from rollwise.spec.smoke import SmokeTest

__all__ = ["run_on_targets", "run_suite", "run_test"]


class _NotYet(Exception):
    """An attempt that did not pass; stamina retries on it."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


async def _attempt(
    test: SmokeTest, target: Target, client: httpx.AsyncClient, deadline: float
) -> Outcome:
    if test.http is not None:
        return await run_http(test.http, target, client)
    if test.a2a_card is not None:
        return await run_a2a_card(test.a2a_card, target, client)
    if test.a2a_message is not None:
        return await run_a2a_message(test.a2a_message, target, client, deadline)
    assert test.command is not None
    return await run_command(test.command, target)


async def _timed(test: SmokeTest, target: Target, client: httpx.AsyncClient) -> Outcome:
    try:
        async with asyncio.timeout(test.timeout):
            # a check that can say how far it got stops itself a little before the timeout
            deadline = asyncio.get_running_loop().time() + test.timeout * 0.97
            return await _attempt(test, target, client, deadline)
    except TimeoutError:
        return Outcome(False, f"expected an answer within {test.timeout:g}s, none came (timeout)")
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        return Outcome(False, f"expected an answer, got {type(exc).__name__}: {reason}")


async def _passing(test: SmokeTest, target: Target, client: httpx.AsyncClient) -> Outcome:
    outcome = await _timed(test, target, client)
    if not outcome.passed:
        raise _NotYet(outcome)
    return outcome


async def run_test(test: SmokeTest, target: Target, client: httpx.AsyncClient) -> TestResult:
    """One test against one target, retried ``retries`` times with doubling delays."""
    started = time.perf_counter()
    attempts = 0
    outcome = Outcome(False, "not run")
    status = TestStatus.FAILED
    try:
        async for attempt in stamina.retry_context(
            on=_NotYet,
            attempts=test.retries + 1,
            wait_initial=test.retry_delay,
            wait_exp_base=2.0,
            wait_max=max(test.retry_delay, 30.0),
            wait_jitter=0.0,
            timeout=None,
        ):
            with attempt:
                attempts += 1
                outcome = await _passing(test, target, client)
        status = TestStatus.PASSED
    except _NotYet as exc:
        status, outcome = TestStatus.FAILED, exc.outcome
    except CheckError as exc:
        status, outcome = TestStatus.ERROR, Outcome(False, str(exc))
    except Exception as exc:  # a bug in a check must not end the suite
        status = TestStatus.ERROR
        outcome = Outcome(False, f"the check crashed: {type(exc).__name__}: {exc}")
    message = outcome.message
    if attempts > 1:
        message += f" (after {attempts} attempts)"
    return TestResult(
        test_name=test.name,
        status=status,
        message=message,
        duration=time.perf_counter() - started,
        severity=TestSeverity(test.severity),
        kind=test.kind,
        attempts=attempts,
        target=target.name,
        details=outcome.details,
    )


async def run_suite(
    tests: Sequence[SmokeTest],
    target: Target,
    *,
    fail_fast: bool = False,
    client: httpx.AsyncClient | None = None,
) -> SmokeTestSuite:
    """Run ``tests`` in order against ``target``. Once a test with ``failFast`` (or any
    critical test, with ``fail_fast``) fails, the rest are skipped."""
    started = time.perf_counter()
    own = client is None
    http = client or httpx.AsyncClient(follow_redirects=False)
    results: list[TestResult] = []
    stop: TestResult | None = None
    try:
        for test in tests:
            if stop is not None:
                results.append(
                    TestResult(
                        test.name,
                        TestStatus.SKIPPED,
                        f"skipped: {stop.test_name} failed first (failFast)",
                        0.0,
                        TestSeverity(test.severity),
                        test.kind,
                        0,
                        target.name,
                    )
                )
                continue
            result = await run_test(test, target, http)
            results.append(result)
            if not result.ok and (test.fail_fast or (fail_fast and result.blocking)):
                stop = result
    finally:
        if own:
            await http.aclose()
    return SmokeTestSuite(results, time.perf_counter() - started)


async def run_on_targets(
    tests: Sequence[SmokeTest],
    targets: Sequence[Target],
    client: httpx.AsyncClient | None = None,
) -> SmokeTestSuite:
    """Every test on every target at once (one replica each), as one suite; on ``client`` if
    given (a cluster's replicas may need its credentials), else on one of its own."""
    if client is None:
        async with httpx.AsyncClient(timeout=None) as own:
            return await run_on_targets(tests, targets, own)
    suites = await asyncio.gather(*(run_suite(tests, t, client=client) for t in targets))
    return SmokeTestSuite.merge(list(suites))
