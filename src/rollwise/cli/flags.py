"""``rollwise flags``: list, evaluate, set, roll out, reset feature flags and read their
history (flagd's definitions; agents read them over OFREP)."""

from __future__ import annotations

import getpass
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from rollwise.cli.common import Output, OutputOpt, StateDir, client, out, print_json
from rollwise.errors import UsageError

__all__ = ["flags_app"]

flags_app = typer.Typer(
    help="Feature flags, in flagd's format, served over OFREP.", no_args_is_help=True
)
AppArg = Annotated[str, typer.Argument(help="The app.")]
FlagArg = Annotated[str, typer.Argument(help="The flag's key.")]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who (default: your user name).")]


def _flags(state_dir: Any, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    with client(state_dir) as admin:
        return admin.request(method, path, json=body)


@flags_app.command("list")
def list_(name: AppArg, output: OutputOpt = Output.TEXT, state_dir: StateDir = None) -> None:
    """Each flag: its variants, default, targeting, and where it comes from."""
    rows = _flags(state_dir, "GET", f"/apps/{name}/flags")
    if output == Output.JSON:
        print_json(rows)
        return
    table = Table(box=None, header_style="bold")
    for col in ("FLAG", "STATE", "VARIANTS", "DEFAULT", "TARGETING", "SOURCE", "SET BY"):
        table.add_column(col, overflow="fold")
    for row in rows:
        flag = row["definition"]
        table.add_row(
            row["key"],
            flag.get("state", "ENABLED"),
            ", ".join(f"{k}={json.dumps(v)}" for k, v in flag["variants"].items()),
            str(flag.get("defaultVariant", "-")),
            json.dumps(flag["targeting"]) if flag.get("targeting") else "-",
            row["source"],
            row["by"] or "-",
        )
    out.print(table if rows else f"app {name} has no flags")


@flags_app.command("get")
def get(
    name: AppArg,
    flag: FlagArg,
    key: Annotated[str | None, typer.Option("--key", help="The targeting key.")] = None,
    context: Annotated[
        list[str] | None, typer.Option("--context", help="A context attribute: NAME=VALUE.")
    ] = None,
    output: OutputOpt = Output.TEXT,
    state_dir: StateDir = None,
) -> None:
    """Evaluate a flag as an agent would (OFREP's answer)."""
    attributes: dict[str, Any] = {}
    for item in context or []:
        attr, sep, value = item.partition("=")
        if not sep or not attr:
            raise UsageError(f"--context {item!r}: write NAME=VALUE, e.g. --context role=canary")
        attributes[attr] = _value(value)
    if key is not None:
        attributes["targetingKey"] = key
    answer = _flags(
        state_dir, "POST", f"/apps/{name}/flags/{flag}/evaluate", {"context": attributes}
    )
    if output == Output.JSON:
        print_json(answer)
    else:
        out.print(
            f"{flag} = {json.dumps(answer.get('value'))} (variant {answer.get('variant', '-')}, "
            f"{answer.get('reason', '-')})"
        )


@flags_app.command("set")
def set_(
    name: AppArg,
    flag: FlagArg,
    variant: Annotated[
        str | None, typer.Argument(help="The variant to serve (by default, or when scoped).")
    ] = None,
    definition: Annotated[
        str | None, typer.Option("--definition", help="A whole flagd definition, as JSON.")
    ] = None,
    canary: Annotated[
        bool, typer.Option("--canary", help="Serve VARIANT to the current canary revision only.")
    ] = False,
    revision: Annotated[
        int | None, typer.Option("--revision", help="Serve VARIANT to this revision only.")
    ] = None,
    by: ByOpt = None,
    message: Annotated[str, typer.Option("--message", "-m", help="Why, for the history.")] = "",
    state_dir: StateDir = None,
) -> None:
    """Set a flag: its default variant, a variant for one revision (--canary, --revision),
    or a whole definition (--definition)."""
    body = {"variant": variant, "definition": None, "canary": canary, "revision": revision}
    if definition is not None:
        try:
            body["definition"] = json.loads(definition)
        except ValueError as exc:
            raise UsageError(f"--definition is not JSON: {exc}") from None
    elif variant is None:
        raise UsageError("give the VARIANT to serve, or --definition '{...}'")
    body.update({"by": by or getpass.getuser(), "note": message})
    result = _flags(state_dir, "PUT", f"/apps/{name}/flags/{flag}", body)
    out.print(f"app {name}: flag {flag} set: {json.dumps(result)}", highlight=False)


@flags_app.command("rollout")
def rollout(
    name: AppArg,
    flag: FlagArg,
    percent: Annotated[float, typer.Option("--percent", help="Share of targeting keys, 0-100.")],
    variant: Annotated[
        str | None, typer.Option("--variant", help="The variant rolled out (default: on).")
    ] = None,
    by: ByOpt = None,
    message: Annotated[str, typer.Option("--message", "-m", help="Why, for the history.")] = "",
    state_dir: StateDir = None,
) -> None:
    """Serve a variant to a percentage of targeting keys, sticky per key (flagd's
    fractional), the default variant to the others."""
    body = {"percent": percent, "variant": variant, "by": by or getpass.getuser(), "note": message}
    result = _flags(state_dir, "POST", f"/apps/{name}/flags/{flag}/rollout", body)
    out.print(f"app {name}: flag {flag}: {json.dumps(result['targeting'])}", highlight=False)


@flags_app.command("reset")
def reset(name: AppArg, flag: FlagArg, by: ByOpt = None, state_dir: StateDir = None) -> None:
    """Drop the runtime definition: the spec's applies again."""
    _flags(state_dir, "DELETE", f"/apps/{name}/flags/{flag}", {"by": by or getpass.getuser()})
    out.print(f"app {name}: flag {flag} reset to the spec")


@flags_app.command("history")
def history(
    name: AppArg,
    flag: Annotated[str | None, typer.Argument(help="One flag only.")] = None,
    output: OutputOpt = Output.TEXT,
    state_dir: StateDir = None,
) -> None:
    """Every change of the app's flags: when, who, what it became."""
    import time

    params = f"?flag={flag}" if flag else ""
    rows = _flags(state_dir, "GET", f"/apps/{name}/flags/history{params}")
    if output == Output.JSON:
        print_json(rows)
        return
    table = Table(box=None, header_style="bold")
    for col in ("WHEN (UTC)", "FLAG", "BY", "BECAME", "NOTE"):
        table.add_column(col, overflow="fold")
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["at"]))
        became = json.dumps(row["definition"]) if row["definition"] else "(reset)"
        table.add_row(when, row["key"], row["by"], became, row["note"] or "-")
    out.print(table if rows else "no flag changes")


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
