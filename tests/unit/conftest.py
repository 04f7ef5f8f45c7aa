"""Unit tests of the controller: one app's worker with in-memory protocols and a hand-set
clock, on a real SQLite store. Each test runs in milliseconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import Harness


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)
