"""What the proxy's admin channel reads of a worker: the applied table with each replica's
state, cumulative counters (for ``/metrics``), replicas' traffic, per-second statistics.

Each is a worker's own JSON; with ``--workers N`` the primary adds the workers' up
(``workers.merge``, ``admin.py``).
"""

from __future__ import annotations

import time
from typing import Any

from rollwise.routing.proxy.a2a import draining_talks
from rollwise.routing.proxy.server import ProxyServer

__all__ = ["counters", "replicas_status", "routes_status", "stats"]


def routes_status(proxy: ProxyServer, only: list[str] | None = None) -> dict[str, Any]:
    """The table applied (of the apps named in ``only``, else all), with per-replica
    state: one app's routes cost the same to read with 1 app or 500."""
    now = time.monotonic()
    table, replicas = proxy.table_json, proxy.table.replicas()
    if only is not None:
        apps = {k: v for k, v in table["apps"].items() if k in only}
        table = {"generation": table["generation"], "apps": apps}
        replicas = {
            rep
            for name in only
            if (app := proxy.table.apps.get(name)) is not None
            for rev in app.revisions
            for rep in rev.replicas
        }
    return {
        "generation": proxy.table.generation,
        "table": table,
        "replicas": {rep.address: rep.as_json(now) for rep in replicas},
        "listeners": sorted(proxy.listeners),
        "listen_errors": proxy.listen_errors,
    }


def counters(proxy: ProxyServer) -> dict[str, Any]:
    """Cumulative counters in JSON shape; the workers' copies add up with ``merge``."""
    apps: dict[str, Any] = {}
    for name, app in proxy.table.apps.items():
        apps[name] = {
            rev.name: {
                "codes": {str(code): n for code, n in rev.stats.status.items()},
                "failures": rev.stats.failures_total,
                **({"a2a": dict(rev.stats.a2a)} if rev.stats.a2a else {}),
                **({"streams": list(rev.stats.streams)} if any(rev.stats.streams) else {}),
            }
            for rev in app.revisions
        }
    return {
        "apps": apps,
        "lost": dict(proxy.a2a.lost),
        "in_flight": {rep.address: rep.in_flight for rep in proxy.table.replicas()},
        "rejected": {str(code): n for code, n in proxy.rejected.items()},
        "retries": proxy.retries,
        "ejections": proxy.ejections,
    }


def replicas_status(proxy: ProxyServer) -> dict[str, Any]:
    """Per replica: requests in flight and whether passive health ejected it; a draining
    one's A2A conversations that are not quiet yet (their keys, which the primary joins
    across workers: a conversation may have reached more than one)."""
    now = time.monotonic()
    status: dict[str, Any] = {
        rep.address: {"in_flight": rep.in_flight, "ejected": rep.ejected_until > now}
        for rep in proxy.table.replicas()
    }
    for address, keys in draining_talks(proxy.table, proxy.clock).items():
        status[address]["talks"] = keys
    return status


def stats(proxy: ProxyServer, since: int, only: list[str] | None = None) -> dict[str, Any]:
    """Each app's revisions' seconds since ``since``: those the table has, and those that
    left it within the seconds the proxy keeps (``departed``: an aborted canary's counts
    are still there for an analysis, ``rollwise get`` and the next scrape)."""
    apps: dict[str, Any] = {}
    revisions = [
        (name, rev.name, rev.version, rev.stats, False)
        for name, app in proxy.table.apps.items()
        for rev in app.revisions
    ]
    revisions += [
        (name, rev, version, counts, True)
        for (name, rev), (version, counts) in proxy.departed.items()
    ]
    for name, rev, version, counts, departed in revisions:
        if only is not None and name not in only:
            continue
        apps.setdefault(name, {})[rev] = {
            "version": version,
            "requests_total": counts.requests_total,
            "failures_total": counts.failures_total,
            "seconds": {s: b.as_json() for s, b in counts.since(since).items()},
            **({"departed": True} if departed else {}),
        }
    return {"now": time.perf_counter() + proxy.wall_offset, "apps": apps}
