"""``rollwise events``: what the controller decided about an app, and why, as it happens.

Argo Rollouts and Flagger users read a rollout's story in ``kubectl describe`` (or
``kubectl get events --watch``); here it is one line per event, oldest first, and
``--follow`` keeps printing new ones. Following pages through the admin API by event id
(``?after=``), so a burst between two polls is printed whole, never skipped.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.text import Text

from rollwise.cli.common import Output, OutputOpt, StateDir, client, err, out, print_json
from rollwise.words import is_warning

__all__ = ["event_line", "events"]

POLL_S = 0.5
PAGE = 1000  # the API's largest answer
_GOOD = re.compile(r"Completed|Passed|Recovered|Ready")


def event_line(event: dict[str, Any]) -> Text:
    """``2026-11-22T19:08:04Z  RolloutStarted  rev 2  message``, the kind coloured."""
    when = datetime.fromtimestamp(event["ts"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    kind = event["kind"]
    style = "red" if is_warning(kind) else "green" if _GOOD.search(kind) else "cyan"
    revision = f"rev {event['revision']}" if event.get("revision") is not None else "-"
    line = Text(f"{when}  ")
    line.append(f"{kind:<24}", style=style)
    line.append(f"  {revision:<7}  {event['message']}")
    return line


def events(
    name: Annotated[str, typer.Argument(help="The app (`-`: the controller's own events).")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events (Ctrl-C stops).")
    ] = False,
    tail: Annotated[
        int, typer.Option("--tail", min=1, max=PAGE, help="How many of the newest to start with.")
    ] = 50,
    output: OutputOpt = Output.TEXT,
    state_dir: StateDir = None,
) -> None:
    """Show an app's events (rollout steps, analysis verdicts, aborts, crashes), oldest
    first. With -o json: an array, or one object per line when following."""
    with client(state_dir) as admin:
        path = f"/apps/{name}/events"
        rows: list[dict[str, Any]] = admin.request("GET", path, params={"limit": tail})
        if output == Output.JSON and not follow:
            print_json(rows)
            return
        if not rows and output == Output.TEXT:
            err.print(f"no events for {name} yet")
        last = _show(rows, output, 0)
        while follow:
            time.sleep(POLL_S)
            while True:
                page = admin.request("GET", path, params={"after": last, "limit": PAGE})
                last = _show(page, output, last)
                if len(page) < PAGE:
                    break


def _show(rows: list[dict[str, Any]], output: Output, last: int) -> int:
    """Print ``rows`` (JSON Lines when following with -o json); the last id printed."""
    for row in rows:
        if output == Output.JSON:
            out.print(json.dumps(row), markup=False, highlight=False, soft_wrap=True)
        else:
            out.print(event_line(row), highlight=False, soft_wrap=True)
        last = row["id"]
    return last
