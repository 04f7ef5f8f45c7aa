"""Fetching an agent card from one address, and validating it field by field.

A card served by a canary or preview replica advertises the *public* URL (that is where its
clients will reach it), so a check aimed at one revision fetches the card from that
revision's own address and never follows ``supportedInterfaces[].url``.

Validation follows the A2A 1.0 schema (``supportedInterfaces``) and, for older agents, the
0.3 one (top-level ``url`` and ``protocolVersion``). A 1.0 card that also carries the 0.3
fields (the SDK writes them when a 0.3 interface is declared) is judged as 1.0. Each problem
names its field path, what was expected and what came, like a2a-inspector's card checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

__all__ = [
    "BINDINGS",
    "CARD_PATH",
    "LEGACY_CARD_PATH",
    "LEGACY_FIELDS",
    "CardCheck",
    "CardProblem",
    "FetchedCard",
    "brief",
    "fetch_card",
    "validate_card",
]

CARD_PATH = "/.well-known/agent-card.json"
LEGACY_CARD_PATH = "/.well-known/agent.json"
BINDINGS = ("JSONRPC", "GRPC", "HTTP+JSON")
Protocol = Literal["1.0", "0.3"]


@dataclass(frozen=True, slots=True)
class CardProblem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class CardCheck:
    """The verdict on one card: which protocol version it follows, what is wrong, and what
    is allowed but will trouble some clients (``warnings``)."""

    protocol: Protocol
    problems: list[CardProblem] = field(default_factory=list)
    warnings: list[CardProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class FetchedCard:
    card: dict[str, Any]
    path: str
    fallback: bool  # served only at the 0.3 path


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


class _Checker:
    def __init__(self) -> None:
        self.problems: list[CardProblem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(CardProblem(path, message))

    def string(self, obj: Mapping[str, Any], key: str, path: str, required: bool = True) -> None:
        if key not in obj:
            if required:
                self.add(f"{path}{key}", "required, missing")
            return
        value = obj[key]
        if not isinstance(value, str):
            self.add(f"{path}{key}", f"expected a string, got {_kind(value)}")
        elif required and not value.strip():
            self.add(f"{path}{key}", "expected a non-empty string, got an empty one")

    def url(self, obj: Mapping[str, Any], key: str, path: str, required: bool = True) -> None:
        self.string(obj, key, path, required)
        value = obj.get(key)
        if isinstance(value, str) and value and not value.startswith(("http://", "https://")):
            self.add(f"{path}{key}", f"expected an http(s) URL, got {value!r}")

    def strings(self, obj: Mapping[str, Any], key: str, path: str, required: bool = True) -> None:
        if key not in obj:
            if required:
                self.add(f"{path}{key}", "required, missing")
            return
        value = obj[key]
        if not isinstance(value, list):
            self.add(f"{path}{key}", f"expected an array of strings, got {_kind(value)}")
            return
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.add(f"{path}{key}[{i}]", f"expected a string, got {_kind(item)}")

    def boolean(self, obj: Mapping[str, Any], key: str, path: str) -> None:
        if key in obj and not isinstance(obj[key], bool):
            self.add(f"{path}{key}", f"expected true or false, got {_kind(obj[key])}")

    def obj(
        self, parent: Mapping[str, Any], key: str, path: str, required: bool = True
    ) -> Mapping[str, Any] | None:
        if key not in parent:
            if required:
                self.add(f"{path}{key}", "required, missing")
            return None
        value = parent[key]
        if not isinstance(value, dict):
            self.add(f"{path}{key}", f"expected an object, got {_kind(value)}")
            return None
        return value

    def array(
        self, parent: Mapping[str, Any], key: str, path: str, required: bool = True
    ) -> Sequence[Any] | None:
        if key not in parent:
            if required:
                self.add(f"{path}{key}", "required, missing")
            return None
        value = parent[key]
        if not isinstance(value, list):
            self.add(f"{path}{key}", f"expected an array, got {_kind(value)}")
            return None
        return value

    def capabilities(self, card: Mapping[str, Any]) -> None:
        caps = self.obj(card, "capabilities", "")
        if caps is None:
            return
        for flag in ("streaming", "pushNotifications", "extendedAgentCard"):
            self.boolean(caps, flag, "capabilities.")
        for i, ext in enumerate(self.array(caps, "extensions", "capabilities.", False) or []):
            where = f"capabilities.extensions[{i}]."
            if not isinstance(ext, dict):
                self.add(where[:-1], f"expected an object, got {_kind(ext)}")
                continue
            self.string(ext, "uri", where)
            self.string(ext, "description", where, required=False)
            self.boolean(ext, "required", where)
            if "params" in ext and not isinstance(ext["params"], dict):
                self.add(f"{where}params", f"expected an object, got {_kind(ext['params'])}")

    def skills(self, card: Mapping[str, Any]) -> None:
        skills = self.array(card, "skills", "")
        if skills is None:
            return
        if not skills:
            self.add("skills", "expected at least one skill, got an empty array")
        for i, skill in enumerate(skills):
            where = f"skills[{i}]."
            if not isinstance(skill, dict):
                self.add(where[:-1], f"expected an object, got {_kind(skill)}")
                continue
            for key in ("id", "name", "description"):
                self.string(skill, key, where)
            self.strings(skill, "tags", where)
            for key in ("examples", "inputModes", "outputModes"):
                self.strings(skill, key, where, required=False)

    def interfaces(self, card: Mapping[str, Any]) -> None:
        interfaces = self.array(card, "supportedInterfaces", "")
        if interfaces is None:
            return
        if not interfaces:
            self.add("supportedInterfaces", "expected at least one interface, got none")
        for i, interface in enumerate(interfaces):
            where = f"supportedInterfaces[{i}]."
            if not isinstance(interface, dict):
                self.add(where[:-1], f"expected an object, got {_kind(interface)}")
                continue
            self.url(interface, "url", where)
            self.string(interface, "protocolVersion", where)
            binding = interface.get("protocolBinding")
            if binding is None:
                self.add(f"{where}protocolBinding", "required, missing")
            elif binding not in BINDINGS:
                self.add(
                    f"{where}protocolBinding",
                    f"expected one of {', '.join(BINDINGS)}, got {binding!r}",
                )


def protocol_of(card: Mapping[str, Any]) -> Protocol:
    """1.0 when ``supportedInterfaces`` is there; 0.3 when only the old top-level fields are."""
    if "supportedInterfaces" not in card and ("url" in card or "protocolVersion" in card):
        return "0.3"
    return "1.0"


def validate_card(card: object) -> CardCheck:
    """Every problem of an agent card, each with its field path."""
    if not isinstance(card, dict):
        return CardCheck("1.0", [CardProblem("$", f"expected a JSON object, got {_kind(card)}")])
    check = _Checker()
    protocol = protocol_of(card)
    for key in ("name", "description", "version"):
        check.string(card, key, "")
    check.capabilities(card)
    check.strings(card, "defaultInputModes", "")
    check.strings(card, "defaultOutputModes", "")
    check.skills(card)
    if protocol == "1.0":
        check.interfaces(card)
    else:
        check.url(card, "url", "")
        check.string(card, "protocolVersion", "")
        check.string(card, "preferredTransport", "", required=False)
    provider = check.obj(card, "provider", "", required=False)
    if provider is not None:
        check.string(provider, "organization", "provider.")
        check.url(provider, "url", "provider.")
    for key in ("documentationUrl", "iconUrl"):
        check.url(card, key, "", required=False)
    check.obj(card, "securitySchemes", "", required=False)
    check.array(card, "securityRequirements", "", required=False)
    check.array(card, "signatures", "", required=False)
    return CardCheck(protocol, check.problems, _old_client_warnings(card, protocol))


LEGACY_FIELDS = ("url", "protocolVersion", "preferredTransport")


def _old_client_warnings(card: Mapping[str, Any], protocol: Protocol) -> list[CardProblem]:
    """A 1.0 card without the 0.3 top-level fields is valid, but 0.3-era clients and linters
    (a2a-lint grades it down for the missing ``url``) cannot read it: declaring a 0.3
    interface too makes the SDK write them."""
    missing = [key for key in LEGACY_FIELDS if key not in card]
    if protocol != "1.0" or not missing:
        return []
    return [
        CardProblem(
            "$",
            f"no {', '.join(missing)}: clients of A2A 0.3 cannot read this card; declare a "
            "0.3 interface beside the 1.0 one (supportedInterfaces) to serve both",
        )
    ]


def _said(answer: httpx.Response) -> str:
    """What a refusal says, in brief: a JSON ``message`` (a Kubernetes API server's Status on
    the way to a pod), else the start of its text; empty when it says nothing."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    text = brief(message if isinstance(message, str) else answer.text, 160)
    return f" ({text})" if text else ""


def brief(text: str, limit: int = 120) -> str:
    """``text`` on one line, cut to ``limit`` characters: what an answer said, in a message."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def fetch_card(
    client: httpx.AsyncClient, base_url: str, path: str = CARD_PATH
) -> FetchedCard:
    """GET the card at ``path``; on a 404 there, try the 0.3 path and say so. Raises
    ``ValueError`` with what came instead of a JSON card (``httpx.HTTPError`` when nothing
    answered)."""
    base = base_url.rstrip("/")
    answer = await client.get(base + path)
    used, fallback = path, False
    if answer.status_code == 404 and path != LEGACY_CARD_PATH:
        legacy = await client.get(base + LEGACY_CARD_PATH)
        if legacy.status_code == 200:
            answer, used, fallback = legacy, LEGACY_CARD_PATH, True
    if answer.status_code != 200:
        raise ValueError(
            f"GET {path} answered {answer.status_code}{_said(answer)}, expected 200 with the card"
        )
    try:
        data = answer.json()
    except ValueError:
        raise ValueError(f"GET {used} answered 200 but not JSON: {answer.text[:80]!r}") from None
    if not isinstance(data, dict):
        raise ValueError(  # noqa: TRY004 (what came over the wire, not a caller's type error)
            f"GET {used} answered {_kind(data)}, expected a JSON object (the card)"
        )
    return FetchedCard(data, used, fallback)
