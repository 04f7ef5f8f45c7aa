"""``rollwise service install|uninstall``: systemd units that keep the controller running."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rollwise.cli.common import StateDir, out
from rollwise.client import default_state_dir
from rollwise.errors import UsageError

__all__ = ["service_app"]

service_app = typer.Typer(
    help="systemd units that restart the controller (and so heal kill -9 of all of it).",
    no_args_is_help=True,
)
UserOpt = Annotated[
    bool, typer.Option("--user", help="A user unit (~/.config/systemd/user), not a system one.")
]
UnitDirOpt = Annotated[Path | None, typer.Option("--unit-dir", help="Write the unit here instead.")]
NameOpt = Annotated[str, typer.Option("--name", help="The unit's name.")]


@service_app.command("install")
def install(
    up_args: Annotated[
        list[str] | None,
        typer.Argument(help="More `rollwise up` options, after --, e.g. -- --dashboard"),
    ] = None,
    user: UserOpt = False,
    unit_dir: UnitDirOpt = None,
    name: NameOpt = "rollwise",
    state_dir: StateDir = None,
) -> None:
    """Write the controller's unit (Restart=always, KillMode=process); print how to start it."""
    from rollwise.units import Unit, render_unit
    from rollwise.units import unit_dir as default_dir

    if "--detach" in (up_args or []) or "-d" in (up_args or []):
        raise UsageError("the unit runs `rollwise up` in the foreground: leave out --detach")
    unit = Unit(name, (state_dir or default_state_dir()).resolve(), user, tuple(up_args or ()))
    directory = unit_dir or default_dir(user)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / unit.file_name).write_text(render_unit(unit))
    except OSError as exc:
        raise UsageError(
            f"cannot write {directory / unit.file_name}: {exc.strerror}; "
            "run it as root, or use --user"
        ) from None
    scope = " --user" if user else ""
    out.print(f"wrote {directory / unit.file_name}")
    out.print(f"start it: systemctl{scope} daemon-reload && systemctl{scope} enable --now {name}")


@service_app.command("uninstall")
def uninstall(
    user: UserOpt = False, unit_dir: UnitDirOpt = None, name: NameOpt = "rollwise"
) -> None:
    """Remove the unit (stop it first: systemctl [--user] disable --now NAME)."""
    from rollwise.units import unit_dir as default_dir

    path = (unit_dir or default_dir(user)) / f"{name}.service"
    if not path.exists():
        raise UsageError(f"no unit {path}; nothing to remove")
    path.unlink()
    scope = " --user" if user else ""
    out.print(f"removed {path}; then: systemctl{scope} daemon-reload")
