"""``rollwise a2a``: an A2A app's agent cards across its revisions: what changed, which
extensions each declares, which revisions can serve clients of which, and Markdown docs.

The controller keeps each revision's card as the revision served it (its card check, before
its first request); these commands read them and compute the views here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from rollwise.a2a.diff import compatibility, diff_cards, extension_version, extensions
from rollwise.a2a.docs import card_markdown
from rollwise.cli.common import Output, OutputOpt, StateDir, client, out, print_json
from rollwise.errors import NotFoundError, UsageError

__all__ = ["a2a_app"]

a2a_app = typer.Typer(
    help="Agent cards across revisions: diff, extensions, compatibility matrix, docs.",
    no_args_is_help=True,
)
AppArg = Annotated[str, typer.Argument(help="The app.")]


def _cards(name: str, state_dir: Path | None) -> list[dict[str, Any]]:
    with client(state_dir) as admin:
        rows: list[dict[str, Any]] = admin.request("GET", f"/apps/{name}/cards")
    if not rows:
        raise NotFoundError(
            f"no agent card kept for app {name}: cards are read from A2A apps (spec.a2a) "
            "when a revision rolls out"
        )
    return rows


def _pick(rows: list[dict[str, Any]], revision: int | None, what: str) -> dict[str, Any]:
    if revision is None:
        return rows[-1]
    for row in rows:
        if row["revision"] == revision:
            return row
    kept = ", ".join(str(r["revision"]) for r in rows)
    raise NotFoundError(f"no agent card kept for revision {revision} ({what}); kept: {kept}")


@a2a_app.command("diff")
def diff(
    name: AppArg,
    revision: Annotated[
        int | None,
        typer.Option("--revision", help="The new card (default: the canary, else the newest)."),
    ] = None,
    against: Annotated[
        int | None,
        typer.Option("--against", help="The old card (default: stable, else the one before)."),
    ] = None,
    output: OutputOpt = Output.TEXT,
    state_dir: StateDir = None,
) -> None:
    """What changed between two revisions' agent cards (exit 1 when it breaks clients)."""
    rows = _cards(name, state_dir)
    if revision is None:
        canary = [r for r in rows if r["canary"]]
        new = canary[0] if canary else rows[-1]
    else:
        new = _pick(rows, revision, "--revision")
    if against is None:
        stable = [r for r in rows if r["stable"] and r["revision"] != new["revision"]]
        older = [r for r in rows if r["revision"] < new["revision"]]
        if not stable and not older:
            raise UsageError(f"revision {new['revision']} has no older card to compare with")
        old = stable[0] if stable else older[-1]
    else:
        old = _pick(rows, against, "--against")
    result = diff_cards(old["card"], new["card"])
    if output == Output.JSON:
        print_json({"from": old["revision"], "to": new["revision"], **result.as_json()})
    else:
        out.print(
            f"agent card: revision {old['revision']} ({old['version']}) → "
            f"revision {new['revision']} ({new['version']})"
        )
        table = Table(box=None, header_style="bold")
        for col in ("", "AREA", "WHAT", "CHANGE"):
            table.add_column(col)
        for change in result.changes:
            mark = (
                Text("BREAKING", style="bold red") if change.breaking else Text("ok", style="green")
            )
            table.add_row(mark, change.area, change.subject, change.detail)
        out.print(table if result.changes else "no changes")
        breaks = len(result.breaking)
        out.print(f"{breaks} breaking change{'s' if breaks != 1 else ''}")
    if result.breaking:
        raise typer.Exit(1)


@a2a_app.command("extensions")
def extensions_(name: AppArg, output: OutputOpt = Output.TEXT, state_dir: StateDir = None) -> None:
    """The extensions each revision declares: URI, version (from the URI), required, params."""
    rows = _cards(name, state_dir)
    found = [
        {
            "revision": row["revision"],
            "version": row["version"],
            "uri": uri,
            "extension_version": extension_version(uri),
            "required": bool(ext.get("required")),
            "params": ext.get("params") or {},
            "description": ext.get("description", ""),
        }
        for row in rows
        for uri, ext in extensions(row["card"]).items()
    ]
    if output == Output.JSON:
        print_json(found)
        return
    table = Table(box=None, header_style="bold")
    for col in ("REVISION", "VERSION", "EXTENSION", "EXT VERSION", "REQUIRED", "PARAMS"):
        table.add_column(col, overflow="fold")
    for item in found:
        table.add_row(
            str(item["revision"]),
            item["version"],
            item["uri"],
            item["extension_version"],
            "yes" if item["required"] else "no",
            ", ".join(f"{k}={v}" for k, v in item["params"].items()) or "-",
        )
    out.print(table if found else "no revision declares an extension")


@a2a_app.command("matrix")
def matrix(name: AppArg, output: OutputOpt = Output.TEXT, state_dir: StateDir = None) -> None:
    """Which revisions can serve clients of which (rows: clients of; columns: served by)."""
    rows = _cards(name, state_dir)
    cards = {r["revision"]: r["card"] for r in rows}
    result = compatibility(cards)
    if output == Output.JSON:
        print_json(
            [
                {
                    "client": c,
                    "server": s,
                    "compatible": not breaks,
                    "breaks": [str(b) for b in breaks],
                }
                for (c, s), breaks in result.items()
            ]
        )
        return
    table = Table(box=None, header_style="bold", title="clients of ↓ served by →")
    table.add_column("CLIENTS OF")
    for row in rows:
        table.add_column(f"rev {row['revision']} ({row['version']})", justify="center")
    for client_row in rows:
        cells: list[Text | str] = [f"rev {client_row['revision']} ({client_row['version']})"]
        for server_row in rows:
            breaks = result[(client_row["revision"], server_row["revision"])]
            cells.append(
                Text("✓", style="green") if not breaks else Text(f"✗ {len(breaks)}", style="red")
            )
        table.add_row(*cells)
    out.print(table)
    for (c, s), breaks in result.items():
        for change in breaks:
            out.print(f"rev {s} breaks clients of rev {c}: {change}")


@a2a_app.command("docs")
def docs(
    name: AppArg,
    revision: Annotated[int | None, typer.Option("--revision", help="Default: the newest.")] = None,
    to: Annotated[Path | None, typer.Option("--to", help="Write to this file.")] = None,
    state_dir: StateDir = None,
) -> None:
    """Markdown documentation of the agent's skills and extensions, from its card."""
    row = _pick(_cards(name, state_dir), revision, "--revision")
    text = card_markdown(row["card"], f" (revision {row['revision']})")
    if to is None:
        out.print(text, markup=False, highlight=False)
    else:
        to.write_text(text)
        out.print(f"wrote {to}")
