"""Markdown documentation of an agent from its card: what it is, how to reach it, its skills
and its extensions (with the version each extension's URI carries)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollwise.a2a.diff import extension_version, extensions, interfaces

__all__ = ["card_markdown"]


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def card_markdown(card: Mapping[str, Any], title_note: str = "") -> str:
    name = card.get("name", "(unnamed agent)")
    lines = [f"# {name} {card.get('version', '')}".rstrip() + title_note, ""]
    if card.get("description"):
        lines += [str(card["description"]), ""]
    provider = card.get("provider") or {}
    if provider:
        lines += [
            f"Provider: {provider.get('organization', '')} {provider.get('url', '')}".rstrip(),
            "",
        ]
    caps = card.get("capabilities") or {}
    flags = [f for f in ("streaming", "pushNotifications", "extendedAgentCard") if caps.get(f)]
    lines += ["## Interfaces", "", "| binding | protocol |", "|---|---|"]
    lines += [f"| {b} | {v} |" for b, v in sorted(interfaces(card))]
    lines += ["", f"Capabilities: {', '.join(flags) if flags else 'none beyond request/response'}."]
    modes_in = ", ".join(card.get("defaultInputModes") or [])
    modes_out = ", ".join(card.get("defaultOutputModes") or [])
    lines += [f"Input: {modes_in or '-'}; output: {modes_out or '-'}.", "", "## Skills", ""]
    skills = [s for s in card.get("skills") or [] if isinstance(s, dict)]
    if not skills:
        lines += ["None declared.", ""]
    for skill in skills:
        lines += [f"### {skill.get('name', skill.get('id'))} (`{skill.get('id')}`)", ""]
        if skill.get("description"):
            lines += [str(skill["description"]), ""]
        if skill.get("tags"):
            lines += ["Tags: " + ", ".join(f"`{t}`" for t in skill["tags"]), ""]
        if skill.get("examples"):
            lines += ["Examples:", ""] + [f"- {_cell(e)}" for e in skill["examples"]] + [""]
    lines += ["## Extensions", ""]
    found = extensions(card)
    if not found:
        lines += ["None declared.", ""]
    else:
        lines += ["| URI | version | required | description |", "|---|---|---|---|"]
        for uri, ext in found.items():
            required = "yes" if ext.get("required") else "no"
            lines.append(
                f"| {uri} | {extension_version(uri)} | {required} | "
                f"{_cell(ext.get('description', ''))} |"
            )
        lines += [
            "",
            "Activate extensions with the `A2A-Extensions` header (comma-separated URIs). A "
            "required extension must be activated, or the agent rejects the call.",
            "",
        ]
    return "\n".join(lines)
