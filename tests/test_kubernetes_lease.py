"""Leader election on a Lease, against the fake API server over real HTTP, with lightkube: one
leader at a time, takeover only after the lease expired as the candidate saw it, a leader
that cannot renew stops before anyone may take over, and a clean stop hands over at once.
Time is a clock the test moves; nothing sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from rollwise.errors import LeadershipLost, UsageError
from rollwise.kubernetes.connection import ClusterAccess, connect
from rollwise.kubernetes.leadership import lead
from rollwise.kubernetes.lease import Elector, LeaseTerms

from .kube.apiserver import FakeApiServer

pytestmark = pytest.mark.anyio
LEASE = "/apis/coordination.k8s.io/v1/namespaces/agents/leases/rollwise-controller"


@dataclass
class Clock:
    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def access(api: FakeApiServer, tmp_path: Path) -> ClusterAccess:
    return ClusterAccess(api.kubeconfig(tmp_path / "kubeconfig"), namespace="agents")


OPEN: list[Elector] = []


def candidate(access: ClusterAccess, clock: Clock, name: str) -> Elector:
    terms = LeaseTerms(namespace="agents", identity=name)
    elector = Elector(connect(access), terms, monotonic=clock, sleep=clock.sleep)
    OPEN.append(elector)
    return elector


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    while OPEN:
        await OPEN.pop().client.close()


def lease(api: FakeApiServer) -> dict[str, Any]:
    body = httpx.get(api.url + LEASE).json()
    assert isinstance(body, dict)
    return body


async def test_one_leads_and_another_takes_over_only_once_the_lease_expired(
    api: FakeApiServer, access: ClusterAccess
) -> None:
    clock = Clock()
    a, b = candidate(access, clock, "a"), candidate(access, clock, "b")
    assert await a.try_acquire_or_renew()  # no Lease yet: created, held by a
    assert not await b.try_acquire_or_renew()
    assert b.holder == "a" and a.leading and not b.leading
    clock.now += 10
    assert await a.try_acquire_or_renew()  # renewed: a new resourceVersion
    clock.now += 4
    assert not await b.try_acquire_or_renew()  # b sees the renewal now: 15 s from here
    clock.now += 14.5
    assert not await b.try_acquire_or_renew()
    clock.now += 1
    assert await b.try_acquire_or_renew()  # a has not renewed for 15 s as b saw it
    spec = lease(api)["spec"]
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    assert spec["leaseDurationSeconds"] == 15 and spec["renewTime"].endswith("Z")
    assert not await a.try_acquire_or_renew()  # a learns that b holds it
    assert a.holder == "b" and not a.leading


async def test_candidates_racing_for_an_expired_lease_leave_exactly_one_leader(
    api: FakeApiServer, access: ClusterAccess
) -> None:
    clock = Clock()
    old = candidate(access, clock, "old")
    assert await old.try_acquire_or_renew()
    others = [candidate(access, clock, f"c{i}") for i in range(4)]
    for other in others:
        assert not await other.try_acquire_or_renew()  # each sees the record now
    clock.now += 16
    won = await asyncio.gather(*(other.try_acquire_or_renew() for other in others))
    assert won.count(True) == 1
    winner = others[won.index(True)].terms.identity
    assert lease(api)["spec"]["holderIdentity"] == winner
    assert [c.leading for c in others] == won


async def test_a_leader_that_cannot_renew_stops_before_anyone_may_take_over(
    tmp_path: Path,
) -> None:
    clock = Clock()
    with FakeApiServer().serve() as server:
        access = ClusterAccess(server.kubeconfig(tmp_path / "kubeconfig"), namespace="agents")
        leader = candidate(access, clock, "leader")
        assert await leader.try_acquire_or_renew()
    acquired_at = clock.now
    # the API server is gone (a partition, as the leader sees it): every renewal fails
    with pytest.raises(LeadershipLost, match="could not be renewed for 10s"):
        await leader.hold()
    assert not leader.leading
    assert clock.now - acquired_at <= leader.terms.renew_deadline_s + leader.terms.retry_s
    assert clock.now - acquired_at < leader.terms.duration_s  # before a takeover is allowed


async def test_a_leader_that_finds_another_holder_stops_at_once(
    access: ClusterAccess,
) -> None:
    clock_a, clock_b = Clock(), Clock()  # two machines
    a, b = candidate(access, clock_a, "a"), candidate(access, clock_b, "b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    clock_b.now += 16  # what b saw: a did not renew (a partition that has healed since)
    assert await b.try_acquire_or_renew()
    with pytest.raises(LeadershipLost, match="held by b now"):
        await a.hold()
    assert clock_a.slept == [a.terms.retry_s]  # its first renewal found out


async def test_a_clean_stop_hands_the_lease_over_at_once(
    api: FakeApiServer, access: ClusterAccess
) -> None:
    clock = Clock()
    a, b = candidate(access, clock, "a"), candidate(access, clock, "b")
    await a.acquire()
    assert not await b.try_acquire_or_renew()
    await a.release()
    spec = lease(api)["spec"]
    assert "holderIdentity" not in spec and spec["leaseDurationSeconds"] == 1
    await b.acquire()  # free: no waiting out the 15 s
    assert b.leading and clock.slept == []
    assert lease(api)["spec"]["leaseTransitions"] == 1


async def test_the_lease_made_by_the_rendered_manifests_is_taken_as_it_is(
    api: FakeApiServer, access: ClusterAccess
) -> None:
    from rollwise.kubernetes.install import controller_objects

    rendered = next(o for o in controller_objects("agents") if o["kind"] == "Lease")
    created = httpx.post(api.url + LEASE.rsplit("/", 1)[0], json=rendered)
    assert created.status_code == 201, created.text
    clock = Clock()
    a = candidate(access, clock, "a")
    await a.acquire()  # no holder yet: taken at once
    assert clock.slept == [] and lease(api)["spec"]["holderIdentity"] == "a"


async def test_timings_that_could_let_two_lead_are_refused() -> None:
    with pytest.raises(UsageError, match="retry period < renew deadline < lease duration"):
        LeaseTerms(namespace="agents", identity="a", duration_s=10, renew_deadline_s=10)


class StandIn:
    """The two things ``lead`` asks of a controller: run until stopped, and leave."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self.running = asyncio.Event()
        self.left = False

    async def run(self) -> None:
        self.running.set()
        await self.stopping.wait()

    def leave(self) -> None:
        self.left = True
        self.stopping.set()


class SteppedClock(Clock):
    """A clock whose sleeps end when the test says so (one renewal at a time)."""

    def __init__(self) -> None:
        super().__init__()
        self.tick = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        await self.tick.wait()
        self.tick.clear()
        await super().sleep(seconds)


async def test_a_controller_that_loses_the_lease_leaves_and_says_why(
    access: ClusterAccess,
) -> None:
    clock_a, clock_b = SteppedClock(), Clock()
    a, b = candidate(access, clock_a, "a"), candidate(access, clock_b, "b")
    controller = StandIn()
    leading = asyncio.ensure_future(lead(controller, a))
    async with asyncio.timeout(10):
        await controller.running.wait()
    assert not await b.try_acquire_or_renew()
    clock_b.now += 16  # a does not renew in b's eyes (a partition between them)
    assert await b.try_acquire_or_renew()
    clock_a.tick.set()  # a's next renewal
    with pytest.raises(LeadershipLost, match="held by b now"):
        async with asyncio.timeout(10):
            await leading
    assert controller.left  # it stopped acting and left what serves serving


async def test_a_controller_that_stops_gives_the_lease_up(
    api: FakeApiServer, access: ClusterAccess
) -> None:
    clock = SteppedClock()
    controller = StandIn()
    leading = asyncio.ensure_future(lead(controller, candidate(access, clock, "a")))
    async with asyncio.timeout(10):
        await controller.running.wait()
    assert lease(api)["spec"]["holderIdentity"] == "a"
    controller.stopping.set()  # `rollwise down`
    async with asyncio.timeout(10):
        await leading
    assert "holderIdentity" not in lease(api)["spec"] and not controller.left
