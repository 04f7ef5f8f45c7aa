"""OFREP (the OpenFeature Remote Evaluation Protocol) on a loopback port of the controller.

An agent evaluates flags with the OpenFeature SDK and the OFREP provider, pointed at the
base URL its replica was started with (``ROLLWISE_OFREP_URL``):

    POST {base}/ofrep/v1/evaluate/flags/{key}   {"context": {"targetingKey": "user-1"}}
    POST {base}/ofrep/v1/evaluate/flags         every flag (ETag, If-None-Match → 304)

where ``base`` is ``/apps/{app}/revisions/{revision}/`` for a replica (its context gets
``app``, ``revision`` and ``role``: ``stable``, ``canary``, ``previous`` or ``other``, unless
it sets them itself) or ``/apps/{app}/`` for anything else. Evaluation only: flags change
through the admin API (behind its socket's permissions or its token).
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rollwise.errors import RollwiseError
from rollwise.store import Store

if TYPE_CHECKING:
    from rollwise.controller.worker import AppWorker

__all__ = ["ofrep_app", "ofrep_socket", "replica_url", "role_of"]

Lookup = Callable[[str], "AppWorker"]
log = structlog.get_logger("rollwise.ofrep")


def ofrep_socket(store: Store) -> tuple[socket.socket, str]:
    """OFREP's loopback socket and base URL, on the port of the last start when it is free
    (replicas that outlived that controller were started with its URL)."""
    kept = store.get_kv("ofrep_port")
    try:
        sock = socket.create_server(("127.0.0.1", int(kept or 0)), backlog=128)
    except OSError:
        log.warning("OFREP port taken: a new one; adopted replicas keep the old URL", port=kept)
        sock = socket.create_server(("127.0.0.1", 0), backlog=128)
    port = sock.getsockname()[1]
    store.put_kv("ofrep_port", port)
    return sock, f"http://127.0.0.1:{port}"


def replica_url(base: str, app: str, revision: int) -> str:
    """The OFREP base URL a replica of ``revision`` is started with (``ROLLWISE_OFREP_URL``):
    its evaluations carry its revision and role."""
    return f"{base}/apps/{app}/revisions/{revision}/"


def role_of(worker: AppWorker, revision: int) -> str:
    status = worker.state.current
    if revision == status.canary and not status.aborted:
        return "canary"
    if revision == status.stable:
        return "stable"
    if any(w.revision == revision for w in status.warm):
        return "previous"
    return "other"


async def _context(request: Request, worker: AppWorker) -> dict[str, Any] | None:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        return None
    context = body.get("context", {}) if isinstance(body, dict) else None
    if not isinstance(context, dict):
        return None
    context = dict(context)
    context.setdefault("app", worker.app)
    revision = request.path_params.get("revision")
    if revision is not None:
        number = int(revision)
        context.setdefault("revision", number)
        context.setdefault("role", role_of(worker, number))
    return context


def ofrep_app(lookup: Lookup) -> Starlette:
    def worker_of(request: Request) -> AppWorker | None:
        try:
            return lookup(request.path_params["app"])
        except RollwiseError:
            return None

    async def one(request: Request) -> Response:
        key = request.path_params["key"]
        worker = worker_of(request)
        if worker is None:
            details = f"no app {request.path_params['app']}"
            return JSONResponse(
                {"key": key, "errorCode": "FLAG_NOT_FOUND", "errorDetails": details}, 404
            )
        context = await _context(request, worker)
        if context is None:
            return JSONResponse(
                {
                    "key": key,
                    "errorCode": "INVALID_CONTEXT",
                    "errorDetails": 'the body must be JSON: {"context": {...}}',
                },
                400,
            )
        status, body = worker.flags.evaluate(worker.state.spec.spec, key, context)
        return JSONResponse(body, status)

    async def bulk(request: Request) -> Response:
        worker = worker_of(request)
        if worker is None:
            details = f"no app {request.path_params['app']}"
            return JSONResponse({"errorCode": "GENERAL", "errorDetails": details}, 404)
        context = await _context(request, worker)
        if context is None:
            details = 'the body must be JSON: {"context": {...}}'
            return JSONResponse({"errorCode": "INVALID_CONTEXT", "errorDetails": details}, 400)
        engine = worker.flags.current(worker.state.spec.spec)
        flags = engine.evaluate_all(context)
        body = json.dumps({"flags": flags}, sort_keys=True).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return Response(body, media_type="application/json", headers={"ETag": etag})

    flags = "ofrep/v1/evaluate/flags"
    routes = [
        Route(f"/apps/{{app}}/revisions/{{revision:int}}/{flags}/{{key}}", one, methods=["POST"]),
        Route(f"/apps/{{app}}/revisions/{{revision:int}}/{flags}", bulk, methods=["POST"]),
        Route(f"/apps/{{app}}/{flags}/{{key}}", one, methods=["POST"]),
        Route(f"/apps/{{app}}/{flags}", bulk, methods=["POST"]),
    ]
    return Starlette(routes=routes)
