"""Anytime-valid evidence: e-processes and confidence sequences that stay valid at every look.

A fixed-sample test (Kayenta's Mann–Whitney, a threshold on one window) is only valid when it
is looked at once; an analysis that is checked every second needs guarantees that hold
uniformly over time. Everything here is a nonnegative supermartingale under its null, so by
Ville's inequality ``P(sup_t E_t ≥ 1/α) ≤ α``, however often and for however long it is read.

**Rate ratio of events between two arms** (:class:`RatioEProcess`). Each second gives, per
arm, a number of requests (the exposure) and of events (failures, or requests slower than a
threshold). Conditioned on the second's total events, under the null "canary's per-request
event rate = ``r0`` × baseline's" each event falls on the canary with probability
``π0 = π r0 / (π r0 + 1 − π)``, where ``π`` is the canary's share of that second's requests.
Because ``π`` is recomputed every second, the test stays valid while traffic weights change
between steps. An alternative ``r = r0·e^δ`` shifts the log-odds of ``π0`` by ``δ``; the
e-process is a mixture over a grid of ``δ`` (a discrete prior is an exact mixture, no
numerical integration error). For ``r0 = 1`` the exact conditional law of the canary's events
(hypergeometric) is smaller in convex order than the binomial used here (Hoeffding 1963), and
smaller still inside the one-sided null, so the product stays a supermartingale: the test is
exact-or-conservative. For ``r0 ≠ 1`` it relies on events being rare (Poisson thinning).

**Rate of one arm** (:func:`rate_bounds`): the confidence sequence of a Bernoulli rate from
a Beta-mixture martingale (Robbins' method of mixtures): ``{p : M_n(p) < 1/α}``.

**Quantiles of one arm** (:func:`quantile_band`): the time-uniform bound on an empirical CDF
of Howard & Ramdas (2022, Thm 2): ``sup_x |F̂_n − F| ≤ 0.85·√((log log(e·n) + 0.8·log(1612/α))/n)``.

All functions take numpy arrays with any leading batch shape, so the benchmark runs hundreds
of simulated analyses through the very code the controller uses.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "LOG_WEIGHTS",
    "RATIOS",
    "RatioEProcess",
    "lil_epsilon",
    "quantile_band",
    "rate_bounds",
]

Array = NDArray[np.float64]
Direction = Literal["greater", "less"]

# Alternatives: rate ratios from +3 % to ×20 (or their inverses), log-spaced. A mixture pays,
# against an oracle that knew the true ratio, about −log(prior mass near it). Small effects need
# many events per nat and large ones few, so 80 % of the mass is a half-normal on the log ratio
# (scale 0.5: half of it below ×1.4); the other 20 % is spread evenly, so that a gross failure
# seen on a handful of requests still decides at once.
RATIOS = np.geomspace(1.03, 20.0, 48)
PRIOR_SCALE = 0.5
_half_normal = np.exp(-0.5 * (np.log(RATIOS) / PRIOR_SCALE) ** 2)


def _logsumexp(x: Array, axis: int = -1) -> Array:
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.asarray(np.log(np.sum(np.exp(x - top), axis=axis)) + np.squeeze(top, axis=axis))


def _betaln(a: Array | float, b: Array | float) -> Array:
    # scipy is imported here, not at the top: the controller and the CLI load this module,
    # and most of their runs never judge anything (scipy.special costs ~0.4 s to import)
    from scipy.special import betaln

    return np.asarray(betaln(a, b), dtype=np.float64)


LOG_WEIGHTS = np.log(0.8 * _half_normal / _half_normal.sum() + 0.2 / len(RATIOS))

# Beta prior of the per-arm rate mixture: mean 2 %, so that failure rates near zero (the usual
# case) get tight bounds fast, while high rates still get valid (wider) ones.
PRIOR_A = 1.0
PRIOR_B = 50.0


def _log_sigmoid(x: Array) -> Array:
    return -np.logaddexp(0.0, -x)


class RatioEProcess:
    """One-sided test of the canary/baseline event-rate ratio ``r`` against ``null_ratio``.

    ``direction="greater"``: null ``r ≤ r0`` (evidence that the canary is worse);
    ``"less"``: null ``r ≥ r0`` (evidence that it is better). ``shape`` is the batch shape.
    """

    __slots__ = ("_deltas", "_log_r0", "_log_w", "log_e", "loglr", "max_log_e")

    def __init__(
        self, direction: Direction, null_ratio: float = 1.0, shape: tuple[int, ...] = ()
    ) -> None:
        ratios = RATIOS if direction == "greater" else 1.0 / RATIOS
        self._deltas = np.log(ratios)
        self._log_w = LOG_WEIGHTS
        self._log_r0 = math.log(null_ratio)
        self.loglr: Array = np.zeros((*shape, len(ratios)))
        self.log_e: Array = np.zeros(shape)
        self.max_log_e: Array = np.zeros(shape)

    def update(
        self,
        events_canary: ArrayLike,
        events_baseline: ArrayLike,
        exposure_canary: ArrayLike,
        exposure_baseline: ArrayLike,
    ) -> None:
        """Add one second. A second in which either arm had no exposure carries no evidence."""
        ec = np.asarray(events_canary, dtype=np.float64)
        eb = np.asarray(events_baseline, dtype=np.float64)
        nc = np.asarray(exposure_canary, dtype=np.float64)
        nb = np.asarray(exposure_baseline, dtype=np.float64)
        informative = (nc > 0) & (nb > 0) & (ec + eb > 0)
        if not np.any(informative):
            return
        with np.errstate(divide="ignore", invalid="ignore"):
            logit0 = np.where(informative, np.log(nc) - np.log(nb), 0.0) + self._log_r0
        logit0 = logit0[..., None]
        alt = logit0 + self._deltas
        step = ec[..., None] * (_log_sigmoid(alt) - _log_sigmoid(logit0)) + eb[..., None] * (
            _log_sigmoid(-alt) - _log_sigmoid(-logit0)
        )
        self.loglr = self.loglr + np.where(informative[..., None], step, 0.0)
        self.log_e = _logsumexp(self.loglr + self._log_w)
        self.max_log_e = np.maximum(self.max_log_e, self.log_e)

    @property
    def e_value(self) -> Array:
        return np.exp(np.minimum(self.log_e, 700.0))

    @property
    def p_value(self) -> Array:
        """The sequential p-value ``min(1, 1 / max_s E_s)``: valid at any stopping time."""
        return np.minimum(1.0, np.exp(-self.max_log_e))

    def rejected(self, alpha: float) -> NDArray[np.bool_]:
        return self.max_log_e >= math.log(1.0 / alpha)


def _log_likelihood(n: Array, s: Array, p: Array) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        lik = s * np.log(p) + (n - s) * np.log1p(-p)
    lik = np.where((s == 0) & (p == 0), 0.0, lik)
    return np.asarray(np.where((s == n) & (p == 1), 0.0, lik))


def rate_bounds(
    n: ArrayLike, s: ArrayLike, alpha: float, side: Literal["both", "lower", "upper"] = "both"
) -> tuple[Array, Array]:
    """Anytime-valid lower and upper bounds of a Bernoulli rate after ``s`` events in ``n``.

    The sequence is ``{p : log M_n(p) < log(1/α)}`` with ``M_n(p)`` the Beta-mixture likelihood
    ratio; it is an interval around ``s/n`` found by batched bisection. ``side`` skips the end
    that is not needed (the other comes back as 0 or 1).
    """
    nn = np.asarray(n, dtype=np.float64)
    ss = np.asarray(s, dtype=np.float64)
    # log M_n(p) = log marginal − log likelihood(p); the marginal does not depend on p
    limit = (
        _betaln(PRIOR_A + ss, PRIOR_B + nn - ss) - _betaln(PRIOR_A, PRIOR_B) - math.log(1 / alpha)
    )
    centre = np.where(nn > 0, ss / np.maximum(nn, 1.0), 0.0)
    lower = np.zeros_like(centre)
    upper = np.ones_like(centre)
    if side in ("both", "lower"):
        out, inside = np.zeros_like(centre), centre.copy()
        for _ in range(40):  # 2^-40: far below any rate worth reporting
            probe = (out + inside) / 2
            ok = _log_likelihood(nn, ss, probe) > limit
            inside = np.where(ok, probe, inside)
            out = np.where(ok, out, probe)
        lower = np.where((ss == 0) | (nn == 0), 0.0, inside)
    if side in ("both", "upper"):
        out, inside = np.ones_like(centre), centre.copy()
        for _ in range(40):
            probe = (out + inside) / 2
            ok = _log_likelihood(nn, ss, probe) > limit
            inside = np.where(ok, probe, inside)
            out = np.where(ok, out, probe)
        upper = np.where((ss == nn) | (nn == 0), 1.0, inside)
    return lower, upper


def lil_epsilon(n: ArrayLike, alpha: float) -> Array:
    """Howard & Ramdas' time-uniform half-width of the empirical-CDF band after ``n`` samples."""
    nn = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    return np.asarray(
        0.85 * np.sqrt((np.log(np.log(math.e * nn)) + 0.8 * math.log(1612.0 / alpha)) / nn)
    )


def quantile_band(
    cumulative: NDArray[np.int64], values: Array, q: float, alpha: float
) -> tuple[float, float, float]:
    """Estimate and anytime-valid band of the ``q`` quantile of one histogram.

    ``cumulative`` holds running counts per bucket (``np.cumsum`` of the histogram) and
    ``values`` each bucket's representative value. Ends beyond the data are 0 and ``inf``.
    """
    total = float(cumulative[-1]) if len(cumulative) else 0.0
    if total <= 0:
        return math.nan, 0.0, math.inf
    eps = float(lil_epsilon(total, alpha))

    def at(level: float) -> float:
        if level <= 0:
            return 0.0
        if level >= 1:
            return math.inf
        index = int(np.searchsorted(cumulative, level * total, side="right"))
        return float(values[min(index, len(values) - 1)])

    return at(q), at(q - eps), at(q + eps)
