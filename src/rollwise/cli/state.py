"""The state directory's own commands: ``backup`` (``--list``), ``restore``, ``doctor`` and
``bundle``.

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
from rollwise.cli.election import Kubeconfig, KubeContext
from rollwise.client import default_state_dir

__all__ = ["backup", "bundle", "doctor", "restore"]


def _dir(state_dir: Path | None) -> Path:
    return (state_dir or default_state_dir()).resolve()


def backup(
    to: Annotated[
        Path | None, typer.Option("--to", help="The file (default <state>/backups/state-<UTC>.db).")
    ] = None,
    listing: Annotated[
        bool, typer.Option("--list", help="List the backups in <state>/backups, checked.")
    ] = False,
    output: OutputOpt = Output.TEXT,
    state_dir: StateDir = None,
) -> None:
    """Copy the state store (apps, revisions, history, events) to a file, safely while the
    controller runs; or list the backups taken (name, time, size, integrity)."""
    from rollwise.store.backup import backup_name, take_backup

    directory = _dir(state_dir)
    if listing:
        _list_backups(directory / "backups", output)
        return
    target = to or directory / "backups" / backup_name()
    info = take_backup(directory / "state.db", target)
    if output == Output.JSON:
        print_json(info.as_json())
    else:
        out.print(f"backed up {directory} to {info.path}: {info.summary()}")


def _list_backups(directory: Path, output: Output) -> None:
    import time

    from rollwise.store.backup import backup_listing

    found = backup_listing(directory)
    if output == Output.JSON:
        print_json([b.as_json() for b in found])
        return
    if not found:
        out.print(f"no backups in {directory}; take one with `rollwise backup`")
        return
    table = Table(box=None, header_style="bold")
    for col in ("NAME", "TAKEN (UTC)", "SIZE", "INTEGRITY"):
        table.add_column(col, overflow="fold")
    for b in found:
        taken = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(b.taken))
        style = "green" if b.integrity == "ok" else "bold red"
        table.add_row(b.name, taken, f"{b.size / 1024:.0f} KiB", Text(b.integrity, style=style))
    out.print(table)
    if any(b.integrity != "ok" for b in found):
        raise typer.Exit(1)


def bundle(
    target: Annotated[
        str,
        typer.Argument(
            help="The app to bundle, or `verify` to check a bundle.", show_default=False
        ),
    ],
    file: Annotated[
        Path | None, typer.Argument(help="With `verify`: the bundle to check.", show_default=False)
    ] = None,
    revision: Annotated[
        int | None, typer.Option("--revision", help="The revision (default: the newest).")
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("-o", "--out", help="The bundle to write (FILE.tar.gz).")
    ] = None,
    state_dir: StateDir = None,
) -> None:
    """Write a release bundle (`rollwise bundle APP [--revision N] -o FILE.tar.gz`): the
    revision's spec with secrets redacted, its record, agent card and card docs, and a
    sha256 manifest; or check one (`rollwise bundle verify FILE`)."""
    from rollwise.bundle import verify_bundle, write_bundle
    from rollwise.errors import UsageError
    from rollwise.store import Store

    if target == "verify":
        if file is None:
            raise UsageError("rollwise bundle verify FILE: give the bundle to check")
        info = verify_bundle(file)
        out.print(
            f"{file}: verified, {info.app} revision {info.revision} ({info.version}), "
            f"{len(info.files)} files match the manifest"
        )
        return
    if file is not None:
        raise UsageError(
            f"rollwise bundle {target} {file}: write the bundle's file with -o, "
            f"e.g. rollwise bundle {target} -o {file}"
        )
    if out_file is None:
        raise UsageError(f"rollwise bundle {target}: say where with -o FILE.tar.gz")
    store_path = _dir(state_dir) / "state.db"
    if not store_path.is_file():
        raise UsageError(f"{store_path}: no state store here; give --state-dir")
    store = Store(store_path)
    try:
        info = write_bundle(store, target, revision, out_file)
    finally:
        store.close()
    out.print(
        f"wrote {out_file}: {info.app} revision {info.revision} ({info.version}), "
        f"{', '.join(info.files)} + manifest.json"
    )


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


def doctor(
    output: OutputOpt = Output.TEXT,
    state_dir: StateDir = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            "-n",
            help="Also check the cluster: may this kubeconfig run rollwise's apps there?",
        ),
    ] = None,
    kubeconfig: Kubeconfig = None,
    context: KubeContext = None,
) -> None:
    """Check the state directory: store integrity, stale pids, orphans, port conflicts; with
    --namespace, the cluster's permissions too (kubectl auth can-i, for all rollwise does)."""
    from rollwise.doctor import cluster_findings, diagnose

    findings = diagnose(_dir(state_dir))
    if namespace is not None:
        findings += cluster_findings(kubeconfig, context, namespace)
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
