"""What changed between two agent cards, and which changes break the old card's clients.

A client built against the old card keeps calling its skills, speaking its protocol versions
and activating (only) its extensions. So these break it, and block a rollout unless the spec
says ``a2a.allowBreaking: true``:

- a skill removed (matched by ``id``);
- a protocol version (or a binding) no interface offers any more;
- an extension removed (matched by ``uri``), one turned from optional to ``required``, or a
  new ``required`` one (the agent must reject clients that do not activate it: -32008);
- streaming or push notifications no longer offered.

Everything else (skills added or reworded, optional extensions added, URLs, security schemes,
the agent's own version) is reported as a change that breaks nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CardDiff",
    "Change",
    "compatibility",
    "diff_cards",
    "extension_version",
    "extensions",
    "interfaces",
]


@dataclass(frozen=True, slots=True)
class Change:
    area: str  # skill, extension, interface, capability, security, card
    subject: str
    detail: str
    breaking: bool = False

    def __str__(self) -> str:
        return f"{self.area} {self.subject}: {self.detail}"

    def as_json(self) -> dict[str, Any]:
        return {
            "area": self.area,
            "subject": self.subject,
            "detail": self.detail,
            "breaking": self.breaking,
        }


@dataclass(frozen=True, slots=True)
class CardDiff:
    changes: list[Change] = field(default_factory=list)

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    def as_json(self) -> dict[str, Any]:
        return {
            "breaking": len(self.breaking),
            "changes": [c.as_json() for c in self.changes],
        }


def interfaces(card: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(binding, protocol version) pairs the card offers, for 1.0 and 0.3 cards alike."""
    found: set[tuple[str, str]] = set()
    for interface in card.get("supportedInterfaces") or []:
        if isinstance(interface, dict):
            found.add(
                (
                    str(interface.get("protocolBinding", "")),
                    str(interface.get("protocolVersion", "")),
                )
            )
    if not found and "url" in card:  # a 0.3 card
        version = str(card.get("protocolVersion", "0.3"))
        found.add((str(card.get("preferredTransport", "JSONRPC")), version))
        for extra in card.get("additionalInterfaces") or []:
            if isinstance(extra, dict):
                found.add((str(extra.get("transport", "")), version))
    return found


def extensions(card: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The card's extensions by ``uri``."""
    caps = card.get("capabilities") or {}
    return {
        str(e["uri"]): e
        for e in (caps.get("extensions") or [])
        if isinstance(e, dict) and isinstance(e.get("uri"), str)
    }


def extension_version(uri: str) -> str:
    """The version an extension's URI carries (``.../timestamp/v1`` → ``v1``), or ``-``."""
    match = re.search(r"/(v\d+(?:\.\d+)*)(?:/|$)", uri)
    return match.group(1) if match else "-"


def _skills(card: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        str(s["id"]): s
        for s in (card.get("skills") or [])
        if isinstance(s, dict) and isinstance(s.get("id"), str)
    }


def _protocol_versions(pairs: set[tuple[str, str]]) -> set[str]:
    return {version for _, version in pairs}


def _skill_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before, after = _skills(old), _skills(new)
    changes = [
        Change("skill", sid, "removed; clients that call it will fail", breaking=True)
        for sid in sorted(before.keys() - after.keys())
    ]
    changes += [Change("skill", sid, "added") for sid in sorted(after.keys() - before.keys())]
    for sid in sorted(before.keys() & after.keys()):
        fields = sorted(
            k for k in set(before[sid]) | set(after[sid]) if before[sid].get(k) != after[sid].get(k)
        )
        if fields:
            changes.append(Change("skill", sid, f"changed: {', '.join(fields)}"))
    return changes


def _interface_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before, after = interfaces(old), interfaces(new)
    changes: list[Change] = []
    for version in sorted(_protocol_versions(before) - _protocol_versions(after)):
        changes.append(
            Change("interface", f"protocol {version}", "dropped; its clients cannot connect", True)
        )
    for version in sorted(_protocol_versions(after) - _protocol_versions(before)):
        changes.append(Change("interface", f"protocol {version}", "added"))
    kept = _protocol_versions(before) & _protocol_versions(after)
    for binding, version in sorted(before - after):
        if version in kept:
            changes.append(
                Change(
                    "interface",
                    f"{binding} {version}",
                    "dropped; clients of this binding cannot connect",
                    breaking=True,
                )
            )
    for binding, version in sorted(after - before):
        if version in kept:
            changes.append(Change("interface", f"{binding} {version}", "added"))
    return changes


def _extension_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before, after = extensions(old), extensions(new)
    changes: list[Change] = []
    for uri in sorted(before.keys() - after.keys()):
        changes.append(
            Change("extension", uri, "removed; clients that activate it lose it", breaking=True)
        )
    for uri in sorted(after.keys() - before.keys()):
        if after[uri].get("required"):
            changes.append(
                Change(
                    "extension",
                    uri,
                    "added as required; clients that do not activate it are rejected (-32008)",
                    breaking=True,
                )
            )
        else:
            changes.append(Change("extension", uri, "added (optional)"))
    for uri in sorted(before.keys() & after.keys()):
        was, now = bool(before[uri].get("required")), bool(after[uri].get("required"))
        if now and not was:
            changes.append(
                Change(
                    "extension",
                    uri,
                    "now required (was optional); clients that do not activate it are rejected",
                    breaking=True,
                )
            )
        elif was and not now:
            changes.append(Change("extension", uri, "now optional (was required)"))
        if before[uri].get("params") != after[uri].get("params"):
            changes.append(Change("extension", uri, "params changed"))
    return changes


def _capability_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before, after = old.get("capabilities") or {}, new.get("capabilities") or {}
    changes: list[Change] = []
    for flag in ("streaming", "pushNotifications", "extendedAgentCard"):
        was, now = bool(before.get(flag)), bool(after.get(flag))
        if was and not now:
            breaks = flag != "extendedAgentCard"
            changes.append(Change("capability", flag, "no longer offered", breaking=breaks))
        elif now and not was:
            changes.append(Change("capability", flag, "now offered"))
    return changes


def _security_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before, after = old.get("securitySchemes") or {}, new.get("securitySchemes") or {}
    changes = [Change("security", n, "scheme removed") for n in sorted(set(before) - set(after))]
    changes += [Change("security", n, "scheme added") for n in sorted(set(after) - set(before))]
    changes += [
        Change("security", n, "scheme changed")
        for n in sorted(set(before) & set(after))
        if before[n] != after[n]
    ]
    if json.dumps(old.get("securityRequirements"), sort_keys=True) != json.dumps(
        new.get("securityRequirements"), sort_keys=True
    ):
        changes.append(Change("security", "securityRequirements", "changed"))
    return changes


def diff_cards(old: Mapping[str, Any], new: Mapping[str, Any]) -> CardDiff:
    """Every change from ``old`` to ``new``, breaking ones marked."""
    changes: list[Change] = []
    if old.get("version") != new.get("version"):
        changes.append(Change("card", "version", f"{old.get('version')} → {new.get('version')}"))
    changes += _skill_changes(old, new)
    changes += _interface_changes(old, new)
    changes += _extension_changes(old, new)
    changes += _capability_changes(old, new)
    changes += _security_changes(old, new)
    return CardDiff(changes)


def compatibility(cards: Mapping[int, Mapping[str, Any]]) -> dict[tuple[int, int], list[Change]]:
    """For each (client's revision, server's revision): what breaks a client built against
    the first when the second serves it (an empty list: it can)."""
    return {
        (client, server): diff_cards(cards[client], cards[server]).breaking
        for client in cards
        for server in cards
    }
