"""What every command group shares: the consoles, ``--output``, ``--state-dir`` and the
admin client."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from rollwise.client import AdminClient, default_state_dir

__all__ = ["Output", "OutputOpt", "StateDir", "client", "err", "out", "print_json"]

# Piped output is for grep and scripts: never cut a name to fit 80 columns.
out = Console(width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True)


class Output(StrEnum):
    TEXT = "text"
    JSON = "json"


StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="ROLLWISE_STATE_DIR",
        help="Where the controller keeps its state (default .rollwise).",
        show_default=False,
    ),
]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="text or json")]


def client(state_dir: Path | None, timeout: float = 30.0) -> AdminClient:
    return AdminClient(state_dir or default_state_dir(), timeout=timeout)


def print_json(data: Any) -> None:
    out.print_json(json.dumps(data))
