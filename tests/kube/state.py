"""The fake API server's objects: kinds, label selectors, patches, resourceVersions, the
watch history, and the Deployment controller's part (pods and status), in memory.

See ``apiserver.py`` for what is served and why a fake.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import copy
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    group: str  # '' for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


KINDS = [
    Kind("", "v1", "namespaces", "Namespace", namespaced=False, short=("ns",)),
    Kind("", "v1", "pods", "Pod", short=("po",), subresources=("status",)),
    Kind("", "v1", "services", "Service", short=("svc",), subresources=("status",)),
    Kind("", "v1", "secrets", "Secret"),
    Kind("", "v1", "configmaps", "ConfigMap", short=("cm",)),
    Kind("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
    Kind("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",)),
    Kind("", "v1", "events", "Event", short=("ev",)),
    Kind(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        short=("deploy",),
        subresources=("status", "scale"),
    ),
    Kind("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    Kind("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    Kind("coordination.k8s.io", "v1", "leases", "Lease"),
    Kind("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", subresources=("status",)),
    Kind(
        "networking.k8s.io", "v1", "ingresses", "Ingress", short=("ing",), subresources=("status",)
    ),
    # metrics-server's resource metrics (read-only, computed from ``ApiState.usage``)
    Kind("metrics.k8s.io", "v1beta1", "pods", "PodMetrics"),
]
BY_PATH = {(k.group, k.version, k.plural): k for k in KINDS}
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
HISTORY = 1000  # watch events kept; older resourceVersions get 410 Expired


def status_object(code: int, reason: str, message: str) -> Obj:
    """A ``Status`` of kind Failure, as the API server answers an error."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class Refused(Exception):
    """An API error: its HTTP code, its reason (NotFound, Conflict, ...) and message."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status_object(code, reason, message)
        self.code = code


# --- label selectors ------------------------------------------------------------------------

_SET_RE = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [p for p in [*parts, current] if p.strip()]


def matches(selector: str, labels: dict[str, str]) -> bool:
    for raw in _split_selector(selector):
        found = _SET_RE.match(raw)
        if found:
            key, op, values = found[1], found[2], {v.strip() for v in found[3].split(",")}
            if (labels.get(key) in values) != (op == "in") or (op == "in" and key not in labels):
                return False
            continue
        term = raw.strip()
        if "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def field_values(obj: Obj) -> dict[str, str]:
    """What a ``fieldSelector`` can name: the fields every kind supports, and an Event's
    ``involvedObject.*`` and ``reason``, ``type`` (what ``kubectl describe`` selects on)."""
    meta = obj.get("metadata", {})
    values = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
    }
    if obj.get("kind") == "Event":
        involved = obj.get("involvedObject") or {}
        values |= {f"involvedObject.{k}": str(v) for k, v in involved.items()}
        values |= {"reason": obj.get("reason", ""), "type": obj.get("type", "")}
    return values


# --- patches --------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """A merge patch whose lists of objects with a ``name`` merge item by item by name
    (containers, env, ports, volumes, rules' named entries); other lists are replaced."""
    if isinstance(patch, list) and isinstance(target, list):
        if all(isinstance(i, dict) and "name" in i for i in patch + target):
            merged = {i["name"]: i for i in copy.deepcopy(target)}
            order = [i["name"] for i in target]
            for item in patch:
                name = item["name"]
                merged[name] = strategic_merge_patch(merged.get(name), item)
                if name not in order:
                    order.append(name)
            return [merged[n] for n in order]
        return copy.deepcopy(patch)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    return result


# --- the store ------------------------------------------------------------------------------


@dataclass
class Event:
    rv: int
    kind: Kind
    type: str
    obj: Obj


class ApiState:
    """Every object, the resourceVersion counter and the watch history."""

    def __init__(self, ready_pods: bool = True) -> None:
        self.lock = threading.RLock()
        self.objects: dict[tuple[str, str, str], Obj] = {}  # (plural key, namespace, name)
        self.rv = 0
        self.history: list[Event] = []
        self.oldest = 0  # resourceVersions below this are gone (410)
        self.ready_pods = ready_pods
        self.waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self.requests: list[tuple[str, str, str]] = []  # (method, path, content type)
        # writes to refuse next, as an overloaded or failing server does: (status, Retry-After)
        self.faults: list[tuple[int, str | None]] = []
        # (verb, group, resource[/subresource]) RBAC refuses to the caller
        self.denied: set[tuple[str, str, str]] = set()
        # (namespace, pod) -> (stamp, line) its last exited container wrote (crash_pod), and
        # its running container writes (write_log)
        self.logs: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.output: dict[tuple[str, str], list[tuple[str, str]]] = {}
        # (namespace, pod) -> its container's CPU in use, as metrics-server reports it
        self.usage: dict[tuple[str, str], str] = {}
        self.absent: set[str] = set()  # API groups not served (metrics.k8s.io: no metrics-server)

    @staticmethod
    def key(kind: Kind) -> str:
        return f"{kind.group}/{kind.plural}"

    def _record(self, kind: Kind, type_: str, obj: Obj) -> None:
        self.history.append(Event(self.rv, kind, type_, copy.deepcopy(obj)))
        if len(self.history) > HISTORY:
            drop = self.history[: len(self.history) - HISTORY]
            self.oldest = drop[-1].rv + 1
            del self.history[: len(drop)]
        for loop, event in list(self.waiters):
            loop.call_soon_threadsafe(event.set)

    def compact(self) -> None:
        """Forget the watch history (etcd compaction): older resourceVersions get 410."""
        with self.lock:
            self.history.clear()
            self.oldest = self.rv + 1

    def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        with self.lock:
            found = self.objects.get((self.key(kind), namespace, name))
            return copy.deepcopy(found) if found else None

    def list(
        self, kind: Kind, namespace: str | None, selector: str = "", fields: str = ""
    ) -> list[Obj]:
        with self.lock:
            return [
                copy.deepcopy(obj)
                for (k, ns, _), obj in sorted(self.objects.items())
                if k == self.key(kind)
                and (namespace is None or ns == namespace)
                and matches(selector, obj["metadata"].get("labels") or {})
                and matches(fields, field_values(obj))
            ]

    def put(self, kind: Kind, obj: Obj, *, create: bool, check_rv: bool = True) -> Obj:
        """Create or update ``obj`` (its metadata.resourceVersion, when given, must be the
        stored one); returns what is stored."""
        with self.lock:
            meta = obj.setdefault("metadata", {})
            name, namespace = meta.get("name"), meta.get("namespace", "") if kind.namespaced else ""
            if not name:
                raise Refused(422, "Invalid", f"{kind.kind}: metadata.name: Required value")
            key = (self.key(kind), namespace, name)
            old = self.objects.get(key)
            if create and old is not None:
                raise Refused(409, "AlreadyExists", f'{kind.plural} "{name}" already exists')
            if not create and old is None:
                raise Refused(404, "NotFound", f'{kind.plural} "{name}" not found')
            given = meta.get("resourceVersion")
            if (
                check_rv
                and old is not None
                and given
                and given != old["metadata"]["resourceVersion"]
            ):
                raise Refused(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {kind.plural} "{name}": the object has '
                    "been modified; please apply your changes to the latest version and try again",
                )
            self.rv += 1
            obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
            if kind.kind == "Secret" and "stringData" in obj:  # write-only: kept as data
                data = obj.setdefault("data", {})
                for field, text in obj.pop("stringData").items():
                    data[field] = base64.b64encode(str(text).encode()).decode()
            if old is None:
                meta.update(
                    uid=str(uuid.uuid4()),
                    creationTimestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    generation=1,
                )
            else:
                for field in ("uid", "creationTimestamp"):
                    meta[field] = old["metadata"][field]
                changed = obj.get("spec") != old.get("spec")
                meta["generation"] = old["metadata"].get("generation", 1) + int(changed)
                if "status" not in obj and "status" in old:
                    obj["status"] = old["status"]
            if kind.namespaced:
                meta["namespace"] = namespace
            meta["resourceVersion"] = str(self.rv)
            meta.pop("managedFields", None)
            self.objects[key] = obj
            self._record(kind, "ADDED" if old is None else "MODIFIED", obj)
            self._react(kind, obj)
            return copy.deepcopy(obj)

    def _react(self, kind: Kind, obj: Obj) -> None:
        """What the cluster's controllers do when ``obj`` is written."""
        if kind.kind == "Deployment":
            self._reconcile_deployment(obj)
        if kind.kind == "Secret":  # the kubelet retries the pods that waited for it
            namespace = obj["metadata"]["namespace"]
            for pod in self.list(POD, namespace, ""):
                if _waiting(pod) == "CreateContainerConfigError":
                    self._kubelet(pod)
                    self.put(POD, pod, create=False, check_rv=False)
                    for owner in pod["metadata"].get("ownerReferences", []):
                        self._deployment_status(namespace, owner["name"])

    def _kubelet(self, pod: Obj) -> None:
        """The pod's status as a kubelet sets it: its containers wait with
        CreateContainerConfigError while a Secret their env names (or its key) is missing,
        and run otherwise (ready if the server's pods become ready)."""
        namespace = pod["metadata"]["namespace"]
        status = pod.setdefault("status", {})
        for container in pod["spec"]["containers"]:
            for var in container.get("env") or []:
                ref = (var.get("valueFrom") or {}).get("secretKeyRef")
                if ref is None:
                    continue
                secret = self.get(SECRET, namespace, ref["name"])
                problem = (
                    f'secret "{ref["name"]}" not found'
                    if secret is None
                    else f"couldn't find key {ref['key']} in Secret {namespace}/{ref['name']}"
                    if ref["key"] not in (secret.get("data") or {})
                    else ""
                )
                if problem:
                    waiting = {"reason": "CreateContainerConfigError", "message": problem}
                    status.update(
                        phase="Pending",
                        conditions=[{"type": "Ready", "status": "False"}],
                        containerStatuses=[
                            {
                                "name": container["name"],
                                "ready": False,
                                "restartCount": 0,
                                "state": {"waiting": waiting},
                            }
                        ],
                    )
                    return
        status.pop("containerStatuses", None)
        ready = "True" if self.ready_pods else "False"
        status.update(phase="Running", conditions=[{"type": "Ready", "status": ready}])

    def delete(self, kind: Kind, namespace: str, name: str) -> Obj:
        with self.lock:
            obj = self.objects.pop((self.key(kind), namespace, name), None)
            if obj is None:
                raise Refused(404, "NotFound", f'{kind.plural} "{name}" not found')
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self._record(kind, "DELETED", obj)
            if kind.kind == "Deployment":
                selector = obj["spec"]["selector"]["matchLabels"]
                for pod in self.list(
                    POD, namespace, ",".join(f"{k}={v}" for k, v in selector.items())
                ):
                    self.delete(POD, namespace, pod["metadata"]["name"])
            return obj

    # the Deployment controller, as far as rollwise looks
    def _reconcile_deployment(self, deployment: Obj) -> None:
        meta, spec = deployment["metadata"], deployment["spec"]
        namespace, name = meta["namespace"], meta["name"]
        template = spec["template"]
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        selector = ",".join(f"{k}={v}" for k, v in spec["selector"]["matchLabels"].items())
        pods = self.list(POD, namespace, selector)
        want = int(spec.get("replicas", 1))
        for pod in pods[want:]:
            self.delete(POD, namespace, pod["metadata"]["name"])
        taken = {p["metadata"]["name"] for p in pods}
        index = 0
        while len(taken) < want:
            pod_name = f"{name}-{digest}-{index}"
            index += 1
            if pod_name in taken:
                continue
            taken.add(pod_name)
            pod = {
                "metadata": {
                    "name": pod_name,
                    "namespace": namespace,
                    "labels": dict(template["metadata"].get("labels") or {}),
                    "ownerReferences": [{"kind": "Deployment", "name": name, "uid": meta["uid"]}],
                },
                "spec": copy.deepcopy(template["spec"]),
                "status": {"podIP": f"10.0.{self.rv % 250}.{len(taken)}"},
            }
            self._kubelet(pod)
            self.put(POD, pod, create=True)
        self._deployment_status(namespace, name)

    def _deployment_status(self, namespace: str, name: str) -> None:
        deployment = self.objects.get((self.key(DEPLOYMENT), namespace, name))
        if deployment is None:
            return
        spec = deployment["spec"]
        selector = ",".join(f"{k}={v}" for k, v in spec["selector"]["matchLabels"].items())
        pods = self.list(POD, namespace, selector)
        ready = sum(1 for p in pods if pod_ready(p))
        want = int(spec.get("replicas", 1))
        new_status = {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": len(pods),
            "updatedReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(0, want - ready),
            "conditions": [
                {"type": "Available", "status": "True" if ready >= want else "False"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        }
        if deployment.get("status") != new_status:
            updated = copy.deepcopy(deployment)
            updated["status"] = new_status
            self.rv += 1
            updated["metadata"]["resourceVersion"] = str(self.rv)
            self.objects[(self.key(DEPLOYMENT), namespace, name)] = updated
            self._record(DEPLOYMENT, "MODIFIED", updated)

    def crash_pod(self, namespace: str, name: str, exit_code: int, output: Sequence[str]) -> None:
        """The pod's container exits with ``exit_code`` after writing ``output`` and the
        kubelet backs off restarting it, as it reports a crash loop; ``logs`` keeps what the
        exited container wrote (``kubectl logs --previous``)."""
        with self.lock:
            pod = self.get(POD, namespace, name)
            if pod is None:
                raise KeyError(name)
            container = pod["spec"]["containers"][0]["name"]
            before = (pod["status"].get("containerStatuses") or [{}])[0]
            pod["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
            pod["status"]["containerStatuses"] = [
                {
                    "name": container,
                    "ready": False,
                    "restartCount": int(before.get("restartCount", 0)) + 1,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": exit_code, "reason": "Error"}},
                }
            ]
            self.logs[(namespace, name)] = [(stamp(), line) for line in output]
            self.output.pop((namespace, name), None)
            self.put(POD, pod, create=False, check_rv=False)
            for owner in pod["metadata"].get("ownerReferences", []):
                self._deployment_status(namespace, owner["name"])

    def pod_metrics(self, namespace: str, selector: str) -> builtins.list[Obj]:
        """metrics-server's PodMetrics of the selected pods that have a usage (a pod not
        scraped yet has none)."""
        with self.lock:
            pods = self.list(POD, namespace, selector)
            return [
                {
                    "metadata": {
                        "name": pod["metadata"]["name"],
                        "namespace": namespace,
                        "labels": pod["metadata"].get("labels", {}),
                        "creationTimestamp": stamp()[:19] + "Z",
                    },
                    "timestamp": stamp()[:19] + "Z",
                    "window": "15s",
                    "containers": [
                        {
                            "name": pod["spec"]["containers"][0]["name"],
                            "usage": {"cpu": cpu, "memory": "65536Ki"},
                        }
                    ],
                }
                for pod in pods
                if (cpu := self.usage.get((namespace, pod["metadata"]["name"]))) is not None
            ]

    def write_log(self, namespace: str, name: str, *lines: str) -> None:
        """The pod's running container writes ``lines`` (the kubelet stamps each)."""
        with self.lock:
            if self.get(POD, namespace, name) is None:
                raise KeyError(name)
            self.output.setdefault((namespace, name), []).extend((stamp(), x) for x in lines)

    def set_pod_ready(self, namespace: str, name: str, ready: bool) -> None:
        """A pod's readiness probe starts (or stops) passing."""
        with self.lock:
            pod = self.get(POD, namespace, name)
            if pod is None:
                raise KeyError(name)
            pod["status"]["conditions"] = [
                {"type": "Ready", "status": "True" if ready else "False"}
            ]
            self.put(POD, pod, create=False, check_rv=False)
            for owner in pod["metadata"].get("ownerReferences", []):
                self._deployment_status(namespace, owner["name"])


POD = BY_PATH[("", "v1", "pods")]
DEPLOYMENT = BY_PATH[("apps", "v1", "deployments")]
SERVICE = BY_PATH[("", "v1", "services")]
SECRET = BY_PATH[("", "v1", "secrets")]


def stamp() -> str:
    """Now, as the kubelet stamps a log line (RFC 3339, nanoseconds, trailing zeros trimmed)."""
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    fraction = f".{nanos:09d}".rstrip("0").rstrip(".")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + fraction + "Z"


def _waiting(pod: Obj) -> str | None:
    statuses = pod.get("status", {}).get("containerStatuses") or [{}]
    reason = (statuses[0].get("state") or {}).get("waiting", {}).get("reason")
    return str(reason) if reason else None


def pod_ready(pod: Obj) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
