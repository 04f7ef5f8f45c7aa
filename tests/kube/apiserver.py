"""A fake Kubernetes API server that speaks the real REST protocol, for what rollwise uses.

No real API server can run on the test machines (no kube-apiserver, kind or k3s package, no
container engine), so the Kubernetes tests run against this one, kept honest by real
``kubectl`` (tests/test_kubernetes_api.py) and by the official schemas (kubernetes-validate).

What it serves, as the real server does on the wire:

- discovery: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/{group}/{version}``
  (plain ``APIGroupList``/``APIResourceList``: kubectl falls back to them from aggregated
  discovery); no OpenAPI (``/openapi/*`` answer 404, so kubectl needs ``--validate=false``);
- typed objects and ``…List`` kinds, namespaced and cluster-wide lists, label selectors
  (``=``, ``==``, ``!=``, ``in``, ``notin``, exists, ``!`` not exists);
- ``metadata.resourceVersion`` (one counter for everything) with 409 Conflict on a stale
  update, ``uid``, ``generation`` (bumped when ``spec`` changes), ``creationTimestamp``;
- create (409 AlreadyExists), replace, delete, JSON merge patch, strategic merge patch (merge
  patch whose lists of named items merge by ``name``; no ``$patch`` directives), server-side
  apply (create, or merge the applied fields, and remove the map fields the same field
  manager applied before and no longer does; no ownership shared between managers, no apply
  conflicts; the HTTPRoute's lists are atomic, as its CRD schema says, so an apply replaces
  them),
  ``dryRun=All``;
- watches (``?watch=1``) from a resourceVersion, with ``BOOKMARK`` events when asked and
  ``ERROR`` 410 Expired when the version is older than the kept history (``compact()``);
- ``/status`` and ``/scale`` (autoscaling/v1 Scale) subresources; Leases like any object;
  a Secret's write-only ``stringData`` kept as base64 ``data``;
- writes refused on purpose (``state.faults``: 429 with ``Retry-After``, or 5xx), as an
  overloaded or failing server answers;
- a pod's ``log`` (``state.write_log``; what ``state.crash_pod`` says its exited container
  wrote);
- ``SelfSubjectAccessReview`` (``kubectl auth can-i``): allowed unless ``state.denied``;
- the ``proxy`` subresources of pods (``pods/NAME[:PORT]/proxy/PATH``) and Services (to a
  ready pod the Service selects), forwarded to a real process on loopback that stands in for
  the pod's container: ``containers`` maps an image to
  the address of the process that answers for it (no container runtime runs here). A pod
  whose image has none is answered 503, as the real server answers for a refused dial.

It also plays the Deployment controller as far as rollwise looks (``state.py``): pods that
become Ready, and a Deployment status with its ready counts and conditions.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from rollwise.backends.ports import free_port
from rollwise.kubernetes.validation import problems

from .state import (
    BY_PATH,
    KINDS,
    POD,
    SERVICE,
    VERBS,
    ApiState,
    Kind,
    Obj,
    Refused,
    field_values,
    matches,
    merge_patch,
    pod_ready,
    status_object,
    strategic_merge_patch,
)

__all__ = ["FakeApiServer"]

# not forwarded by the pods' proxy: hop-by-hop headers, and the caller's own credentials
PROXY_DROPS = frozenset(
    {"authorization", "connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host"}
)
REQUEST_DROPS = PROXY_DROPS | {"content-length"}  # the forwarded body gets its own
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


@dataclass(frozen=True)
class Target:
    """What a resource path names."""

    kind: Kind
    namespace: str  # '' for cluster-scoped kinds and all-namespace lists
    name: str | None
    sub: str | None
    all_namespaces: bool


def _resource_list(group: str, version: str) -> Obj:
    resources: list[Obj] = []
    for kind in KINDS:
        if (kind.group, kind.version) != (group, version):
            continue
        resources.append(
            {
                "name": kind.plural,
                "singularName": kind.kind.lower(),
                "namespaced": kind.namespaced,
                "kind": kind.kind,
                "verbs": VERBS,
                "shortNames": list(kind.short),
            }
        )
        resources += [
            {
                "name": f"{kind.plural}/{sub}",
                "singularName": "",
                "namespaced": kind.namespaced,
                "kind": "Scale" if sub == "scale" else kind.kind,
                "verbs": ["get", "patch", "update"],
            }
            for sub in kind.subresources
        ]
    gv = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }


def _groups() -> Obj:
    groups: dict[str, list[str]] = {}
    for kind in KINDS:
        if kind.group and kind.version not in groups.setdefault(kind.group, []):
            groups[kind.group].append(kind.version)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": name,
                "versions": [{"groupVersion": f"{name}/{v}", "version": v} for v in versions],
                "preferredVersion": {
                    "groupVersion": f"{name}/{versions[0]}",
                    "version": versions[0],
                },
            }
            for name, versions in groups.items()
        ],
    }


def _selector_text(obj: Obj) -> str:
    return ",".join(f"{k}={v}" for k, v in obj["spec"]["selector"]["matchLabels"].items())


def _scale(deployment: Obj) -> Obj:
    meta = deployment["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "resourceVersion": meta["resourceVersion"],
            "uid": meta["uid"],
        },
        "spec": {"replicas": deployment["spec"].get("replicas", 1)},
        "status": {
            "replicas": deployment.get("status", {}).get("replicas", 0),
            "selector": _selector_text(deployment),
        },
    }


def _name_port(request: Request) -> tuple[str, str]:
    """A proxy path's ``NAME``, ``NAME:PORT`` or ``SCHEME:NAME:PORT``: name and port."""
    parts = request.path_params["name"].split(":")
    name = parts[1] if len(parts) == 3 else parts[0]
    return name, parts[-1] if len(parts) > 1 else ""


def _target_port(service: Obj, port: str) -> str:
    """The container port behind the Service's ``port`` (a number or a port's name)."""
    for item in service["spec"].get("ports", []):
        if port in (str(item.get("port")), item.get("name")):
            return str(item.get("targetPort", item.get("port")))
    return port


def _dropped(before: Any, after: Any) -> Obj:
    """A merge patch removing the map fields ``before`` set and ``after`` does not (lists
    are replaced or merged by the apply itself)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return {}
    out: Obj = {}
    for key, value in before.items():
        if key not in after:
            out[key] = None
        elif sub := _dropped(value, after[key]):
            out[key] = sub
    return out


def _refused(refused: Refused) -> JSONResponse:
    return JSONResponse(refused.status, status_code=refused.code)


def _not_found(kind: Kind, name: str) -> Refused:
    return Refused(404, "NotFound", f'{kind.plural} "{name}" not found')


def _locate(path: str) -> Target:
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise Refused(404, "NotFound", f"the server could not find {path}")
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":  # else: the Namespace objects
        namespace, rest = rest[1], rest[2:]
    kind = BY_PATH.get((group, version, rest[0] if rest else ""))
    if kind is None or len(rest) > 3:
        raise Refused(404, "NotFound", f"the server could not find the requested resource {path}")
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub is not None and sub not in kind.subresources:
        raise Refused(404, "NotFound", f"{kind.plural} has no subresource {sub}")
    if kind.namespaced and name is not None and not namespace:
        raise Refused(404, "NotFound", f"{kind.plural} is namespaced: /namespaces/NS/{kind.plural}")
    return Target(kind, namespace, name, sub, kind.namespaced and not namespace)


def _validate(obj: Obj) -> None:
    """Strict field validation, as a real server does with ``fieldValidation=Strict``: the
    official schema of the kind (the vendored one for HTTPRoute)."""
    if not obj.get("kind"):  # the real decoder's words
        raise Refused(400, "BadRequest", f"Object 'Kind' is missing in '{json.dumps(obj)}'")
    obj.setdefault("apiVersion", "")
    found = problems(obj)
    if found:
        raise Refused(422, "Invalid", "; ".join(found))


def _dry_run(request: Request) -> bool:
    return request.query_params.get("dryRun") == "All"


async def _body(request: Request) -> Obj:
    raw = await request.body()
    content = request.headers.get("content-type", "")
    if content and "json" not in content and "yaml" not in content:
        # protobuf or CBOR: client-go falls back to JSON on 415, as with older servers
        raise Refused(415, "UnsupportedMediaType", f"{content} is not served here; send JSON")
    try:
        data = yaml.safe_load(raw) if "yaml" in content else json.loads(raw or b"{}")
    except (ValueError, yaml.YAMLError) as exc:
        raise Refused(400, "BadRequest", f"the body is not valid: {exc}") from None
    if not isinstance(data, dict):
        raise Refused(400, "BadRequest", "the body must be an object")
    return data


class FakeApiServer:
    """The fake server's app and state; ``serve()`` runs it on a free loopback port."""

    def __init__(self, ready_pods: bool = True) -> None:
        self.state = ApiState(ready_pods)
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        routes = [
            Route("/version", self._version),
            Route("/api", self._api),
            Route("/apis", lambda r: JSONResponse(_groups())),
            Route("/openapi/{rest:path}", self._no_openapi),
            Route("/api/{version}", self._discovery),
            Route("/apis/{group}/{version}", self._discovery),
            Route(
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                self._access_review,
                methods=["POST"],
            ),
            Route("/api/v1/namespaces/{namespace}/pods/{name}/log", self._pod_log),
            Route("/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods", self._pod_metrics),
            Route("/apis/metrics.k8s.io/v1beta1/pods", self._pod_metrics),
            Route(
                "/api/v1/namespaces/{namespace}/pods/{name}/proxy{path:path}",
                self._pod_proxy,
                methods=methods,
            ),
            Route(
                "/api/v1/namespaces/{namespace}/services/{name}/proxy{path:path}",
                self._service_proxy,
                methods=methods,
            ),
            Route("/{prefix:path}", self._resource, methods=methods),
        ]
        self.app = Starlette(routes=routes)
        self.port = 0
        self.containers: dict[str, str] = {}  # image -> "host:port" of the process for it
        # (plural, namespace, name, field manager) -> what that manager applied last
        self.applied: dict[tuple[str, str | None, str | None, str | None], Obj] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig for this server (context ``fake``)."""
        context = {"cluster": "fake", "user": "tester", "namespace": namespace}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": context}],
            "current-context": "fake",
        }
        path.write_text(json.dumps(config))
        return path

    @contextmanager
    def serve(self) -> Iterator[FakeApiServer]:
        self.port = free_port()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the fake API server did not start")
            time.sleep(0.01)
        try:
            yield self
        finally:
            server.should_exit = True
            thread.join(timeout=10)

    async def _version(self, request: Request) -> JSONResponse:
        version = {"major": "1", "minor": "37", "gitVersion": "v1.37.0-fake"}
        return JSONResponse({**version, "platform": "linux/amd64"})

    async def _api(self, request: Request) -> JSONResponse:
        address = {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}
        body = {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [address]}
        return JSONResponse(body)

    async def _no_openapi(self, request: Request) -> JSONResponse:
        return JSONResponse(status_object(404, "NotFound", "no OpenAPI here"), status_code=404)

    async def _discovery(self, request: Request) -> Response:
        group = request.path_params.get("group", "")
        version = request.path_params["version"]
        served = group not in self.state.absent
        if not served or not any((k.group, k.version) == (group, version) for k in KINDS):
            message = f"the server could not find {request.url.path}"
            return JSONResponse(status_object(404, "NotFound", message), status_code=404)
        return JSONResponse(_resource_list(group, version))

    async def _access_review(self, request: Request) -> Response:
        """``SelfSubjectAccessReview`` (what ``kubectl auth can-i`` asks): allowed, unless
        ``state.denied`` holds (verb, group, resource[/subresource]) as RBAC would refuse."""
        self._seen(request)
        try:
            body = await _body(request)  # JSON only: kubectl's protobuf is refused with 415
        except Refused as unreadable:
            return _refused(unreadable)
        asked = body.get("spec", {}).get("resourceAttributes") or {}
        resource = asked.get("resource", "")
        if asked.get("subresource"):
            resource += f"/{asked['subresource']}"
        refused = (asked.get("verb", ""), asked.get("group", ""), resource) in self.state.denied
        status: dict[str, Any] = {"allowed": not refused}
        if refused:
            status["reason"] = "no RBAC policy matched"
        return JSONResponse({**body, "status": status}, status_code=201)

    async def _pod_log(self, request: Request) -> Response:
        """``pods/NAME/log`` as the kubelet answers it: the running container's output
        (``state.write_log``), or the exited one's (``previous=true``, ``state.crash_pod``);
        ``timestamps`` (RFC 3339 to the nanosecond), ``sinceTime`` (whole seconds),
        ``tailLines``; a container waiting to start has no log yet (400)."""
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        self._seen(request)
        pod = self.state.get(POD, namespace, name)
        if pod is None:
            return _refused(_not_found(POD, name))
        query = request.query_params
        previous = query.get("previous") in ("true", "1")
        lines = self.state.logs.get((namespace, name)) if previous else None
        if previous and lines is None:
            message = f'previous terminated container in pod "{name}" not found'
            return _refused(Refused(400, "BadRequest", message))
        waiting = (pod["status"].get("containerStatuses") or [{}])[0].get("state", {})
        reason = (waiting.get("waiting") or {}).get("reason", "")
        if not previous and reason and reason != "CrashLoopBackOff":
            container = pod["spec"]["containers"][0]["name"]
            message = f'container "{container}" in pod "{name}" is waiting to start: {reason}'
            return _refused(Refused(400, "BadRequest", message))
        shown = list(lines if lines is not None else self.state.output.get((namespace, name), []))
        since = query.get("sinceTime")
        if since is not None:
            shown = [(stamp, text) for stamp, text in shown if stamp[:19] >= since[:19]]
        tail = query.get("tailLines")
        if tail is not None and tail.isdigit():
            shown = shown[len(shown) - int(tail) :] if int(tail) else []
        stamped = query.get("timestamps") in ("true", "1")
        body = "".join(f"{stamp} {text}\n" if stamped else f"{text}\n" for stamp, text in shown)
        return Response(body, media_type="text/plain")

    async def _pod_metrics(self, request: Request) -> Response:
        """metrics-server's ``PodMetricsList`` (what ``kubectl top pod`` reads), from
        ``state.usage``; every namespace's when none is named."""
        self._seen(request)
        selector = request.query_params.get("labelSelector", "")
        namespace = request.path_params.get("namespace")
        names = [namespace] if namespace else sorted({ns for ns, _ in self.state.usage})
        items = [m for ns in names for m in self.state.pod_metrics(ns, selector)]
        return JSONResponse(
            {
                "kind": "PodMetricsList",
                "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {},
                "items": items,
            }
        )

    async def _pod_proxy(self, request: Request) -> Response:
        """``pods/NAME[:PORT]/proxy/PATH`` (also ``SCHEME:NAME:PORT``) to the pod's container."""
        namespace, (name, port) = request.path_params["namespace"], _name_port(request)
        self._seen(request)
        pod = self.state.get(POD, namespace, name)
        if pod is None:
            return _refused(_not_found(POD, name))
        return await self._forward(request, pod, port)

    async def _service_proxy(self, request: Request) -> Response:
        """``services/NAME[:PORT]/proxy/PATH`` to a ready pod the Service selects (the real
        server goes through the Service's endpoints; this one picks the first such pod)."""
        namespace, (name, port) = request.path_params["namespace"], _name_port(request)
        self._seen(request)
        service = self.state.get(SERVICE, namespace, name)
        if service is None:
            return _refused(_not_found(SERVICE, name))
        selector = ",".join(f"{k}={v}" for k, v in service["spec"].get("selector", {}).items())
        pods = [p for p in self.state.list(POD, namespace, selector) if pod_ready(p)]
        if not pods:
            message = f'no endpoints available for service "{name}"'
            return _refused(Refused(503, "ServiceUnavailable", message))
        return await self._forward(request, pods[0], port and _target_port(service, port))

    def _seen(self, request: Request) -> None:
        self.state.requests.append(
            (request.method, request.url.path, request.headers.get("content-type", ""))
        )

    async def _forward(self, request: Request, pod: Obj, port: str) -> Response:
        """The request to the process that stands in for the pod's container; its answer
        streamed back (an event stream arrives as it is written)."""
        container = pod["spec"]["containers"][0]
        port = port or str(container.get("ports", [{}])[0].get("containerPort", 80))
        upstream = self.containers.get(container.get("image", ""))
        if upstream is None:
            ip = pod.get("status", {}).get("podIP", "")
            message = (
                f"error trying to reach service: dial tcp {ip}:{port}: connect: connection refused"
            )
            return _refused(Refused(503, "ServiceUnavailable", message))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in REQUEST_DROPS}
        client = httpx.AsyncClient(timeout=None)
        outgoing = client.build_request(
            request.method,
            f"http://{upstream}{request.path_params['path'] or '/'}",
            params=request.query_params,
            headers=headers,
            content=await request.body(),
        )
        try:
            answer = await client.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            await client.aclose()
            message = f"error trying to reach service: {exc}"
            return _refused(Refused(503, "ServiceUnavailable", message))

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in answer.aiter_raw():
                    yield chunk
            finally:
                await answer.aclose()
                await client.aclose()

        kept = {k: v for k, v in answer.headers.items() if k.lower() not in PROXY_DROPS}
        return StreamingResponse(body(), status_code=answer.status_code, headers=kept)

    async def _resource(self, request: Request) -> Response:
        content = request.headers.get("content-type", "")
        self.state.requests.append((request.method, request.url.path, content))
        if request.method != "GET" and self.state.faults:
            code, retry_after = self.state.faults.pop(0)
            reason = "TooManyRequests" if code == 429 else "InternalError"
            headers = {"Retry-After": retry_after} if retry_after else None
            body = status_object(code, reason, f"refused on purpose ({code})")
            return JSONResponse(body, status_code=code, headers=headers)
        try:
            target = _locate(request.url.path)
            if target.name is None:
                return await self._collection(request, target)
            if request.method == "GET":
                return JSONResponse(self._read(target))
            if request.method == "DELETE":
                return self._delete(request, target)
            return await self._write(request, target)
        except Refused as refused:
            return JSONResponse(refused.status, status_code=refused.code)

    async def _collection(self, request: Request, target: Target) -> Response:
        kind = target.kind
        namespace = None if target.all_namespaces else target.namespace
        if request.method == "GET":
            selector = request.query_params.get("labelSelector", "")
            fields = request.query_params.get("fieldSelector", "")
            if request.query_params.get("watch") in ("1", "true"):
                return self._watch(request, kind, namespace, selector)
            with self.state.lock:
                items = self.state.list(kind, namespace, selector, fields)
                meta = {"resourceVersion": str(self.state.rv)}
            head = {"kind": f"{kind.kind}List", "apiVersion": kind.api_version, "metadata": meta}
            return JSONResponse({**head, "items": items})
        if request.method != "POST":
            raise Refused(405, "MethodNotAllowed", f"{request.method} on a collection")
        body = await _body(request)
        if kind.namespaced:
            given = body.setdefault("metadata", {}).setdefault("namespace", target.namespace)
            if given != target.namespace:
                message = "the namespace of the object does not match the namespace of the request"
                raise Refused(400, "BadRequest", message)
        _validate(body)
        if _dry_run(request):
            return JSONResponse(body, status_code=201)
        return JSONResponse(self.state.put(kind, body, create=True), status_code=201)

    def _current(self, target: Target) -> Obj:
        assert target.name is not None
        current = self.state.get(target.kind, target.namespace, target.name)
        if current is None:
            raise _not_found(target.kind, target.name)
        return current

    def _read(self, target: Target) -> Obj:
        current = self._current(target)
        return _scale(current) if target.sub == "scale" else current

    def _delete(self, request: Request, target: Target) -> Response:
        assert target.name is not None
        if _dry_run(request):
            return JSONResponse(self._current(target))
        return JSONResponse(self.state.delete(target.kind, target.namespace, target.name))

    async def _write(self, request: Request, target: Target) -> Response:
        """PUT and PATCH of an object or of its ``/status`` or ``/scale``."""
        assert target.name is not None
        kind, name = target.kind, target.name
        body = await _body(request)
        content = request.headers.get("content-type", "").split(";")[0]
        current = self.state.get(kind, target.namespace, name)
        if current is None and request.method == "PATCH" and content == APPLY and not target.sub:
            return self._apply_create(request, target, body)
        if current is None:
            raise _not_found(kind, name)
        applied = body if content == APPLY and not target.sub else None
        manager = (kind.plural, target.namespace, name, request.query_params.get("fieldManager"))
        if request.method == "PATCH":
            base = _scale(current) if target.sub == "scale" else current
            if applied is not None and manager in self.applied:
                # what this manager applied before and applies no more is removed
                base = merge_patch(base, _dropped(self.applied[manager], applied))
            body = self._patched(content, base, body, kind)
            body.setdefault("metadata", {})["resourceVersion"] = current["metadata"][
                "resourceVersion"
            ]
        if target.sub == "scale":
            return self._rescale(request, target, current, body)
        if target.sub == "status":
            updated = copy.deepcopy(current)
            updated["status"] = body.get("status", {})
            updated["metadata"]["resourceVersion"] = body.get("metadata", {}).get("resourceVersion")
            body = updated
        else:
            meta = body.setdefault("metadata", {})
            if meta.setdefault("name", name) != name:
                message = "the name of the object does not match the name on the URL"
                raise Refused(400, "BadRequest", message)
            if kind.namespaced:
                meta["namespace"] = target.namespace
            body.pop("status", None)  # only /status changes it
        _validate(body)
        if _dry_run(request):
            return JSONResponse(body)
        stored = self.state.put(kind, body, create=False)
        if applied is not None:
            self.applied[manager] = copy.deepcopy(applied)
        return JSONResponse(stored)

    def _apply_create(self, request: Request, target: Target, body: Obj) -> Response:
        """Server-side apply of an object that does not exist yet: a create."""
        meta = body.setdefault("metadata", {})
        meta["name"] = target.name
        if target.kind.namespaced:
            meta["namespace"] = target.namespace
        _validate(body)
        if _dry_run(request):
            return JSONResponse(body, status_code=201)
        stored = self.state.put(target.kind, body, create=True)
        manager = request.query_params.get("fieldManager")
        self.applied[(target.kind.plural, target.namespace, target.name, manager)] = copy.deepcopy(
            body
        )
        return JSONResponse(stored, status_code=201)

    @staticmethod
    def _patched(content: str, base: Obj, patch: Obj, kind: Kind) -> Obj:
        custom = kind.group == "gateway.networking.k8s.io"
        if content == MERGE or (content == APPLY and custom):
            # a CRD's lists are atomic unless its schema says otherwise (HTTPRoute's say
            # atomic): an apply replaces them whole, as a merge patch does
            patched = merge_patch(base, patch)
        elif content in (STRATEGIC, APPLY):
            patched = strategic_merge_patch(base, patch)
        else:
            message = f"the body of the request was in an unknown format: {content}"
            raise Refused(415, "UnsupportedMediaType", message)
        assert isinstance(patched, dict)
        return patched

    def _rescale(self, request: Request, target: Target, current: Obj, scale: Obj) -> Response:
        given = scale.get("metadata", {}).get("resourceVersion")
        if given and given != current["metadata"]["resourceVersion"]:
            message = f'Operation cannot be fulfilled on {target.kind.plural} "{target.name}": '
            raise Refused(409, "Conflict", message + "the object has been modified")
        current["spec"]["replicas"] = int(scale.get("spec", {}).get("replicas", 0))
        if _dry_run(request):
            return JSONResponse(_scale(current))
        return JSONResponse(_scale(self.state.put(target.kind, current, create=False)))

    def _watch(
        self, request: Request, kind: Kind, namespace: str | None, selector: str
    ) -> Response:
        query = request.query_params
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true")
        timeout = float(query.get("timeoutSeconds") or 300)
        since = query.get("resourceVersion") or ""
        fields = query.get("fieldSelector", "")
        return StreamingResponse(
            self._events(request, kind, namespace, (selector, fields), since, bookmarks, timeout),
            media_type="application/json",
        )

    async def _events(
        self,
        request: Request,
        kind: Kind,
        namespace: str | None,
        selectors: tuple[str, str],
        since: str,
        bookmarks: bool,
        timeout: float,
    ) -> AsyncIterator[bytes]:
        state = self.state
        selector, fields = selectors

        def line(type_: str, obj: Obj) -> bytes:
            return json.dumps({"type": type_, "object": obj}).encode() + b"\n"

        def wanted(obj: Obj) -> bool:
            meta = obj["metadata"]
            in_namespace = namespace is None or meta.get("namespace") == namespace
            labelled = matches(selector, meta.get("labels") or {})
            return in_namespace and labelled and matches(fields, field_values(obj))

        with state.lock:
            if since in ("", "0"):  # no version: the objects now as ADDED, then what follows
                sent = state.rv
                first = [line("ADDED", o) for o in state.list(kind, namespace, selector, fields)]
            elif int(since) + 1 < state.oldest:
                message = f"too old resource version: {since} ({state.oldest})"
                yield line("ERROR", status_object(410, "Expired", message))
                return
            else:
                sent, first = int(since), []
        for chunk in first:
            yield chunk
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        state.waiters.append((loop, wake))
        deadline, last_bookmark = loop.time() + timeout, loop.time()
        try:
            while loop.time() < deadline and not await request.is_disconnected():
                wake.clear()
                with state.lock:
                    fresh = [e for e in state.history if e.rv > sent and e.kind is kind]
                    newest = state.rv
                for event in fresh:
                    if wanted(event.obj):
                        yield line(event.type, event.obj)
                    sent = event.rv
                if bookmarks and loop.time() - last_bookmark >= 1.0:
                    meta = {"resourceVersion": str(newest)}
                    mark = {"kind": kind.kind, "apiVersion": kind.api_version, "metadata": meta}
                    yield line("BOOKMARK", mark)
                    sent, last_bookmark = max(sent, newest), loop.time()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=0.5)
        finally:
            state.waiters.remove((loop, wake))
