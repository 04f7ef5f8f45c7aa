"""``rollwise up`` and ``rollwise down``: the controller's life, and what it starts with."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rollwise.cli.common import StateDir, client, out
from rollwise.cli.election import (
    Election,
    Kubeconfig,
    KubeContext,
    LeaderElect,
    LeaseDuration,
    LeaseName,
    LeaseNamespace,
    RenewDeadline,
    RetryPeriod,
)
from rollwise.client import AdminClient, default_state_dir
from rollwise.errors import ControllerError, UsageError
from rollwise.kubernetes.names import LEASE

if TYPE_CHECKING:
    from rollwise.kubernetes.connection import ClusterAccess

__all__ = [
    "DASHBOARD_DEFAULT",
    "LogFormat",
    "dashboard",
    "down",
    "optional_values",
    "restart",
    "up",
    "up_options",
]

DASHBOARD_DEFAULT = "127.0.0.1:3100"  # Argo Rollouts' dashboard port


class ClusterKind(StrEnum):
    LOCAL = "local"
    KUBERNETES = "kubernetes"


class LogFormat(StrEnum):
    CONSOLE = "console"
    JSON = "json"


Detach = Annotated[bool, typer.Option("--detach", "-d", help="Run in the background.")]
LogFormatOpt = Annotated[LogFormat, typer.Option("--log-format")]
MetricsPort = Annotated[
    int, typer.Option("--metrics-port", help="Prometheus /metrics on this port (0: any).")
]
MetricsHost = Annotated[
    str,
    typer.Option(
        "--metrics-host",
        help="The address /metrics listens on (0.0.0.0 in a pod, for the cluster's Prometheus).",
    ),
]
Record = Annotated[
    Path | None, typer.Option("--record", help="The proxy writes one JSON line per request.")
]
ProxyWorkers = Annotated[
    int,
    typer.Option(
        "--proxy-workers", min=1, max=64, help="Proxy processes sharing each listener port."
    ),
]
ApiListen = Annotated[
    str | None,
    typer.Option(
        "--api-listen",
        help="Also serve the admin API on this loopback HOST:PORT, behind bearer tokens "
        "(<state>/api-token, and api-token.read for reads only).",
    ),
]
OtlpEndpoint = Annotated[
    str | None,
    typer.Option(
        "--otlp-endpoint",
        envvar="OTEL_EXPORTER_OTLP_ENDPOINT",
        help="Send rollouts (and sampled requests) as OpenTelemetry traces to this "
        "OTLP/HTTP base URL.",
    ),
]
Dashboard = Annotated[
    str | None,
    typer.Option(
        "--dashboard",
        help=f"Serve the web dashboard on this loopback HOST:PORT ({DASHBOARD_DEFAULT} when "
        "the option is given alone); `rollwise dashboard` prints its address.",
    ),
]
TraceSample = Annotated[
    float,
    typer.Option(
        "--trace-sample",
        min=0.0,
        max=1.0,
        help="The share of requests the proxy sends as server spans (with --otlp-endpoint).",
    ),
]


def up(
    state_dir: StateDir = None,
    detach: Detach = False,
    log_format: LogFormatOpt = LogFormat.CONSOLE,
    metrics_port: MetricsPort = 9470,
    metrics_host: MetricsHost = "127.0.0.1",
    record: Record = None,
    proxy_workers: ProxyWorkers = 1,
    api_listen: ApiListen = None,
    otlp_endpoint: OtlpEndpoint = None,
    dashboard: Dashboard = None,
    trace_sample: TraceSample = 0.0,
    backend: Annotated[
        ClusterKind,
        typer.Option(
            "--backend",
            help="The apps this controller runs: local processes behind its proxy, or a "
            "cluster's (Deployments, Services, an HTTPRoute; with --kubeconfig/--context).",
        ),
    ] = ClusterKind.LOCAL,
    leader_elect: LeaderElect = False,
    kubeconfig: Kubeconfig = None,
    context: KubeContext = None,
    lease_name: LeaseName = LEASE,
    lease_namespace: LeaseNamespace = None,
    lease_duration: LeaseDuration = 15.0,
    renew_deadline: RenewDeadline = 10.0,
    retry_period: RetryPeriod = 2.0,
) -> None:
    """Start the controller (the proxy and replicas with it). Ctrl-C or `down` stops all."""
    from rollwise.api.auth import loopback_address

    times = (lease_duration, renew_deadline, retry_period)
    election = Election(leader_elect, kubeconfig, context, lease_name, lease_namespace, *times)
    directory = (state_dir or default_state_dir()).resolve()
    api = loopback_address(api_listen) if api_listen is not None else None
    board = loopback_address(dashboard) if dashboard is not None else None
    if trace_sample > 0 and not otlp_endpoint:
        raise UsageError("--trace-sample sends spans to --otlp-endpoint; give one as well")
    cluster = _cluster(backend, election)
    if detach:
        extra = ["--otlp-endpoint", otlp_endpoint] if otlp_endpoint else []
        extra += ["--trace-sample", repr(trace_sample)] if trace_sample else []
        extra += ["--dashboard", dashboard] if dashboard is not None else []
        extra += [*election.argv(), *_cluster_argv(backend, election), "--metrics-host"]
        extra.append(metrics_host)
        _detach(directory, log_format, metrics_port, record, proxy_workers, api_listen, extra)
        return
    from rollwise.logs import configure_logging
    from rollwise.routing.options import ProxyOptions
    from rollwise.service import controller_with_api

    configure_logging(log_format.value)
    elector = election.elector() if election.enabled else None
    options = ProxyOptions(
        workers=proxy_workers,
        record=str(record.resolve()) if record else None,
        trace_sample=trace_sample,
        otlp_endpoint=otlp_endpoint,
    )
    controller = controller_with_api(
        directory,
        cluster=cluster,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        proxy=options,
        api_listen=api,
        otlp_endpoint=otlp_endpoint,
        dashboard_listen=board,
    )
    import uvloop

    if elector is None:
        uvloop.run(controller.run())
        return
    from rollwise.kubernetes.leadership import lead

    uvloop.run(lead(controller, elector))  # LeadershipLost: left, exit 3


def _cluster(backend: ClusterKind, election: Election) -> ClusterAccess | None:
    """Where a ``--backend kubernetes`` controller's cluster is; a kubeconfig that cannot
    work is refused here, before anything starts."""
    if backend is ClusterKind.LOCAL:
        return None
    from rollwise.kubernetes.connection import ClusterAccess, check

    cluster = ClusterAccess(election.kubeconfig, election.context)
    check(cluster)
    return cluster


def _cluster_argv(backend: ClusterKind, election: Election) -> list[str]:
    out = ["--backend", backend.value]
    out += ["--kubeconfig", str(election.kubeconfig.resolve())] if election.kubeconfig else []
    return out + (["--context", election.context] if election.context else [])


def _detach(
    directory: Path,
    log_format: LogFormat,
    metrics_port: int,
    record: Path | None,
    proxy_workers: int,
    api_listen: str | None,
    extra: list[str],
) -> None:
    from rollwise.controller.launch import spawn_controller

    options = ["--log-format", log_format.value, "--metrics-port", str(metrics_port)]
    options += ["--proxy-workers", str(proxy_workers)]
    if record is not None:
        options += ["--record", str(record.resolve())]
    if api_listen is not None:
        options += ["--api-listen", api_listen]
    proc = spawn_controller(directory, *options, *extra)
    with AdminClient(directory) as admin:
        acts = "" if admin.running() else " and waits for its Lease (another controller holds it)"
    out.print(
        f"controller started (pid {proc.pid}){acts}; logs: {directory / 'logs' / 'controller.log'}"
    )


def down(state_dir: StateDir = None) -> None:
    """Stop the controller and everything it started (proxy, replicas)."""
    with client(state_dir) as admin:
        _shut_down(admin, {}, "stop")
    out.print("controller stopped")


def _shut_down(admin: AdminClient, body: dict[str, bool], verb: str) -> None:
    """Ask the controller to stop (``{}``) or leave (``{"leave": true}``) and wait until its
    pid file is gone."""
    pid_file = admin.state_dir / "controller.pid"
    admin.request("POST", "/shutdown", json=body)
    deadline = time.monotonic() + 60
    while pid_file.exists():
        if time.monotonic() > deadline:
            raise ControllerError(f"the controller did not {verb} within 60s; see {pid_file}")
        time.sleep(0.05)


def restart(state_dir: StateDir = None) -> None:
    """Restart the controller with this rollwise, its `up` options kept, while the proxy and
    the replicas keep serving: the new controller adopts them and replaces the proxy if it
    is another build's (install a new rollwise, then run this: docs/reliability.md)."""
    import psutil

    from rollwise.controller.launch import spawn_controller

    with client(state_dir) as admin:
        pid_file = admin.state_dir / "controller.pid"
        try:
            options = up_options(psutil.Process(int(pid_file.read_text())).cmdline())
        except (OSError, ValueError, psutil.Error):
            raise ControllerError(
                f"no controller runs for {admin.state_dir}; start one with rollwise up"
            ) from None
        _shut_down(admin, {"leave": True}, "leave")
        proc = spawn_controller(admin.state_dir, *options)
    out.print(f"controller restarted (pid {proc.pid}); the proxy and the replicas kept serving")


def up_options(argv: list[str]) -> list[str]:
    """The options of a running ``rollwise up`` (its command line), but ``--state-dir`` and
    ``--detach``."""
    rest = argv[argv.index("up") + 1 :]
    kept: list[str] = []
    skip = False
    for arg in rest:
        if skip:
            skip = False
        elif arg == "--state-dir":
            skip = True
        elif not arg.startswith("--state-dir=") and arg not in ("--detach", "-d"):
            kept.append(arg)
    return kept


def dashboard(
    write: Annotated[
        bool,
        typer.Option(
            "--write", help="A link that lets this browser change things (the write token)."
        ),
    ] = False,
    open_: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
    state_dir: StateDir = None,
) -> None:
    """Print the web dashboard's address (`rollwise up --dashboard` serves it)."""
    with client(state_dir) as admin:
        url = admin.request("GET", "/version").get("dashboard_url")
        token_file = admin.state_dir / "api-token"
    if not url:
        raise UsageError(
            "this controller serves no dashboard; start it with rollwise up --dashboard"
        )
    if write:
        url = f"{url}login?token={token_file.read_text().strip()}"
    out.print(url, markup=False, highlight=False, soft_wrap=True)
    if open_:
        import webbrowser

        webbrowser.open(url)


# Options whose value may be left out: `rollwise up --dashboard` means the default address.
OPTIONAL_VALUES = {"--dashboard": DASHBOARD_DEFAULT}


def optional_values(argv: list[str]) -> list[str]:
    """``argv`` with the default filled in after an option of ``OPTIONAL_VALUES`` given
    alone (last, or followed by another option)."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        out.append(arg)
        alone = i + 1 == len(argv) or argv[i + 1].startswith("-")
        if arg in OPTIONAL_VALUES and alone:
            out.append(OPTIONAL_VALUES[arg])
    return out
