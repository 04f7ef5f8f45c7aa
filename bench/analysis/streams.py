"""Seeded simulated request streams: per second and per arm, requests, failures, histograms.

Requests per second are Poisson around the rate, failures Binomial, latencies log-normal (so
that a multiplicative shift moves every quantile by the same factor, or only the tail for a
p99 scenario), written into the proxy's 2 % buckets exactly as the proxy would.

Below ``PER_BUCKET_FROM`` requests per second each request's latency is drawn; above it, each
bucket's count is drawn directly: a Poisson number of requests split by bucket is a set of
independent Poisson counts with the bucket's share of the rate, the same distribution at a
cost that does not grow with the rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from rollwise.analysis.series import GROWTH, NBUCKETS, ArmSecond

__all__ = ["Arm", "Stream"]

MEDIAN_S = 0.050
SIGMA = 0.5
PER_BUCKET_FROM = 300.0
_INV_LOG_GROWTH = 1.0 / math.log(GROWTH)
_TAIL_FROM = math.exp(SIGMA * 1.2815515655446004)  # the log-normal's p90, ÷ its median


@dataclass(frozen=True)
class Arm:
    rate: float  # requests per second
    failure: float = 0.01
    latency_scale: float = 1.0  # every latency × this
    tail_scale: float = 1.0  # latencies above the arm's p90 × this (a p95/p99 regression)

    @property
    def median_s(self) -> float:
        return MEDIAN_S * self.latency_scale

    @cached_property
    def buckets(self) -> tuple[int, NDArray[np.float64]]:
        """(first bucket, shares of the buckets from it) holding all but 1e-13 of requests."""
        edges = GROWTH ** np.arange(NBUCKETS + 1, dtype=np.float64) / 1e6  # seconds
        cut = self.median_s * _TAIL_FROM
        z = np.log(np.minimum(edges, cut) / self.median_s) / SIGMA
        cdf = stats.norm.cdf(z)
        beyond = np.maximum(edges / self.tail_scale, cut)
        cdf += np.where(
            edges / self.tail_scale > cut,
            stats.norm.cdf(np.log(beyond / self.median_s) / SIGMA)
            - stats.norm.cdf(np.log(cut / self.median_s) / SIGMA),
            0.0,
        )
        cdf[0], cdf[-1] = 0.0, 1.0  # bucket 0 holds all below, the last all above
        shares = np.diff(cdf)
        kept = np.flatnonzero(shares > 1e-13)
        first, last = int(kept[0]), int(kept[-1]) + 1
        return first, shares[first:last] / shares[first:last].sum()


class Stream:
    """One arm for ``runs`` independent simulations; ``next()`` gives the next second."""

    def __init__(self, arm: Arm, runs: int, rng: np.random.Generator) -> None:
        self.arm = arm
        self.runs = runs
        self.rng = rng

    def next(self) -> ArmSecond:
        if self.arm.rate >= PER_BUCKET_FROM:
            return self._per_bucket()
        arm, rng, runs = self.arm, self.rng, self.runs
        requests: NDArray[np.int64] = rng.poisson(arm.rate, runs)
        failures: NDArray[np.int64] = rng.binomial(requests, arm.failure)
        total = int(requests.sum())
        latency = arm.median_s * np.exp(SIGMA * rng.standard_normal(total))
        if arm.tail_scale != 1.0:
            cut = arm.median_s * _TAIL_FROM
            latency = np.where(latency > cut, latency * arm.tail_scale, latency)
        buckets = np.minimum(
            (np.log(latency * 1e6) * _INV_LOG_GROWTH).astype(np.int64), NBUCKETS - 1
        )
        owner = np.repeat(np.arange(runs), requests)
        hist = np.bincount(owner * NBUCKETS + buckets, minlength=runs * NBUCKETS)
        return ArmSecond(requests, failures, hist.reshape(runs, NBUCKETS))

    def _per_bucket(self) -> ArmSecond:
        first, shares = self.arm.buckets
        counts = self.rng.poisson(self.arm.rate * shares, (self.runs, len(shares)))
        hist = np.zeros((self.runs, NBUCKETS), dtype=np.int64)
        hist[:, first : first + len(shares)] = counts
        requests = hist.sum(axis=1)
        failures: NDArray[np.int64] = self.rng.binomial(requests, self.arm.failure)
        return ArmSecond(requests, failures, hist)
