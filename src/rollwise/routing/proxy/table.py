"""The routing table the controller pushes, and how one request picks a revision and replica.

A table is applied whole (new objects, one reference swap), so a request sees either the old
routes or the new ones, never a mix. Replica objects are carried over by address across
tables so that their connection pools, in-flight counts and health survive a weight change.
"""

from __future__ import annotations

import random
import zlib
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

from rollwise.a2a.labels import failing_outcomes
from rollwise.routing.proxy.affinity import ConversationMap, address_code
from rollwise.routing.proxy.headers import SPECIAL_HEADERS
from rollwise.routing.proxy.stats import RevisionStats
from rollwise.routing.table import A2ARouting, Table

__all__ = ["AppRoutes", "Replica", "RevisionRoute", "RoutingTable", "failing_statuses"]

EJECT_AFTER = 5
EJECT_BASE_S = 2.0
EJECT_MAX_S = 30.0


class Replica:
    """One upstream address: its idle connection pool, in-flight count and passive health."""

    __slots__ = (
        "address",
        "code",
        "draining",
        "ejected_until",
        "ejections",
        "failures_in_row",
        "host",
        "idle",
        "in_flight",
        "port",
        "served",
        "talks",
    )

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.address = address
        self.code = address_code(address)  # its name in the shared conversation map
        self.host = host
        self.port = int(port)
        self.idle: list[Any] = []
        self.in_flight = 0
        self.served = 0
        self.failures_in_row = 0
        self.ejected_until = 0.0
        self.ejections = 0
        self.draining = False
        # its open A2A conversations: key -> when last asked about (the proxy's clock)
        self.talks: dict[int, float] = {}

    def succeeded(self) -> None:
        self.failures_in_row = 0
        self.ejections = 0

    def failed(self, now: float) -> bool:
        """Count a failure; ``True`` when it ejects the replica (a circuit breaker opens)."""
        self.failures_in_row += 1
        if self.failures_in_row >= EJECT_AFTER and self.ejected_until <= now:
            self.ejections += 1
            self.ejected_until = now + min(EJECT_MAX_S, EJECT_BASE_S * 2 ** (self.ejections - 1))
            self.failures_in_row = 0
            return True
        return False

    def conversations(self, now: float, idle: float) -> list[int]:
        """The conversations asked about within ``idle`` seconds; older ones are forgotten."""
        talks = self.talks
        quiet = [key for key, when in talks.items() if now - when > idle]
        for key in quiet:
            del talks[key]
        return list(talks)

    def close_idle(self) -> None:
        idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()

    def as_json(self, now: float) -> dict[str, Any]:
        return {
            "address": self.address,
            "in_flight": self.in_flight,
            "served": self.served,
            "draining": self.draining,
            "ejected": self.ejected_until > now,
            "idle_connections": len(self.idle),
        }


@dataclass(slots=True)
class RevisionRoute:
    name: str
    version: str
    labels: tuple[str, ...]
    weight: int
    replicas: list[Replica]
    stats: RevisionStats
    header_bytes: bytes = b""
    round_robin: bool = False
    failing: tuple[bool, ...] = ()
    _rr: int = 0

    def pick(self, now: float, exclude: tuple[Replica, ...] = ()) -> Replica | None:
        """Least outstanding requests among ready replicas, round-robin among equals (or plain
        round-robin with ``loadBalancer: roundRobin``).

        Ejected replicas are skipped unless every replica is ejected (panic mode, as Envoy
        does): an ejection must never turn a degraded revision into a dead one.
        """
        if len(self.replicas) == 1:
            rep = self.replicas[0]
            if rep.draining or rep in exclude:
                return None
            return rep
        best: Replica | None = None
        fallback: Replica | None = None
        count = len(self.replicas)
        self._rr += 1
        for i in range(count):
            rep = self.replicas[(self._rr + i) % count]
            if rep.draining or rep in exclude:
                continue
            if rep.ejected_until > now:
                if fallback is None or rep.in_flight < fallback.in_flight:
                    fallback = rep
                continue
            if best is None or rep.in_flight < best.in_flight:
                best = rep
                if self.round_robin:
                    break
        return best or fallback


@dataclass(slots=True)
class AppRoutes:
    """Routes of one app's public listener."""

    app: str
    listen: str
    revisions: list[RevisionRoute]
    override_header: bytes = b"x-rollwise-revision"
    sticky_header: bytes = b""
    override_cookie: bytes = b""
    sticky_cookie: bytes = b""
    header_routes: list[tuple[bytes, bytes, str]] = field(default_factory=list)
    special: frozenset[bytes] = SPECIAL_HEADERS
    failing: tuple[bool, ...] = ()
    a2a: A2ARouting | None = None
    failing_outcomes: frozenset[str] = frozenset()
    # the shared map of the app's conversations (``affinity.py``), set by the server
    conversations: ConversationMap | None = None
    by_code: dict[int, tuple[RevisionRoute, Replica]] = field(default_factory=dict)
    _cumulative: list[int] = field(default_factory=list)
    _weighted: list[RevisionRoute] = field(default_factory=list)
    _by_key: dict[str, RevisionRoute] = field(default_factory=dict)
    _rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if not self.failing:
            self.failing = _FAILING_5XX
        self.special = SPECIAL_HEADERS | {self.override_header, self.sticky_header} - {b""}
        if self.a2a is not None:
            self.failing_outcomes = failing_outcomes(self.a2a.failure_outcomes)
        total = 0
        for rev in self.revisions:
            rev.failing = self.failing
            for rep in rev.replicas:
                self.by_code[rep.code] = (rev, rep)
            self._by_key[rev.name] = rev
            for label in rev.labels:
                self._by_key.setdefault(label, rev)
            if rev.weight > 0:
                total += rev.weight
                self._cumulative.append(total)
                self._weighted.append(rev)

    @property
    def fallback(self) -> RevisionRoute | None:
        """Where a request goes when its revision has no replica left: stable, else heaviest."""
        stable = self._by_key.get("stable")
        if stable is not None:
            return stable
        return max(self.revisions, key=lambda r: r.weight, default=None)

    def by_key(self, key: str) -> RevisionRoute | None:
        return self._by_key.get(key)

    def choose(self, forced: str | None, sticky: str | None) -> RevisionRoute | None:
        if forced:
            rev = self._by_key.get(forced)
            if rev is not None:
                return rev
        if len(self._weighted) == 1:
            return self._weighted[0]
        if not self._weighted:
            return self.fallback
        total = self._cumulative[-1]
        point = zlib.crc32(sticky.encode()) % total if sticky else int(self._rng.random() * total)
        return self._weighted[bisect_right(self._cumulative, point)]


@dataclass(slots=True)
class RoutingTable:
    generation: int
    apps: dict[str, AppRoutes]

    @classmethod
    def empty(cls) -> RoutingTable:
        return cls(generation=0, apps={})

    @classmethod
    def build(
        cls, table: Table, previous: RoutingTable, kept: dict[str, AppRoutes] | None = None
    ) -> RoutingTable:
        """Live routes for ``table``, reusing replicas and stats of ``previous`` by identity;
        the apps in ``kept`` keep their live routes as they are."""
        old_replicas: dict[str, Replica] = {}
        old_stats: dict[tuple[str, str], RevisionStats] = {}
        for app in previous.apps.values():
            if kept is not None and app.app in kept:
                continue
            for rev in app.revisions:
                old_stats[(app.app, rev.name)] = rev.stats
                for rep in rev.replicas:
                    old_replicas[rep.address] = rep
        apps: dict[str, AppRoutes] = dict(kept or {})
        for name, spec in table.apps.items():
            revisions = []
            for entry in spec.revisions:
                replicas = []
                for item in entry.replicas:
                    rep = old_replicas.get(item.address) or Replica(item.address)
                    rep.draining = item.draining
                    replicas.append(rep)
                header = (
                    f"x-rollwise-revision: {entry.name}\r\nx-rollwise-version: {entry.version}\r\n"
                )
                revisions.append(
                    RevisionRoute(
                        name=entry.name,
                        version=entry.version,
                        labels=entry.labels,
                        weight=entry.weight,
                        replicas=replicas,
                        stats=old_stats.get((name, entry.name)) or RevisionStats(),
                        header_bytes=header.encode("latin-1"),
                        round_robin=spec.load_balancer == "roundRobin",
                    )
                )
            header_routes = [
                (n.lower().encode(), v.encode(), route.revision)
                for route in spec.header_routes
                for n, v in route.match
            ]
            apps[name] = AppRoutes(
                app=name,
                listen=spec.listen,
                revisions=revisions,
                override_header=_lower(spec.override_header),
                sticky_header=_lower(spec.sticky_header),
                override_cookie=(spec.override_cookie or "").encode("latin-1"),
                sticky_cookie=(spec.sticky_cookie or "").encode("latin-1"),
                failing=failing_statuses(list(spec.failure_status)),
                header_routes=header_routes,
                a2a=spec.a2a,
            )
        return cls(generation=table.generation, apps=apps)

    def replicas(self) -> set[Replica]:
        return {rep for app in self.apps.values() for rev in app.revisions for rep in rev.replicas}


def _lower(name: str | None) -> bytes:
    return (name or "").lower().encode("latin-1")


def failing_statuses(spec: list[str | int]) -> tuple[bool, ...]:
    """``["5xx", 429]`` as a lookup by status code (0–999): one index per request, no parsing."""
    failing = [False] * 1000
    for item in spec:
        text = str(item)
        if text.endswith("xx"):
            first = int(text[0]) * 100
            failing[first : first + 100] = [True] * 100
        else:
            failing[int(text)] = True
    return tuple(failing)


_FAILING_5XX = failing_statuses(["5xx"])
