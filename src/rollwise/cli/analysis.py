"""``rollwise analysis``: canary analysis away from a live rollout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rollwise.cli.common import Output, OutputOpt, out, print_json

__all__ = ["analysis_app"]

analysis_app = typer.Typer(
    help="Canary analysis: replay a recorded request log.", no_args_is_help=True
)


@analysis_app.command("replay")
def analysis_replay(
    file: Annotated[Path, typer.Argument(help="A request log written by the proxy's --record.")],
    spec_file: Annotated[
        Path, typer.Option("--filename", "-f", help="The spec whose analysis settings judge.")
    ] = Path("rollwise.yaml"),
    canary: Annotated[
        str | None, typer.Option("--canary", help="Canary revision (default: the newer one).")
    ] = None,
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="Baseline revision (default: the older).")
    ] = None,
    output: OutputOpt = Output.TEXT,
) -> None:
    """Judge a recorded request log with a spec's analysis settings; print the verdict timeline.

    Exit code 1 when the verdict is Fail, so that a tuning script can tell.
    """
    from rollwise.analysis.replay import replay_file
    from rollwise.cli.views import replay_view
    from rollwise.spec import load_spec

    result = replay_file(file, load_spec(spec_file), canary=canary, baseline=baseline)
    if output == Output.JSON:
        print_json(result.as_json())
    else:
        out.print(replay_view(result))
    if result.verdict.outcome == "fail":
        raise typer.Exit(1)
