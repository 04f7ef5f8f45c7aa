"""The admin API's OpenAPI 3.1 document, served at ``GET /api/v1/openapi.json``.

Written out rather than generated: the handlers read loosely typed JSON bodies and query
strings, and this document is the contract they keep (schemathesis checks it against a live
controller in ``tests/reliability/test_api_contract.py``). Each operation says whether it
only reads (``x-rollwise-access: read``) or changes something (``write``): on the loopback
listener, the read token opens the first kind only.
"""

from __future__ import annotations

from typing import Any

from rollwise._version import __version__
from rollwise.spec.flags import FLAG_KEY_RE

__all__ = ["COMMANDS", "openapi_document"]

Json = dict[str, Any]

# per-app commands and their bodies (None: no body)
COMMANDS: dict[str, Json | None] = {
    "promote": {"full": {"type": "boolean"}},
    "abort": None,
    "retry": None,
    "pause": None,
    "resume": None,
    "undo": {
        "to_revision": {"type": ["integer", "null"], "minimum": 1},
        "reason": {"type": "string"},
    },
    "weight": {"weight": {"type": "integer", "minimum": 0, "maximum": 100}},
    "cleanup": {"revision": {"type": "integer", "minimum": 1}},
    "approve": {
        "gate": {"type": ["string", "null"]},
        "by": {"type": "string", "minLength": 1},
        "note": {"type": "string"},
    },
}
_REQUIRED = {"weight": ["weight"], "cleanup": ["revision"], "approve": ["by"]}

_APP_NAME: Json = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}
_APP = {
    "name": "app",
    "in": "path",
    "required": True,
    "schema": _APP_NAME,
    "example": "sample-agent",
}
_ERROR = {
    "description": "what went wrong and how to fix it",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error", "kind"],
                "properties": {"error": {"type": "string"}, "kind": {"type": "string"}},
            }
        }
    },
}


def _op(
    summary: str,
    access: str,
    *,
    body: Json | None = None,
    params: list[Json] | None = None,
    required: list[str] | None = None,
) -> Json:
    op: Json = {
        "summary": summary,
        "x-rollwise-access": access,
        "parameters": params or [],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": {}}}},
            "401": _ERROR | {"description": "no or a wrong bearer token (loopback listener)"},
            "403": _ERROR | {"description": "the read token cannot change anything"},
            "404": _ERROR,
            "409": _ERROR,
            "422": _ERROR,
            "503": _ERROR
            | {
                "description": "the state store is locked, full or read-only; or the proxy restarts"
            },
        },
    }
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": body,
                        "required": required or [],
                    }
                }
            },
        }
    return op


def _param(name: str, description: str, schema: Json) -> Json:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _shutdown() -> Json:
    """``rollwise down`` sends no body; ``rollwise restart`` sends ``{"leave": true}``."""
    op = _op(
        "Stop the controller and all it started; with leave, the controller only",
        "write",
        body={"leave": {"type": "boolean"}},
    )
    op["requestBody"]["required"] = False
    return op


_REVISION: Json = {
    **_param("revision", "a revision number", {"type": "integer", "minimum": 1}),
    "in": "path",
    "required": True,
}


def _query(name: str, description: str, lowest: int = 0, highest: int | None = None) -> Json:
    schema: Json = {"type": "integer", "minimum": lowest}
    if highest is not None:
        schema["maximum"] = highest
    return _param(name, description, schema)


def _flag(name: str, description: str) -> Json:
    return _param(name, description, {"type": "string", "enum": ["0", "1", "false", "true"]})


def _name_query(name: str, description: str) -> Json:
    return _param(name, description, _APP_NAME)


def _rules_op(app: list[Json]) -> Json:
    op = _op(
        "Prometheus recording and alerting rules for the app's SLOs (YAML)",
        "read",
        params=[*app, _flag("alertsOnly", "only the alerting rules")],
    )
    op["responses"]["200"] = {
        "description": "a Prometheus rule file",
        "content": {"application/yaml": {"schema": {"type": "string"}}},
    }
    return op


def _flag_paths(app: list[Json]) -> Json:
    key_schema = {"type": "string", "pattern": FLAG_KEY_RE.pattern}
    key = [*app, {**_param("key", "a flag's key", key_schema), "in": "path", "required": True}]
    who = {"by": {"type": "string", "minLength": 1, "pattern": "\\S"}, "note": {"type": "string"}}
    return {
        "/api/v1/apps/{app}/flags": {
            "get": _op("Each flag (flagd's definition) and where it comes from", "read", params=app)
        },
        "/api/v1/apps/{app}/flags/history": {
            "get": _op(
                "Every change of the app's flags",
                "read",
                params=[*app, _param("flag", "one flag only", {"type": "string"})],
            )
        },
        "/api/v1/apps/{app}/flags/{key}": {
            "put": _op(
                "Set a flag: a whole definition, or a variant for all or one revision",
                "write",
                params=key,
                body={
                    **who,
                    "definition": {"type": ["object", "null"]},
                    "variant": {"type": ["string", "null"]},
                    "revision": {"type": ["integer", "null"], "minimum": 1},
                    "canary": {"type": "boolean"},
                },
                required=["by"],
            ),
            "delete": _op(
                "Drop a flag's runtime definition", "write", params=key, body=who, required=["by"]
            ),
        },
        "/api/v1/apps/{app}/flags/{key}/rollout": {
            "post": _op(
                "Serve a variant to a share of targeting keys (flagd's fractional)",
                "write",
                params=key,
                body={
                    **who,
                    "percent": {"type": "number", "minimum": 0, "maximum": 100},
                    "variant": {"type": ["string", "null"]},
                },
                required=["by", "percent"],
            )
        },
        "/api/v1/apps/{app}/flags/{key}/evaluate": {
            "post": _op(
                "Evaluate a flag for a context, as OFREP answers (a POST: the write token)",
                "write",
                params=key,
                body={"context": {"type": "object"}},
            )
        },
    }


def _log_reads(app: list[Json]) -> Json:
    """``rollwise logs``: a local app's log files, a cluster app's pods' lines."""
    return {
        "/api/v1/apps/{app}/logs": {
            "get": _op(
                "Paths of the replicas' log files",
                "read",
                params=[*app, _query("revision", "one revision only")],
            )
        },
        "/api/v1/apps/{app}/pod-logs": {
            "get": _op(
                "A cluster app's pods' lines, each with the kubelet's stamp: the last `tail`, "
                "or those after `since=POD=STAMP` (repeated)",
                "read",
                params=[
                    *app,
                    _query("revision", "one revision only"),
                    _query("tail", "lines per pod to start with (default 20)", 0, 10000),
                    _param(
                        "since",
                        "POD=STAMP: the newest line of POD already shown",
                        {"type": "array", "items": {"type": "string"}},
                    ),
                ],
            )
        },
    }


def _app_reads(app: list[Json]) -> Json:
    """What is read about one app besides its view."""
    return {
        "/api/v1/apps/{app}/history": {"get": _op("Revisions, oldest first", "read", params=app)},
        "/api/v1/apps/{app}/revisions/{revision}/config": {
            "get": _op(
                "A revision's resolved configuration (image, replicas, env, extensions)",
                "read",
                params=[*app, _REVISION],
            )
        },
        "/api/v1/apps/{app}/stats": {
            "get": _op(
                "Requests, failures and latency per revision",
                "read",
                params=[*app, _query("since", "unix seconds")],
            )
        },
        "/api/v1/apps/{app}/analysis": {"get": _op("Analysis runs", "read", params=app)},
        "/api/v1/apps/{app}/cards": {"get": _op("Each revision's agent card", "read", params=app)},
        "/api/v1/apps/{app}/tasks": {
            "get": _op(
                "The maintenance tasks: plan, last and next run, outcome", "read", params=app
            )
        },
        "/api/v1/apps/{app}/checklist": {
            "get": _op(
                "The release checklist: each item with pass, fail or info", "read", params=app
            )
        },
        "/api/v1/apps/{app}/runbooks": {
            "get": _op(
                "The runbooks of the spec, with when their event last happened",
                "read",
                params=[
                    *app,
                    _param("event", "one event kind only", {"type": "string", "maxLength": 64}),
                ],
            )
        },
        "/api/v1/apps/{app}/slos": {
            "get": _op(
                "Each SLO now: SLI, error budget left, burn rate per window, alert states",
                "read",
                params=app,
            )
        },
        "/api/v1/apps/{app}/slos/rules": {"get": _rules_op(app)},
        "/api/v1/apps/{app}/events": {
            "get": _op(
                "The newest events, or the first ones after an id (app `-`: the controller's own)",
                "read",
                params=[
                    *app,
                    _query("after", "the last event id seen"),
                    _query("limit", "at most this many (default 200)", 1, 1000),
                ],
            )
        },
        "/api/v1/apps/{app}/smoke": {
            "post": _op(
                "Run the app's smoke tests now: on a revision's replicas, a URL, or the listener",
                "write",
                params=app,
                body={
                    "revision": {"type": ["integer", "null"], "minimum": 1},
                    "url": {"type": ["string", "null"], "pattern": "^https?://"},
                },
            )
        },
    }


def openapi_document() -> Json:
    app = [_APP]
    paths: Json = {
        "/api/v1/version": {"get": _op("The controller's version and state directory", "read")},
        "/api/v1/openapi.json": {"get": _op("This document", "read")},
        "/api/v1/apps": {
            "get": _op("Every app, as `rollwise list` shows it", "read"),
            "put": _op(
                "Apply an app's spec (create or update); with `version`, deploy it",
                "write",
                body={
                    "spec": {"type": "object"},
                    "base_dir": {"type": "string"},
                    "version": {"type": ["string", "null"]},
                },
                required=["spec"],
            ),
        },
        "/api/v1/apps/{app}": {
            "get": _op("One app, as `rollwise get` shows it", "read", params=app)
        },
        "/api/v1/apps/{app}/deploy": {
            "post": _op(
                "Create a revision and start rolling it out",
                "write",
                params=app,
                body={
                    "version": {"type": "string", "pattern": "^[!-~][ -~]{0,127}$"},
                    "set": {"type": "array", "items": {"type": "string"}},
                    "overrideBudget": {"type": "string", "minLength": 1, "pattern": "\\S"},
                    "overrideWindow": {"type": "string", "minLength": 1, "pattern": "\\S"},
                    "requireChecklist": {"type": "boolean"},
                },
                required=["version"],
            )
        },
        **_app_reads(app),
        **_log_reads(app),
        "/api/v1/proxy": {"get": _op("The data plane's routes and replicas", "read")},
        "/api/v1/slos": {
            "get": _op(
                "The SLOs of every app (or of `app`)",
                "read",
                params=[_name_query("app", "one app only")],
            )
        },
        "/api/v1/alerts": {
            "get": _op(
                "Burn-rate alerts, newest first",
                "read",
                params=[
                    _name_query("app", "one app only"),
                    _flag("active", "pending and firing ones only"),
                ],
            )
        },
        "/api/v1/shutdown": {"post": _shutdown()},
        **_flag_paths(app),
    }
    for name, body in COMMANDS.items():
        paths[f"/api/v1/apps/{{app}}/{name}"] = {
            "post": _op(
                f"`rollwise {name}`",
                "write",
                params=app,
                body=body,
                required=_REQUIRED.get(name),
            )
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "rollwise admin API", "version": __version__},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
