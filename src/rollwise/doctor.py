"""``rollwise doctor``: what is wrong with a state directory, and how to fix each thing.

It reads, never changes: the store's integrity, the controller's pid file against the
processes that run, the proxy and replicas the store records (alive, and whose), and the
apps' listen ports (free, or held by the proxy and not by a stranger). With a namespace
(``--namespace``), also whether the kubeconfig reaches a cluster and may do there what a
``--backend kubernetes`` controller does (``kubernetes/permissions.py``).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psutil

from rollwise.client import AdminClient

__all__ = ["Finding", "cluster_findings", "diagnose"]

State = Literal["ok", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    state: State
    detail: str
    fix: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"check": self.check, "state": self.state, "detail": self.detail, "fix": self.fix}


def _alive(pid: int, started: float | None = None) -> bool:
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - started) < 1.0
    except psutil.Error:
        return False


def _ours(pid: int, started: float | None, socket: Path) -> bool:
    """The proxy of this directory: alive, same start, and its argv names our socket."""
    if not _alive(pid, started):
        return False
    try:
        return str(socket) in " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


def _store(db_path: Path) -> tuple[list[Finding], dict[str, Any]]:
    if not db_path.exists():
        return [Finding("store", "warn", f"no store at {db_path}", "run `rollwise up` here")], {}
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5.0)
        try:
            (check,) = db.execute("PRAGMA integrity_check").fetchone()
            replicas = db.execute("SELECT app, revision, idx, pid, port, start_time FROM replicas")
            facts: dict[str, Any] = {"replicas": replicas.fetchall()}
            proxy = db.execute("SELECT value FROM kv WHERE key='proxy'").fetchone()
            facts["proxy"] = proxy[0] if proxy else None
            facts["apps"] = db.execute("SELECT name, spec FROM apps").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return [
            Finding(
                "store",
                "fail",
                f"{db_path} cannot be read: {exc}",
                "restore the newest backup: `rollwise restore <state>/backups/state-….db`",
            )
        ], {}
    if check != "ok":
        return [
            Finding(
                "store",
                "fail",
                f"{db_path} is damaged: {check}",
                "stop the controller, then `rollwise restore` the newest backup",
            )
        ], facts
    return [Finding("store", "ok", f"{db_path}: integrity ok")], facts


def _listeners() -> dict[int, int]:
    """Port → pid of every TCP socket listening on this machine (as far as we may see)."""
    ports: dict[int, int] = {}
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.pid:
                ports.setdefault(conn.laddr.port, conn.pid)
    return ports


def diagnose(state_dir: Path) -> list[Finding]:
    findings, facts = _store(state_dir / "state.db")
    answering = _controller(state_dir, findings)
    mine = _processes(state_dir, facts, answering, findings)
    findings.extend(_ports(facts, mine))
    return findings


def _controller(state_dir: Path, findings: list[Finding]) -> bool:
    """Whether a controller answers; a finding either way."""
    pid_file = state_dir / "controller.pid"
    with AdminClient(state_dir, timeout=3.0) as client:
        answering = client.running()
    pid = None
    if pid_file.exists():
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text().strip())
    if answering:
        findings.append(Finding("controller", "ok", f"running (pid {pid}), answering"))
    elif pid is not None and _alive(pid):
        findings.append(
            Finding(
                "controller",
                "fail",
                f"pid {pid} runs but does not answer on {state_dir / 'admin.sock'}",
                f"see {state_dir / 'logs' / 'controller.log'}; `kill {pid}`, then `rollwise up`",
            )
        )
    elif pid is not None:
        findings.append(
            Finding(
                "controller",
                "warn",
                f"stale pid file {pid_file} (pid {pid} is gone)",
                "harmless: `rollwise up` replaces it (or delete the file)",
            )
        )
    else:
        findings.append(Finding("controller", "ok", "not running"))
    return answering


def _processes(
    state_dir: Path, facts: dict[str, Any], answering: bool, findings: list[Finding]
) -> set[int]:
    """The proxy and replicas the store records that still run (ours); orphans found."""
    mine: set[int] = set()
    proxy = json.loads(facts["proxy"]) if facts.get("proxy") else None
    if proxy and _ours(int(proxy["pid"]), proxy.get("start_time"), state_dir / "proxy.sock"):
        mine.add(int(proxy["pid"]))
        if not answering:
            findings.append(
                Finding(
                    "proxy",
                    "warn",
                    f"the proxy (pid {proxy['pid']}) serves without a controller",
                    "requests are still served with the last routes; `rollwise up` adopts it",
                )
            )
    orphans = []
    for app, revision, idx, rpid, port, started in facts.get("replicas", []):
        if rpid and _alive(int(rpid), started):
            mine.add(int(rpid))
            if not answering:
                orphans.append(f"{app} r{revision}-{idx} (pid {rpid}, port {port})")
    if orphans:
        findings.append(
            Finding(
                "replicas",
                "warn",
                f"{len(orphans)} replicas run without a controller: {', '.join(orphans)}",
                "`rollwise up` adopts them; `rollwise up` then `rollwise down` stops them",
            )
        )
    else:
        findings.append(Finding("replicas", "ok", "no orphan replica"))
    return mine


def _ports(facts: dict[str, Any], mine: set[int]) -> list[Finding]:
    """Each app's listen port: free, ours, or taken by another process."""
    findings: list[Finding] = []
    listening = _listeners()
    conflicts = []
    for name, spec_json in facts.get("apps", []):
        listen = str(json.loads(spec_json).get("spec", {}).get("listen", ""))
        port_text = listen.rpartition(":")[2]
        if not port_text.isdigit():
            continue
        owner = listening.get(int(port_text))
        if owner is not None and owner not in mine:
            try:
                who = f"pid {owner} ({psutil.Process(owner).name()})"
            except psutil.Error:
                who = f"pid {owner}"
            conflicts.append((name, listen, who))
    for name, listen, who in conflicts:
        findings.append(
            Finding(
                "ports",
                "fail",
                f"{listen}, the listener of app {name}, is taken by {who}",
                f"stop {who}, or give {name} another spec.listen and `rollwise apply` it",
            )
        )
    if not conflicts:
        findings.append(Finding("ports", "ok", "every app's listen port is free or ours"))
    return findings


def cluster_findings(kubeconfig: Path | None, context: str | None, namespace: str) -> list[Finding]:
    """The cluster's answer, and what this identity may not do in ``namespace``."""
    import httpx

    from rollwise.errors import ClusterError
    from rollwise.kubernetes.connection import ClusterAccess
    from rollwise.kubernetes.permissions import check_access

    try:
        access = check_access(ClusterAccess(kubeconfig, context), namespace)
    except ClusterError as exc:
        return [Finding("cluster", "fail", exc.message, "give --kubeconfig and --context")]
    except httpx.HTTPError as exc:
        why = str(exc) or type(exc).__name__
        fix = "check the kubeconfig's server and credentials: `kubectl get --raw /version`"
        return [Finding("cluster", "fail", f"the API server cannot be asked: {why}", fix)]
    found = [Finding("cluster", "ok", f"{access.server} answers ({access.version})")]
    if access.denied:
        refused = ", ".join(str(d) for d in access.denied)
        found.append(
            Finding(
                "permissions",
                "fail",
                f"in namespace {namespace} this identity may not: {refused}",
                "bind it to the Role that `rollwise render` writes (rollwise-controller.yaml): "
                f"kubectl -n {namespace} create rolebinding rollwise-you "
                "--role=rollwise-controller --user=YOU",
            )
        )
    else:
        found.append(
            Finding("permissions", "ok", f"may do what the controller does in {namespace}")
        )
    if access.metrics == 200:
        found.append(Finding("metrics", "ok", "the metrics API answers (autoscaling on cpu)"))
    else:
        found.append(
            Finding(
                "metrics",
                "warn",
                f"the metrics API answered {access.metrics}: a cluster app's spec.autoscaling "
                "measures nothing and decides nothing without it",
                "install metrics-server (kubectl top pod reads the same API)",
            )
        )
    if access.denied_proxies:
        refused = ", ".join(str(d) for d in access.denied_proxies)
        found.append(
            Finding(
                "pod access",
                "warn",
                "from outside the cluster, smoke tests, card checks and agentMetrics reach "
                f"pods through the API server; this identity may not: {refused}",
                f"kubectl -n {namespace} create role rollwise-proxy --verb=get,create "
                "--resource=pods/proxy,services/proxy; bind it as above",
            )
        )
    return found
