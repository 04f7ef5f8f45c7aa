"""The routing table: where each app's new requests go, as the controller decides it.

One type for everyone who speaks of routes: the controller builds it, the built-in proxy
parses it (``routing/proxy/table.py`` turns it into its live structures), the admin API reads
back what the proxy applied, and tests write it. Frozen dataclasses compare by value, so
"did this app's routes change?" is ``==``.

On the wire (the proxy's ``PUT /routes``) it is JSON in camelCase, unchanged from earlier
versions so that a controller adopts a proxy started by an older one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "A2ARouting",
    "AppTable",
    "HeaderRouteEntry",
    "ReplicaEntry",
    "RevisionEntry",
    "Table",
    "revision_entry",
]

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReplicaEntry:
    """One replica's address; a draining one gets no new request, its in-flight ones finish."""

    address: str
    draining: bool = False

    def to_json(self) -> Json:
        return (
            {"address": self.address, "draining": True}
            if self.draining
            else {"address": self.address}
        )


@dataclass(frozen=True, slots=True)
class RevisionEntry:
    """A revision's share of new requests and the replicas that serve it."""

    name: str
    version: str = ""
    labels: tuple[str, ...] = ()
    weight: int = 0
    replicas: tuple[ReplicaEntry, ...] = ()

    def to_json(self) -> Json:
        return {
            "name": self.name,
            "version": self.version,
            "labels": list(self.labels),
            "weight": self.weight,
            "replicas": [r.to_json() for r in self.replicas],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RevisionEntry:
        return cls(
            name=str(data["name"]),
            version=str(data.get("version", "")),
            labels=tuple(str(label) for label in data.get("labels", ())),
            weight=int(data.get("weight", 0)),
            replicas=tuple(
                ReplicaEntry(str(r["address"]), bool(r.get("draining", False)))
                for r in data["replicas"]
            ),
        )


def revision_entry(
    number: int | str,
    version: str,
    labels: Iterable[str],
    weight: int,
    addresses: Iterable[str],
    *,
    draining: bool = False,
    draining_addresses: Collection[str] = (),
) -> RevisionEntry:
    """The one way to build a revision's entry (``draining``: all its replicas; else
    those in ``draining_addresses``)."""
    return RevisionEntry(
        name=str(number),
        version=version,
        labels=tuple(labels),
        weight=weight,
        replicas=tuple(ReplicaEntry(a, draining or a in draining_addresses) for a in addresses),
    )


@dataclass(frozen=True, slots=True)
class HeaderRouteEntry:
    """Requests carrying every (header, value) pair go to ``revision`` (``setHeaderRoute``)."""

    revision: str
    match: tuple[tuple[str, str], ...]

    def to_json(self) -> Json:
        return {
            "revision": self.revision,
            "match": [{"headerName": n, "headerValue": v} for n, v in self.match],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HeaderRouteEntry:
        return cls(
            revision=str(data["revision"]),
            match=tuple((str(m["headerName"]), str(m["headerValue"])) for m in data["match"]),
        )


@dataclass(frozen=True, slots=True)
class A2ARouting:
    """How the proxy reads an A2A app's exchanges (``traffic.protocol: a2a``): which outcomes
    are the agent's failures, and how long it keeps each conversation on its replica
    (``max_conversations == 0``: it does not)."""

    failure_outcomes: tuple[str, ...]
    max_conversations: int = 0
    ttl_s: int = 3600
    idle_s: float = 30.0

    def to_json(self) -> Json:
        data: Json = {"failureOutcomes": list(self.failure_outcomes)}
        if self.max_conversations:
            data["affinity"] = {
                "maxConversations": self.max_conversations,
                "ttl": self.ttl_s,
                "idle": self.idle_s,
            }
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> A2ARouting:
        affinity = data.get("affinity") or {}
        return cls(
            failure_outcomes=tuple(str(o) for o in data.get("failureOutcomes", ())),
            max_conversations=int(affinity.get("maxConversations", 0)),
            ttl_s=int(affinity.get("ttl", 3600)),
            idle_s=float(affinity.get("idle", 30.0)),
        )


@dataclass(frozen=True, slots=True)
class AppTable:
    """One listener's routes: its revisions and how a request picks one (``spec.traffic``)."""

    listen: str
    revisions: tuple[RevisionEntry, ...] = ()
    override_header: str = "X-Rollwise-Revision"
    load_balancer: str = "leastRequest"
    failure_status: tuple[str, ...] = ("5xx",)
    override_cookie: str | None = None
    sticky_header: str | None = None
    sticky_cookie: str | None = None
    header_routes: tuple[HeaderRouteEntry, ...] = ()
    a2a: A2ARouting | None = None  # an A2A app: its answers are read (None: plain HTTP)

    def revision(self, name: str | int) -> RevisionEntry | None:
        return next((r for r in self.revisions if r.name == str(name)), None)

    def weights(self) -> dict[str, int]:
        return {r.name: r.weight for r in self.revisions}

    def to_json(self) -> Json:
        data: Json = {
            "listen": self.listen,
            "revisions": [r.to_json() for r in self.revisions],
            "overrideHeader": self.override_header,
            "loadBalancer": self.load_balancer,
            "failureStatus": list(self.failure_status),
        }
        optional = {
            "overrideCookie": self.override_cookie,
            "stickyHeader": self.sticky_header,
            "stickyCookie": self.sticky_cookie,
        }
        data.update({k: v for k, v in optional.items() if v})
        if self.header_routes:
            data["headerRoutes"] = [r.to_json() for r in self.header_routes]
        if self.a2a is not None:
            data["a2a"] = self.a2a.to_json()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AppTable:
        return cls(
            listen=str(data["listen"]),
            revisions=tuple(RevisionEntry.from_json(r) for r in data["revisions"]),
            override_header=str(data.get("overrideHeader") or "X-Rollwise-Revision"),
            load_balancer=str(data.get("loadBalancer") or "leastRequest"),
            failure_status=tuple(str(s) for s in data.get("failureStatus") or ("5xx",)),
            override_cookie=data.get("overrideCookie") or None,
            sticky_header=data.get("stickyHeader") or None,
            sticky_cookie=data.get("stickyCookie") or None,
            header_routes=tuple(
                HeaderRouteEntry.from_json(r) for r in data.get("headerRoutes", ())
            ),
            a2a=A2ARouting.from_json(data["a2a"]) if data.get("a2a") else None,
        )


@dataclass(frozen=True, slots=True)
class Table:
    """Every app's routes at one generation (the controller numbers them; the proxy answers
    the one it applied)."""

    generation: int
    apps: Mapping[str, AppTable] = field(default_factory=dict)

    def to_json(self) -> Json:
        return {
            "generation": self.generation,
            "apps": {k: v.to_json() for k, v in self.apps.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Table:
        return cls(
            generation=int(data["generation"]),
            apps={str(k): AppTable.from_json(v) for k, v in data["apps"].items()},
        )
