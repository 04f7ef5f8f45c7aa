"""Seeded simulated request streams: per second and per arm, requests, failures, histograms.

Requests per second are Poisson around the rate, failures Binomial, latencies log-normal (so
that a multiplicative shift moves every quantile by the same factor, or only the tail for a
p99 scenario), written into the proxy's 2 % buckets exactly as the proxy would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rollwise.analysis.series import GROWTH, NBUCKETS, ArmSecond

__all__ = ["Arm", "Stream"]

MEDIAN_S = 0.050
SIGMA = 0.5
_INV_LOG_GROWTH = 1.0 / math.log(GROWTH)


@dataclass(frozen=True)
class Arm:
    rate: float  # requests per second
    failure: float = 0.01
    latency_scale: float = 1.0  # every latency × this
    tail_scale: float = 1.0  # latencies above the arm's p90 × this (a p99 regression)


class Stream:
    """One arm for ``runs`` independent simulations; ``next()`` gives the next second."""

    def __init__(self, arm: Arm, runs: int, rng: np.random.Generator) -> None:
        self.arm = arm
        self.runs = runs
        self.rng = rng
        self._tail = math.exp(SIGMA * 1.2815515655446004)  # p90 of the log-normal, ÷ median

    def next(self) -> ArmSecond:
        arm, rng, runs = self.arm, self.rng, self.runs
        requests: NDArray[np.int64] = rng.poisson(arm.rate, runs)
        failures: NDArray[np.int64] = rng.binomial(requests, arm.failure)
        total = int(requests.sum())
        latency = MEDIAN_S * arm.latency_scale * np.exp(SIGMA * rng.standard_normal(total))
        if arm.tail_scale != 1.0:
            cut = MEDIAN_S * arm.latency_scale * self._tail
            latency = np.where(latency > cut, latency * arm.tail_scale, latency)
        buckets = np.minimum(
            (np.log(latency * 1e6) * _INV_LOG_GROWTH).astype(np.int64), NBUCKETS - 1
        )
        owner = np.repeat(np.arange(runs), requests)
        hist = np.bincount(owner * NBUCKETS + buckets, minlength=runs * NBUCKETS)
        return ArmSecond(requests, failures, hist.reshape(runs, NBUCKETS))
