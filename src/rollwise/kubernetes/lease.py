"""Leader election on a ``coordination.k8s.io/v1`` Lease: one controller acts, others wait.

The rules are client-go's (``tools/leaderelection``), which the cluster's own controllers
follow, so that ``kubectl get lease`` reads the same for rollwise as for them:

- A candidate reads the Lease and takes it when it is free (no holder: never held, or given
  up), its own, or expired. Expired means that the record has not changed for
  ``leaseDurationSeconds`` *as this candidate observed it*: on its own monotonic clock, from
  the moment it first saw the current ``resourceVersion``. The holder's ``renewTime`` is
  written for people and never compared across machines, whose clocks may disagree by more
  than a lease lasts.
- Every write carries the ``resourceVersion`` that was read. Two candidates that find the
  Lease expired at once both write; the API server takes one and answers 409 to the other.
- The leader renews every ``retry_s``. When it has not renewed for ``renew_deadline_s``
  (shorter than the lease) it stops acting, before any candidate may take over; when it
  finds another holder, it stops at once.
- A leader that stops cleanly gives the Lease up (no holder, 1 s), so that the next one
  takes it at once instead of waiting the lease out.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx
import structlog

from rollwise.errors import LeadershipLost, UsageError
from rollwise.kubernetes.names import LEASE, WAITING_FOR_LEASE

if TYPE_CHECKING:
    from lightkube import AsyncClient
    from lightkube.resources.coordination_v1 import Lease

__all__ = ["Elector", "LeaseTerms", "check_timing"]

log = structlog.get_logger("rollwise.lease")


@dataclass(frozen=True, slots=True)
class LeaseTerms:
    """Which Lease, who this candidate is, and the timing (kube-controller-manager's
    ``--leader-elect-lease-duration 15s``, ``-renew-deadline 10s``, ``-retry-period 2s``)."""

    namespace: str
    identity: str
    name: str = LEASE
    duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_s: float = 2.0

    def __post_init__(self) -> None:
        check_timing(self.duration_s, self.renew_deadline_s, self.retry_s)

    @property
    def where(self) -> str:
        return f"Lease {self.namespace}/{self.name}"


def check_timing(duration_s: float, renew_deadline_s: float, retry_s: float) -> None:
    """Refuse timings under which a leader could still act when another takes over."""
    if not 0 < retry_s < renew_deadline_s < duration_s:
        raise UsageError(
            "leader election needs retry period < renew deadline < lease duration (given "
            f"--leader-elect-retry-period {retry_s:g}, --leader-elect-renew-deadline "
            f"{renew_deadline_s:g}, --leader-elect-lease-duration {duration_s:g})"
        )


def _stamp(wall: float) -> datetime:
    return datetime.fromtimestamp(wall, UTC)


class Elector:
    """One candidate for one Lease."""

    def __init__(
        self,
        client: AsyncClient,
        terms: LeaseTerms,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.terms = terms
        self._monotonic = monotonic
        self._wall = wall
        self._sleep = sleep
        self._seen_version: str | None = None
        self._seen_at = 0.0
        self._renewed_at = -math.inf
        self.holder: str | None = None  # as last read
        self.leading = False

    async def _read(self) -> Lease | None:
        from lightkube import ApiError
        from lightkube.resources.coordination_v1 import Lease

        try:
            return await self.client.get(Lease, self.terms.name, namespace=self.terms.namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise

    async def try_acquire_or_renew(self) -> bool:
        """One round: take or renew the Lease if this candidate may. ``True``: it holds it."""
        from lightkube import ApiError
        from lightkube.models.coordination_v1 import LeaseSpec
        from lightkube.models.meta_v1 import ObjectMeta
        from lightkube.resources.coordination_v1 import Lease

        now = self._monotonic()
        lease = await self._read()
        stamp = _stamp(self._wall())
        me = self.terms.identity
        duration = math.ceil(self.terms.duration_s)
        try:
            if lease is None:
                meta = ObjectMeta(name=self.terms.name, namespace=self.terms.namespace)
                spec = LeaseSpec(
                    holderIdentity=me,
                    acquireTime=stamp,
                    leaseDurationSeconds=duration,
                    leaseTransitions=0,
                    renewTime=stamp,
                )
                return self._won(await self.client.create(Lease(metadata=meta, spec=spec)), now)
            if lease.metadata is not None and lease.metadata.resourceVersion != self._seen_version:
                self._seen_version = lease.metadata.resourceVersion
                self._seen_at = now
            old = lease.spec or LeaseSpec()
            self.holder = old.holderIdentity or None
            mine = self.holder == me
            lasts = old.leaseDurationSeconds or duration
            if self.holder is not None and not mine and now < self._seen_at + lasts:
                self.leading = False
                return False
            transitions = old.leaseTransitions or 0
            lease.spec = LeaseSpec(
                holderIdentity=me,
                acquireTime=old.acquireTime if mine else stamp,
                leaseDurationSeconds=duration,
                leaseTransitions=transitions if mine else transitions + 1,
                renewTime=stamp,
            )
            return self._won(await self.client.replace(lease), now)
        except ApiError as exc:
            if exc.status.code == 409:  # another candidate wrote first: read again next round
                self.leading = False
                return False
            raise

    def _won(self, lease: Lease, now: float) -> bool:
        if lease.metadata is not None:
            self._seen_version = lease.metadata.resourceVersion
        self._seen_at = now
        self._renewed_at = now
        if not self.leading:
            log.info("leading", lease=self.terms.where, identity=self.terms.identity)
        self.holder = self.terms.identity
        self.leading = True
        return True

    def _jittered(self) -> float:
        return self.terms.retry_s * (1 + 0.2 * random.random())  # candidates do not retry in step

    async def acquire(self) -> None:
        """Wait until this candidate holds the Lease; says who holds it while it waits."""
        said: object = ()
        while True:
            try:
                if await self.try_acquire_or_renew():
                    return
            except httpx.HTTPError as exc:  # lightkube's ApiError is one
                log.warning("lease unreadable", lease=self.terms.where, error=str(exc))
            if self.holder != said:
                said = self.holder
                log.info(WAITING_FOR_LEASE, lease=self.terms.where, holder=self.holder)
            await self._sleep(self._jittered())

    async def hold(self) -> None:
        """Renew until cancelled. Raises ``LeadershipLost`` when another candidate holds the
        Lease, or when it could not be renewed for ``renew_deadline_s``."""
        while True:
            await self._sleep(self.terms.retry_s)
            left = self._renewed_at + self.terms.renew_deadline_s - self._monotonic()
            why = ""
            try:
                async with asyncio.timeout(max(left, 0.001)):
                    if await self.try_acquire_or_renew():
                        continue
            except (httpx.HTTPError, TimeoutError) as exc:
                why = f": {exc}" if str(exc) else ": no answer in time"
            if self.holder is not None and self.holder != self.terms.identity:
                self.leading = False
                raise LeadershipLost(f"{self.terms.where} is held by {self.holder} now")
            if self._monotonic() - self._renewed_at >= self.terms.renew_deadline_s:
                self.leading = False
                raise LeadershipLost(
                    f"{self.terms.where} could not be renewed for "
                    f"{self.terms.renew_deadline_s:g}s{why}; stopping so that another "
                    "controller may take over"
                )

    async def release(self) -> None:
        """Give the Lease up (a clean stop): the next candidate takes it at once."""
        from lightkube.models.coordination_v1 import LeaseSpec

        if not self.leading:
            return
        self.leading = False
        try:
            lease = await self._read()
            if lease is None or lease.spec is None:
                return
            if lease.spec.holderIdentity != self.terms.identity:
                return
            lease.spec = LeaseSpec(
                acquireTime=lease.spec.acquireTime,
                leaseDurationSeconds=1,
                leaseTransitions=lease.spec.leaseTransitions,
                renewTime=_stamp(self._wall()),
            )
            await self.client.replace(lease)
            log.info("lease given up", lease=self.terms.where)
        except httpx.HTTPError as exc:
            log.warning("lease not given up", lease=self.terms.where, error=str(exc))
