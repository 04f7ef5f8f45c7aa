"""The ``rollwise`` command (typer + rich), with Argo Rollouts' verbs where they exist.

Exit codes: 0 success, 1 failed or degraded, 2 usage or input error. Errors print one line
(no traceback) that says what went wrong and how to fix it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.live import Live
from rich.text import Text

from rollwise._version import __version__
from rollwise.cli import lifecycle, manifests, release
from rollwise.cli import state as state_commands
from rollwise.cli.a2a import a2a_app
from rollwise.cli.analysis import analysis_app
from rollwise.cli.common import Output, OutputOpt, StateDir, err, out
from rollwise.cli.common import client as _client
from rollwise.cli.common import print_json as _print_json
from rollwise.cli.events import events as _events
from rollwise.cli.flags import flags_app
from rollwise.cli.service import service_app
from rollwise.cli.slo import alerts as _alerts
from rollwise.cli.slo import slo as _slo
from rollwise.errors import RollwiseError, UsageError

__all__ = ["app", "run"]

app = typer.Typer(
    name="rollwise",
    help="Progressive delivery for HTTP services and A2A agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.command()
def version() -> None:
    """Print rollwise's version."""
    out.print(f"rollwise {__version__}")


@app.command()
def lint(
    file: Annotated[Path, typer.Option("--file", "-f", help="The spec to check.")] = Path(
        "rollwise.yaml"
    ),
) -> None:
    """Check a spec without running anything."""
    from rollwise.spec import load_spec

    spec = load_spec(file)
    out.print(f"{file}: ok ({spec.name}, strategy {spec.spec.strategy.name})")


app.command()(lifecycle.up)
app.command()(lifecycle.down)
app.command()(lifecycle.restart)
app.command()(lifecycle.dashboard)


@app.command()
def apply(
    file: Annotated[Path, typer.Option("--file", "-f", help="The spec to apply.")],
    version: Annotated[
        str | None, typer.Option("--version", help="Also deploy this version.")
    ] = None,
    state_dir: StateDir = None,
) -> None:
    """Create or update an app from its spec (and deploy a version with --version)."""
    from rollwise.spec import load_spec

    spec = load_spec(file)
    body = {
        "spec": spec.model_dump(mode="json", by_alias=True),
        "base_dir": str(file.resolve().parent),
        "version": version,
    }
    with _client(state_dir) as client:
        result = client.request("PUT", "/apps", json=body)
    suffix = f"; deploying {version}" if version else ""
    out.print(f"app {result['app']} applied{suffix}")


@app.command()
def deploy(
    name: Annotated[str, typer.Argument(help="The app.")],
    version: Annotated[str, typer.Option("--version", help="The version to release.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a spec field: template.env.KEY=VALUE."),
    ] = None,
    override_budget: Annotated[
        str | None,
        typer.Option(
            "--override-budget",
            help="Deploy although the error-budget policy refuses it; the reason is recorded.",
        ),
    ] = None,
    override_window: Annotated[
        str | None,
        typer.Option(
            "--override-window",
            help="Deploy outside the release windows or in a freeze; the reason is recorded.",
        ),
    ] = None,
    require_checklist: Annotated[
        bool,
        typer.Option(
            "--require-checklist", help="Refuse unless every `rollwise checklist` item passes."
        ),
    ] = False,
    state_dir: StateDir = None,
) -> None:
    """Release a new version of an app: creates a revision and rolls it out."""
    body: dict[str, Any] = {"version": version, "set": set_ or []}
    if override_budget is not None:
        body["overrideBudget"] = override_budget
    if override_window is not None:
        body["overrideWindow"] = override_window
    if require_checklist:
        body["requireChecklist"] = True
    # the rollout's trace links to this command's (``rollwise up --otlp-endpoint``)
    traceparent = f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"
    with _client(state_dir) as client:
        result = client.request(
            "POST", f"/apps/{name}/deploy", json=body, headers={"traceparent": traceparent}
        )
    out.print(f"app {name}: revision {result['revision']} ({version}) is rolling out")


def _command(name: str, command: str, state_dir: Path | None, body: dict[str, Any]) -> None:
    with _client(state_dir) as client:
        view = client.request("POST", f"/apps/{name}/{command}", json=body)
    out.print(f"app {name}: {_phase_line(view)}")


def _phase_line(view: dict[str, Any]) -> str:
    message = view.get("message") or ""
    return f"{view['phase']} - {message}" if message else str(view["phase"])


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="The app.")],
    full: Annotated[
        bool, typer.Option("--full", help="Skip every remaining step and analysis.")
    ] = False,
    state_dir: StateDir = None,
) -> None:
    """Complete the current step (a pause, an inconclusive analysis), or all of them."""
    _command(name, "promote", state_dir, {"full": full})


@app.command()
def abort(
    name: Annotated[str, typer.Argument(help="The app.")], state_dir: StateDir = None
) -> None:
    """Send all traffic back to stable now; the canary drains and stops (phase Degraded)."""
    _command(name, "abort", state_dir, {})


@app.command()
def retry(
    name: Annotated[str, typer.Argument(help="The app.")], state_dir: StateDir = None
) -> None:
    """Start an aborted rollout again from its first step."""
    _command(name, "retry", state_dir, {})


@app.command()
def pause(
    name: Annotated[str, typer.Argument(help="The app.")], state_dir: StateDir = None
) -> None:
    """Hold the rollout where it is (traffic stays as it is) until resume or promote."""
    _command(name, "pause", state_dir, {})


@app.command()
def resume(
    name: Annotated[str, typer.Argument(help="The app.")], state_dir: StateDir = None
) -> None:
    """Continue a rollout paused with `rollwise pause`."""
    _command(name, "resume", state_dir, {})


@app.command()
def undo(
    name: Annotated[str, typer.Argument(help="The app.")],
    to_revision: Annotated[
        int | None,
        typer.Option("--to-revision", help="The revision to go back to (default: the previous)."),
    ] = None,
    state_dir: StateDir = None,
) -> None:
    """Roll back: instant to a revision still running, else start it and cut over."""
    _command(name, "undo", state_dir, {"to_revision": to_revision})


@app.command()
def status(
    name: Annotated[str, typer.Argument(help="The app.")],
    watch: Annotated[
        bool, typer.Option("--watch/--no-watch", "-w", help="Follow until it settles.")
    ] = True,
    timeout: Annotated[
        str, typer.Option("--timeout", "-t", help="Give up after this long (e.g. 60s; 0: never).")
    ] = "0s",
    state_dir: StateDir = None,
) -> None:
    """One line per change, `<Phase> - <message>`, until Healthy, Paused or Degraded.

    Exit code 0 when Healthy or Paused, 1 when Degraded or on timeout.
    """
    from rollwise.spec import parse_duration

    try:
        limit = parse_duration(timeout)
    except ValueError as exc:
        raise UsageError(f"--timeout {timeout!r}: {exc}") from None
    deadline = time.monotonic() + limit if limit else None
    last = ""
    with _client(state_dir) as client:
        while True:
            view = client.request("GET", f"/apps/{name}")
            line = _phase_line(view)
            if line != last:
                out.print(line)
                last = line
            if view["phase"] == "Degraded":
                raise typer.Exit(1)
            if not watch or view["phase"] in ("Healthy", "Paused"):
                return
            if deadline is not None and time.monotonic() > deadline:
                err.print(f"rollwise: app {name} still {view['phase']} after {timeout}")
                raise typer.Exit(1)
            time.sleep(0.25)


@app.command()
def get(
    name: Annotated[str, typer.Argument(help="The app.")],
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Redraw every second.")] = False,
    output: OutputOpt = Output.TEXT,
    state_dir: StateDir = None,
) -> None:
    """Show an app's rollout: phase, weights, revisions and replicas."""
    from rollwise.cli.views import app_view

    with _client(state_dir) as client:
        data = client.request("GET", f"/apps/{name}")
        if output == Output.JSON:
            _print_json(data)
        elif not watch:
            out.print(app_view(data))
        else:
            with Live(app_view(data), console=out, refresh_per_second=4) as live:
                while True:
                    time.sleep(1.0)
                    live.update(app_view(client.request("GET", f"/apps/{name}")))
    if data["phase"] == "Degraded":
        raise typer.Exit(1)


@app.command()
def runbook(
    name: Annotated[str, typer.Argument(help="The app.")],
    event: Annotated[
        str | None, typer.Argument(help="One event kind, e.g. RolloutAborted.", show_default=False)
    ] = None,
    output: OutputOpt = Output.TEXT,
    state_dir: StateDir = None,
) -> None:
    """Show the app's runbooks (`runbooks:` in its spec), or the one for EVENT, with when
    that event last happened."""
    from rollwise.cli.views import runbook_lines

    with _client(state_dir) as client:
        params = {"event": event} if event else {}
        books = client.request("GET", f"/apps/{name}/runbooks", params=params)
    if output == Output.JSON:
        _print_json(books)
        return
    if not books:
        out.print(f"app {name} has no runbooks; add `runbooks:` to its spec (docs/operations.md)")
    for index, book in enumerate(books):
        if index:
            out.print()
        for line in runbook_lines(book):
            out.print(line)


@app.command("list")
def list_(output: OutputOpt = Output.TEXT, state_dir: StateDir = None) -> None:
    """List the apps."""
    from rollwise.cli.views import list_table

    with _client(state_dir) as client:
        apps = client.request("GET", "/apps")
    if output == Output.JSON:
        _print_json(apps)
    else:
        out.print(list_table(apps))


@app.command()
def history(
    name: Annotated[str, typer.Argument(help="The app.")],
    output: OutputOpt = Output.TEXT,
    state_dir: StateDir = None,
) -> None:
    """List an app's revisions: version, strategy, outcome, reason, duration."""
    from rollwise.cli.views import history_table

    with _client(state_dir) as client:
        rows = client.request("GET", f"/apps/{name}/history")
    if output == Output.JSON:
        _print_json(rows)
    else:
        out.print(history_table(rows))


app.command()(_events)
app.command()(_slo)
app.command()(_alerts)


@app.command()
def smoke(
    name: Annotated[str, typer.Argument(help="The app.")],
    revision: Annotated[
        int | None, typer.Option("--revision", help="Test each replica of this revision.")
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help="Test this URL instead.")] = None,
    output: OutputOpt = Output.TEXT,
    state_dir: StateDir = None,
) -> None:
    """Run the app's smoke tests now: on the live listener, a revision's own replicas
    (--revision) or any URL (--url). Exit code 1 when a critical test fails."""
    from rollwise.cli.views import smoke_table

    if revision is not None and url is not None:
        raise UsageError("give --revision or --url, not both")
    body: dict[str, Any] = {"revision": revision, "url": url}
    with _client(state_dir, timeout=600.0) as client:
        suite = client.request("POST", f"/apps/{name}/smoke", json=body)
    if output == Output.JSON:
        _print_json(suite)
    else:
        out.print(smoke_table(suite))
    if not suite["success"]:
        raise typer.Exit(1)


@app.command()
def logs(
    name: Annotated[str, typer.Argument(help="The app.")],
    revision: Annotated[int | None, typer.Option("--revision", help="Only this revision.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
    lines: Annotated[int, typer.Option("--tail", help="Lines per replica to start with.")] = 20,
    state_dir: StateDir = None,
) -> None:
    """Print the replicas' logs (stdout and stderr), prefixed with revision and replica."""
    params = {"revision": revision} if revision is not None else {}
    with _client(state_dir) as client:
        paths = [Path(p) for p in client.request("GET", f"/apps/{name}/logs", params=params)]
        backend = client.request("GET", f"/apps/{name}")["backend"] if not paths else {}
    if backend.get("kind") == "kubernetes":  # the pods' logs are the cluster's
        _pod_logs(name, revision, follow, lines, state_dir)
        return
    if not paths:
        err.print(f"app {name} has no replica logs yet")
        return
    from rollwise.backends.process import read_new, tail

    offsets: dict[Path, int] = {}
    for path in paths:
        for line in tail(path, lines):
            out.print(f"[{path.stem}] {line}", markup=False, highlight=False)
        offsets[path] = path.stat().st_size if path.exists() else 0
    while follow:
        time.sleep(0.5)
        for path in paths:
            new, offsets[path] = read_new(path, offsets.get(path, 0))
            for line in new:
                out.print(f"[{path.stem}] {line}", markup=False, highlight=False)


def _pod_logs(
    name: str, revision: int | None, follow: bool, lines: int, state_dir: Path | None
) -> None:
    """A cluster app's pods' lines, read by the controller; followed by asking every second
    for the lines after the newest one shown of each pod (a new pod: its last lines)."""
    from rollwise.backends.kubernetes_logs import follow as advance

    since: dict[str, str] = {}
    params: dict[str, Any] = {"tail": lines}
    if revision is not None:
        params["revision"] = revision
    with _client(state_dir) as client:
        while True:
            asked = [f"{pod}={stamp}" for pod, stamp in since.items()]
            found = client.request(
                "GET", f"/apps/{name}/pod-logs", params={**params, "since": asked}
            )
            for pod, line in advance(since, ((e["pod"], e["lines"]) for e in found)):
                out.print(f"[{pod}] {line}", markup=False, highlight=False)
            if not follow:
                return
            time.sleep(1.0)


@app.command()
def load(
    url: Annotated[str, typer.Argument(help="Where to send requests, e.g. http://127.0.0.1:8080/")],
    rate: Annotated[float, typer.Option("--rate", help="Requests per second.")] = 50.0,
    duration: Annotated[str, typer.Option("--duration", help="How long, e.g. 30s.")] = "10s",
    a2a: Annotated[bool, typer.Option("--a2a", help="Send A2A SendMessage calls.")] = False,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="With --a2a: send SendStreamingMessage and read each stream to its end "
            "(its latency is its first event's).",
        ),
    ] = False,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a target that is not loopback.")
    ] = False,
    output: OutputOpt = Output.TEXT,
) -> None:
    """Open-loop constant-rate load, with a per-version breakdown of the answers."""
    from rollwise.load import LoadConfig, run_load
    from rollwise.spec import parse_duration

    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise UsageError(f"--duration: {exc}") from None
    if stream and not a2a:
        raise UsageError("--stream streams A2A answers: add --a2a")
    config = LoadConfig(
        url=url, rate=rate, duration=seconds, a2a=a2a, allow_remote=allow_remote, stream=stream
    )
    report = asyncio.run(run_load(config, console=None if output == Output.JSON else err))
    if output == Output.JSON:
        _print_json(report.as_json())
    else:
        out.print(report.table())
    if report.errors_total:
        raise typer.Exit(1)


app.add_typer(analysis_app, name="analysis")
app.add_typer(a2a_app, name="a2a")
app.add_typer(flags_app, name="flags")
app.add_typer(service_app, name="service")
app.command()(state_commands.backup)
app.command()(state_commands.restore)
app.command()(state_commands.doctor)
app.command()(state_commands.bundle)
app.command()(release.approve)
app.command()(release.checklist)
app.command()(release.tasks)
app.command()(manifests.render)
app.command()(manifests.describe)
app.command()(manifests.export)


def _fail(exc: RollwiseError) -> NoReturn:
    err.print(Text("error: ", style="red") + Text(str(exc)), highlight=False, soft_wrap=True)
    sys.exit(exc.exit_code)


def run() -> None:
    """Console-script entry point: errors become one line and an exit code, never a trace."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        app(args=lifecycle.optional_values(sys.argv[1:]))
    except RollwiseError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        sys.exit(130)
