"""The admin API's log routes (``rollwise logs``): a local app's replicas write files the
CLI reads itself, so it is given their paths; a cluster app's pods keep their logs in the
cluster, so the controller reads them through the API server with its own credentials."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request

from rollwise.api.common import JSONResponse, controller_of, count_param
from rollwise.backends.base import PodLogs
from rollwise.backends.kubernetes_logs import stamp_nanos
from rollwise.errors import UsageError

__all__ = ["LOG_READS"]

Handler = Callable[[Request], Awaitable[JSONResponse]]
MAX_TAIL = 10_000


async def log_files(request: Request) -> JSONResponse:
    controller = controller_of(request)
    app = request.path_params["app"]
    controller.worker(app)
    revision = count_param(request, "revision", "a revision number")
    paths = controller.backend.log_paths(app, revision)
    return JSONResponse([str(p) for p in paths])


async def pod_logs(request: Request) -> JSONResponse:
    """Each pod's last ``tail`` lines, or (``since=POD=STAMP``, repeated) those after the
    stamp of the newest line already shown of it."""
    controller = controller_of(request)
    app = request.path_params["app"]
    controller.worker(app)
    backend = controller.backend
    if not isinstance(backend, PodLogs):
        raise UsageError(
            f"app {app} runs on this machine, where its replicas' logs are files: read them "
            f"with `rollwise logs {app}` (GET /api/v1/apps/{app}/logs gives their paths)"
        )
    revision = count_param(request, "revision", "a revision number")
    tail = count_param(request, "tail", f"a number of lines, at most {MAX_TAIL}")
    if tail is not None and tail > MAX_TAIL:
        raise UsageError(f"?tail= must be a number of lines, at most {MAX_TAIL}, not {tail}")
    since = {}
    for item in request.query_params.getlist("since"):
        pod, _, stamp = item.partition("=")
        try:
            stamp_nanos(stamp)
        except ValueError:
            pod = ""
        if not pod:
            raise UsageError(
                f"?since= must be POD=STAMP (RFC 3339 UTC, as the lines carry), not {item!r}"
            )
        since[pod] = stamp
    found = await backend.pod_logs(app, revision, 20 if tail is None else tail, since)
    return JSONResponse(
        [{"pod": pod, "revision": rev, "lines": lines} for pod, rev, lines in found]
    )


LOG_READS: list[tuple[str, Handler]] = [
    ("/api/v1/apps/{app}/logs", log_files),
    ("/api/v1/apps/{app}/pod-logs", pod_logs),
]
