"""The controller's admin API (Starlette), served on ``<state-dir>/admin.sock`` (mode 0600).

Read endpoints are GETs; everything that changes state is a POST or PUT. Errors are JSON
``{"error", "kind"}`` with a status code that matches the error's class.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from rollwise._version import __version__
from rollwise.analysis.source import SecondCounts
from rollwise.api.auth import READ_METHODS
from rollwise.api.common import JSONResponse, controller_of, count_param, read_body
from rollwise.api.flags import FLAG_READS, FLAG_WRITES
from rollwise.api.logs import LOG_READS
from rollwise.api.openapi import openapi_document
from rollwise.controller.actions import ACTIONS_WITH_BODY, revision_number, run_action
from rollwise.errors import (
    ConflictError,
    DataPlaneError,
    InputError,
    NotFoundError,
    RollwiseError,
    StoreError,
    UsageError,
)
from rollwise.routing.proxy.stats import quantile
from rollwise.spec import spec_from_dict

if TYPE_CHECKING:
    from rollwise.controller.controller import Controller

__all__ = ["build_app"]


log = structlog.get_logger("rollwise.api")


def _error(exc: RollwiseError) -> JSONResponse:
    status = 500
    if isinstance(exc, InputError):
        status = 422
    elif isinstance(exc, NotFoundError):
        status = 404
    elif isinstance(exc, ConflictError):
        status = 409
    elif isinstance(exc, StoreError):
        status = 503  # the store is locked, full or read-only: retry once that is fixed
    elif isinstance(exc, DataPlaneError):
        status = 503  # the proxy is being restarted: its supervisor brings it back at once
    return JSONResponse({"error": str(exc), "kind": type(exc).__name__}, status_code=status)


MAX_EVENTS = 1000  # one answer's events


def guard(handler: Any) -> Any:
    """Errors of the exception tree as JSON with their status; a bug as a one-line 500."""

    async def wrapped(request: Request) -> JSONResponse:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except RollwiseError as exc:
            return _error(exc)
        except Exception as exc:  # a bug: say so in one line, keep the trace in the log
            log.exception("admin request failed", path=request.url.path)
            return JSONResponse(
                {
                    "error": f"internal error ({type(exc).__name__}: {exc}); "
                    "the controller log has the details",
                    "kind": "ControllerError",
                },
                status_code=500,
            )

    return wrapped


async def version(request: Request) -> JSONResponse:
    controller = controller_of(request)
    return JSONResponse(
        {
            "version": __version__,
            "state_dir": str(controller.state_dir),
            "started": controller.started,
            "metrics_port": controller.metrics_port,
            "ofrep_url": controller.ofrep_url,
            "dashboard_url": controller.store.get_kv("dashboard_url")
            if controller.dashboard is not None
            else None,
        }
    )


async def list_apps(request: Request) -> JSONResponse:
    controller = controller_of(request)
    return JSONResponse([controller.worker(a).view() for a in controller.store.app_names()])


async def get_app(request: Request) -> JSONResponse:
    controller = controller_of(request)
    worker = controller.worker(request.path_params["app"])
    view = await worker.traffic(worker.view())
    table = await controller.router.applied()
    applied = table.apps.get(worker.app)
    view["actual_weights"] = applied.weights() if applied is not None else {}
    view["generation"] = table.generation
    return JSONResponse(view)


async def apply(request: Request) -> JSONResponse:
    controller = controller_of(request)
    body = await read_body(request)
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise UsageError("apply needs {'spec': {...}, 'base_dir': '...'}")
    name = await controller.apply(spec, str(body.get("base_dir") or "."), body.get("version"))
    return JSONResponse({"app": name})


async def checklist(request: Request) -> JSONResponse:
    """The app's release checklist: each item with pass / fail / info, a detail and a fix."""
    items = await controller_of(request).checklist(request.path_params["app"])
    return JSONResponse([item.as_json() for item in items])


async def tasks(request: Request) -> JSONResponse:
    """The app's maintenance tasks: plan, last and next run, outcome, runs."""
    controller = controller_of(request)
    worker = controller.worker(request.path_params["app"])
    spec = worker.state.spec.spec
    return JSONResponse(controller.scheduled.view(worker.app, spec.maintenance.tasks))


async def deploy(request: Request) -> JSONResponse:
    controller = controller_of(request)
    body = await read_body(request)
    version = body.get("version")
    if not isinstance(version, str) or not version.strip():
        raise UsageError("deploy needs a version, e.g. --version 1.2.0")
    sets = body.get("set") or []
    if not isinstance(sets, list) or not all(isinstance(s, str) for s in sets):
        raise UsageError('set must be a list of "path=value" strings, e.g. ["replicas=3"]')
    overrides = {}
    for field in ("overrideBudget", "overrideWindow"):
        given = body.get(field)
        if given is not None and (not isinstance(given, str) or not given.strip()):
            raise UsageError(f'{field} needs a reason, e.g. "hotfix for the outage"')
        overrides[field] = given
    require = body.get("requireChecklist", False)
    if not isinstance(require, bool):
        raise UsageError(f"requireChecklist must be true or false, not {require!r}")
    app = request.path_params["app"]
    number = await controller.deploy(
        app,
        version.strip(),
        [str(s) for s in sets],
        override_budget=overrides["overrideBudget"],
        traceparent=request.headers.get("traceparent"),
        override_window=overrides["overrideWindow"],
        require_checklist=require,
    )
    return JSONResponse({"app": app, "revision": number})


async def command(request: Request) -> JSONResponse:
    """promote, abort, retry, pause, resume, undo, weight, cleanup: one per-app command,
    then the view (cleanup: what it removed)."""
    controller = controller_of(request)
    worker = controller.worker(request.path_params["app"])
    name = request.path_params["command"]
    body = await read_body(request) if name in ACTIONS_WITH_BODY else {}
    removed = await run_action(worker.commands, name, body)
    if removed is not None:
        return JSONResponse({"removed": removed})
    return JSONResponse(worker.view())


async def smoke(request: Request) -> JSONResponse:
    """Run the app's smoke tests now: ``{"revision": N}`` (its replicas), ``{"url": U}``,
    or neither (the public listener)."""
    controller = controller_of(request)
    worker = controller.worker(request.path_params["app"])
    body = await read_body(request)
    revision, url = revision_number(body.get("revision"), "revision"), body.get("url")
    if url is not None and (
        not isinstance(url, str) or not url.startswith(("http://", "https://"))
    ):
        raise UsageError(f"url must be an http(s) URL, not {url!r}")
    suite = await worker.smoke(revision, url)
    return JSONResponse(suite.as_json())


async def stats(request: Request) -> JSONResponse:
    """Requests, failures and latency per revision since ``since`` (unix seconds), on the
    app's listeners (main and preview), as the proxy counted them: totals, and per second
    (``seconds``: requests, failures, histogram) for analysis."""
    controller = controller_of(request)
    worker = controller.worker(request.path_params["app"])
    since = count_param(request, "since", "unix seconds, e.g. ?since=1700000000") or 0
    series = await controller.providers.metrics.seconds(worker.app, since)
    revisions: dict[str, Any] = {}
    for number, seconds in sorted(series.items()):
        total = sum(seconds.values(), SecondCounts())
        revisions[str(number)] = {
            "requests": total.requests,
            "failures": total.failures,
            "a2a": dict(total.outcomes),
            "latency_ms": {
                name: None if (v := quantile(dict(total.hist), q)) is None else v * 1000
                for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
            },
            "seconds": {str(s): c.to_json() for s, c in sorted(seconds.items())},
        }
    return JSONResponse({"since": since, "revisions": revisions})


async def analysis(request: Request) -> JSONResponse:
    """Every stored analysis run of an app (newest last), with its verdict and evidence."""
    controller = controller_of(request)
    app = request.path_params["app"]
    controller.worker(app)
    return JSONResponse([row.as_json() for row in controller.store.analyses(app)])


async def slos(request: Request) -> JSONResponse:
    """Each SLO of an app (or of every app) now: SLI, budget left, burn rate per window,
    its alerts' states."""
    controller = controller_of(request)
    one = request.path_params.get("app") or request.query_params.get("app")
    names = [one] if one else controller.store.app_names()
    reports = []
    for name in names:
        worker = controller.worker(name)
        spec = worker.state.spec.spec
        active = {
            (a["slo"], a["window"]): a for a in controller.slos.alerts(name, active_only=True)
        }
        for report in controller.slos.report(name, spec):
            body = report.as_json()
            for alert in body["alerts"]:
                row = active.get((report.objective.name, alert["window"]))
                alert["state"] = row["state"] if row else "inactive"
                alert["since"] = row["since"] if row else None
            reports.append(body)
    return JSONResponse(reports)


async def slo_rules(request: Request) -> Response:
    """Prometheus recording and alerting rules for an app's SLOs (YAML)."""
    from rollwise.slo.prometheus import rules

    controller = controller_of(request)
    worker = controller.worker(request.path_params["app"])
    spec = worker.state.spec.spec
    if not spec.slos:
        raise NotFoundError(f"app {worker.app} has no slos; add them to its spec and apply it")
    alerts_only = request.query_params.get("alertsOnly", "") in ("1", "true")
    text = rules(worker.app, spec, alerts_only=alerts_only)
    return PlainTextResponse(text, media_type="application/yaml")


async def alerts(request: Request) -> JSONResponse:
    """Burn-rate alerts, newest first: firing, pending and resolved, with their numbers."""
    controller = controller_of(request)
    app = request.query_params.get("app") or None
    if app is not None:
        controller.worker(app)
    active = request.query_params.get("active", "") in ("1", "true")
    return JSONResponse(controller.slos.alerts(app, active_only=active))


async def cards(request: Request) -> JSONResponse:
    """Each revision's agent card (A2A apps), oldest first."""
    controller = controller_of(request)
    worker = controller.worker(request.path_params["app"])
    return JSONResponse(await worker.cards())


async def runbooks(request: Request) -> JSONResponse:
    """The app's runbooks (``?event=KIND``: that one), with when their event last happened."""
    controller = controller_of(request)
    worker = controller.worker(request.path_params["app"])
    return JSONResponse(worker.runbooks(request.query_params.get("event") or None))


async def history(request: Request) -> JSONResponse:
    controller = controller_of(request)
    app = request.path_params["app"]
    controller.worker(app)
    rows = controller.store.revisions(app)
    return JSONResponse(
        [
            {
                "revision": r.number,
                "version": r.version,
                "created_at": r.created_at,
                "created_by": r.created_by,
                "cause": r.cause,
                "outcome": r.outcome,
                "reason": r.reason,
                "finished_at": r.finished_at,
                "strategy": "blueGreen"
                if r.spec.get("spec", {}).get("strategy", {}).get("blueGreen")
                else "canary",
                "env": spec_from_dict(r.spec).spec.template.redacted_env(),
            }
            for r in rows
        ]
    )


async def revision_config(request: Request) -> JSONResponse:
    """A revision's resolved configuration (``rollwise describe``/``export``), secrets masked."""
    from rollwise.resolved import revision_config as resolve

    controller = controller_of(request)
    app = request.path_params["app"]
    controller.worker(app)
    number = revision_number(request.path_params["revision"], "revision") or 0
    row = controller.store.revision(app, number)
    config = resolve(
        spec_from_dict(row.spec), row.version, number, controller.store.card(app, number)
    )
    body = {"app": app, "revision": number, "version": row.version, **asdict(config)}
    return JSONResponse(body)


async def events(request: Request) -> JSONResponse:
    """The newest events, or with ``?after=`` the first ones after that id."""
    controller = controller_of(request)
    app = request.path_params["app"]
    if app != "-":  # the controller's own
        controller.worker(app)
    after = count_param(request, "after", "the id of the last event seen")
    limit = count_param(request, "limit", f"a number of events, 1 to {MAX_EVENTS}")
    if limit is not None and not 1 <= limit <= MAX_EVENTS:
        raise UsageError(f"?limit= must be a number of events, 1 to {MAX_EVENTS}, not {limit}")
    rows = controller.store.events(app, after, limit or 200)
    return JSONResponse([r.__dict__ for r in rows])


async def proxy(request: Request) -> JSONResponse:
    """What the data plane runs, read back from it, and what the controller numbers
    from (after a restart: what it read back)."""
    controller = controller_of(request)
    router = controller.router
    table = await router.applied()
    replicas = await router.replicas()
    return JSONResponse(
        {
            "generation": table.generation,
            "controller_generation": router.generation,
            "table": table.to_json(),
            "replicas": {a: asdict(r) for a, r in sorted(replicas.items())},
            "problems": {app: router.problem(app) for app in table.apps if router.problem(app)},
        }
    )


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(openapi_document())


async def shutdown(request: Request) -> JSONResponse:
    """Stop everything (``rollwise down``), or with ``{"leave": true}`` the controller only
    (``rollwise restart``)."""
    controller = controller_of(request)
    body = await read_body(request) if await request.body() else {}  # down sends none
    leave = bool(body.get("leave"))
    if leave:
        controller.leave()
    else:
        controller.stopping.set()
    return JSONResponse({"stopping": True, "leave": leave})


async def no_route(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own 404 and 405, in the API's error shape."""
    assert isinstance(exc, HTTPException)
    where = f"{request.method} {request.url.path}"
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{where}: method not allowed; this path takes {allowed}"
        kind = "UsageError"
    elif exc.status_code == 404:
        message = f"{where}: no such endpoint; GET /api/v1/openapi.json lists them"
        kind = "NotFoundError"
    else:
        message, kind = f"{where}: {exc.detail}", "UsageError"
    return JSONResponse(
        {"error": message, "kind": kind}, status_code=exc.status_code, headers=exc.headers
    )


def build_app(controller: Controller) -> Starlette:
    """The admin API of ``controller``."""
    # Read-only endpoints apart from those that change something: the loopback listener's
    # read token opens the first list only (``api/auth.py``).
    reads = [
        Route("/api/v1/version", guard(version), methods=["GET"]),
        Route("/api/v1/openapi.json", guard(openapi), methods=["GET"]),
        Route("/api/v1/apps", guard(list_apps), methods=["GET"]),
        Route("/api/v1/apps/{app}", guard(get_app), methods=["GET"]),
        Route("/api/v1/apps/{app}/history", guard(history), methods=["GET"]),
        Route(
            "/api/v1/apps/{app}/revisions/{revision:int}/config",
            guard(revision_config),
            methods=["GET"],
        ),
        Route("/api/v1/apps/{app}/stats", guard(stats), methods=["GET"]),
        Route("/api/v1/apps/{app}/analysis", guard(analysis), methods=["GET"]),
        Route("/api/v1/apps/{app}/cards", guard(cards), methods=["GET"]),
        Route("/api/v1/apps/{app}/runbooks", guard(runbooks), methods=["GET"]),
        Route("/api/v1/apps/{app}/checklist", guard(checklist), methods=["GET"]),
        Route("/api/v1/apps/{app}/tasks", guard(tasks), methods=["GET"]),
        *[Route(path, guard(handler), methods=["GET"]) for path, handler in FLAG_READS],
        Route("/api/v1/apps/{app}/slos", guard(slos), methods=["GET"]),
        Route("/api/v1/apps/{app}/slos/rules", guard(slo_rules), methods=["GET"]),
        Route("/api/v1/slos", guard(slos), methods=["GET"]),
        Route("/api/v1/alerts", guard(alerts), methods=["GET"]),
        Route("/api/v1/apps/{app}/events", guard(events), methods=["GET"]),
        *[Route(path, guard(handler), methods=["GET"]) for path, handler in LOG_READS],
        Route("/api/v1/proxy", guard(proxy), methods=["GET"]),
    ]
    writes = [
        Route("/api/v1/apps", guard(apply), methods=["PUT"]),
        Route("/api/v1/apps/{app}/deploy", guard(deploy), methods=["POST"]),
        Route("/api/v1/apps/{app}/smoke", guard(smoke), methods=["POST"]),
        *[Route(path, guard(handler), methods=[method]) for path, method, handler in FLAG_WRITES],
        Route("/api/v1/apps/{app}/{command}", guard(command), methods=["POST"]),
        Route("/api/v1/shutdown", guard(shutdown), methods=["POST"]),
    ]
    assert all(r.methods <= READ_METHODS for r in reads)  # type: ignore[operator]
    assert not any(r.methods & READ_METHODS for r in writes)  # type: ignore[operator]
    routes = reads + writes

    app = Starlette(routes=routes, exception_handlers={HTTPException: no_route})
    app.state.controller = controller
    return app
