"""The fuzzers' budget: small in ``make test``, larger by ``ROLLWISE_FUZZ_EXAMPLES`` (see
docs/reliability.md)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("ROLLWISE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=os.environ.get("ROLLWISE_FUZZ_RANDOM", "") == "",
)
