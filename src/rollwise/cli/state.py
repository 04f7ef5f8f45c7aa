"""The state directory's own commands: ``backup``, ``restore`` and ``doctor``.

They work on the files, with or without a controller running: a backup is consistent while
it writes; a restore refuses while one runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from rollwise.cli.common import Output, OutputOpt, StateDir, out, print_json
from rollwise.client import default_state_dir

__all__ = ["backup", "doctor", "restore"]


def _dir(state_dir: Path | None) -> Path:
    return (state_dir or default_state_dir()).resolve()


def backup(
    to: Annotated[
        Path | None, typer.Option("--to", help="The file (default <state>/backups/state-<UTC>.db).")
    ] = None,
    output: OutputOpt = Output.TEXT,
    state_dir: StateDir = None,
) -> None:
    """Copy the state store (apps, revisions, history, events) to a file, safely while the
    controller runs."""
    from rollwise.store.backup import backup_name, take_backup

    directory = _dir(state_dir)
    target = to or directory / "backups" / backup_name()
    info = take_backup(directory / "state.db", target)
    if output == Output.JSON:
        print_json(info.as_json())
    else:
        out.print(f"backed up {directory} to {info.path}: {info.summary()}")


def restore(
    file: Annotated[Path, typer.Argument(help="A backup written by `rollwise backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Restore even over rollouts in progress.")
    ] = False,
    state_dir: StateDir = None,
) -> None:
    """Replace the state store with a backup (checked first; the controller must be down)."""
    from rollwise.store.backup import restore as restore_store

    directory = _dir(state_dir)
    info = restore_store(file.resolve(), directory, force=force)
    out.print(f"restored {file} into {directory}: {info.summary()}; start it with `rollwise up`")


STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def doctor(output: OutputOpt = Output.TEXT, state_dir: StateDir = None) -> None:
    """Check the state directory: store integrity, stale pids, orphans, port conflicts."""
    from rollwise.doctor import diagnose

    findings = diagnose(_dir(state_dir))
    if output == Output.JSON:
        print_json([f.as_json() for f in findings])
    else:
        table = Table(box=None, header_style="bold")
        for col in ("CHECK", "STATE", "DETAIL", "FIX"):
            table.add_column(col, overflow="fold")
        for f in findings:
            table.add_row(f.check, Text(f.state, style=STYLE[f.state]), f.detail, f.fix)
        out.print(table)
    if any(f.state == "fail" for f in findings):
        raise typer.Exit(1)
