"""The admin API's feature-flag routes: list, history, set, roll out, reset, evaluate
(``rollwise flags``); agents read flags over OFREP (``controller/ofrep.py``), not here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

from rollwise.api.common import JSONResponse, controller_of, read_body
from rollwise.controller.actions import revision_number
from rollwise.errors import ConflictError, NotFoundError, UsageError

__all__ = ["FLAG_READS", "FLAG_WRITES"]

Handler = Callable[[Request], Awaitable[JSONResponse]]


def _flags_of(request: Request) -> tuple[Any, Any]:
    worker = controller_of(request).worker(request.path_params["app"])
    return worker.flags, worker.state.spec.spec


def _who(body: dict[str, Any]) -> tuple[str, str]:
    by, note = body.get("by"), body.get("note") or ""
    if not isinstance(by, str) or not by.strip() or not isinstance(note, str):
        raise UsageError("a flag change needs who makes it: {'by': 'alice', 'note': '...'}")
    return by.strip(), note.strip()


async def flags_list(request: Request) -> JSONResponse:
    """Each flag's definition (flagd's format) and where it comes from."""
    flags, spec = _flags_of(request)
    return JSONResponse([{"key": k, **v} for k, v in sorted(flags.effective(spec).items())])


async def flags_history(request: Request) -> JSONResponse:
    flags, _ = _flags_of(request)
    key = request.query_params.get("flag") or None
    return JSONResponse(flags.store.flag_history(flags.app, key))


async def flag_set(request: Request) -> JSONResponse:
    """``{definition}`` (flagd's), or ``{variant, revision | canary}``; with ``by``, ``note``."""
    flags, spec = _flags_of(request)
    body = await read_body(request)
    by, note = _who(body)
    key = request.path_params["key"]
    definition = body.get("definition")
    if definition is not None:
        if not isinstance(definition, dict):
            raise UsageError("definition must be a flagd flag definition (a JSON object)")
        return JSONResponse(flags.set(spec, key, definition, by, note))
    variant = body.get("variant")
    if not isinstance(variant, str) or not variant:
        raise UsageError("give a variant to serve, or a whole definition")
    revision = revision_number(body.get("revision"), "revision")
    if body.get("canary"):
        status = controller_of(request).worker(flags.app).state.current
        if status.canary is None or status.aborted:
            raise ConflictError(f"app {flags.app} has no canary now; name a --revision")
        revision = status.canary
    return JSONResponse(flags.set_variant(spec, key, variant, revision, by, note))


async def flag_rollout(request: Request) -> JSONResponse:
    flags, spec = _flags_of(request)
    body = await read_body(request)
    by, note = _who(body)
    percent, variant = body.get("percent"), body.get("variant")
    if isinstance(percent, bool) or not isinstance(percent, int | float):
        raise UsageError(f"percent must be a number 0..100, not {percent!r}")
    if variant is not None and not isinstance(variant, str):
        raise UsageError(f"variant must be a variant's name, not {variant!r}")
    key = request.path_params["key"]
    return JSONResponse(flags.rollout(spec, key, float(percent), variant, by, note))


async def flag_reset(request: Request) -> JSONResponse:
    flags, spec = _flags_of(request)
    by, _ = _who(await read_body(request))
    return JSONResponse({"definition": flags.reset(spec, request.path_params["key"], by)})


async def flag_evaluate(request: Request) -> JSONResponse:
    """A flag evaluated for ``{context}``, as OFREP answers it (``rollwise flags get``)."""
    flags, spec = _flags_of(request)
    body = await read_body(request)
    context = body.get("context") or {}
    if not isinstance(context, dict):
        raise UsageError("context must be a JSON object of attributes")
    status, answer = flags.evaluate(spec, request.path_params["key"], context)
    if status == 404:
        raise NotFoundError(answer["errorDetails"])
    if status != 200:
        raise UsageError(f"{answer['errorCode']}: {answer['errorDetails']}")
    return JSONResponse(answer)


FLAG_READS: list[tuple[str, Handler]] = [
    ("/api/v1/apps/{app}/flags", flags_list),
    ("/api/v1/apps/{app}/flags/history", flags_history),
]
FLAG_WRITES: list[tuple[str, str, Handler]] = [
    ("/api/v1/apps/{app}/flags/{key}", "PUT", flag_set),
    ("/api/v1/apps/{app}/flags/{key}", "DELETE", flag_reset),
    ("/api/v1/apps/{app}/flags/{key}/rollout", "POST", flag_rollout),
    ("/api/v1/apps/{app}/flags/{key}/evaluate", "POST", flag_evaluate),
]
