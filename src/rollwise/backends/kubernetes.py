"""Revisions as Deployments on a Kubernetes cluster: the second ``Backend``.

Each revision is a Deployment ``<app>-r<N>`` (``kubernetes/objects.py`` says why Deployments
and what labels). The backend declares and the cluster's controllers make it so:

- ``ensure`` records the wanted replica count and wakes the reconcile loop, which applies the
  Deployment (server-side apply, field manager ``rollwise``) when what it wants differs from
  what it last applied; a scale change is the same apply with another ``replicas``;
- readiness is the pods' ``Ready`` condition, read from a pod watch per namespace
  (``kubernetes/watch.py``), never polled; a change of a revision's health calls the
  controller's listener, as the local backend does;
- an object of the same name that rollwise did not make (no ``app.kubernetes.io/managed-by:
  rollwise`` label) is never modified or deleted: the revision stays unready and an
  ``ObjectNotOurs`` event names the object and the fix;
- ``adopt`` after a controller restart lists rollwise's Deployments by label in the running
  apps' namespaces: those of running revisions are kept, rollwise's others are deleted;
- ``stop`` deletes the Deployment; its pods end within their grace period (the controller
  drains a revision by its routes before it stops it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import structlog

from rollwise.backends.base import (
    DIRECT,
    BackendEvents,
    HealthListener,
    Reach,
    ReplicaState,
    RevisionHealth,
    Workload,
)
from rollwise.backends.kubernetes_logs import LogLine, read_pod_log
from rollwise.backends.kubernetes_usage import PodUsage
from rollwise.errors import BackendError
from rollwise.kubernetes.connection import api_retry
from rollwise.kubernetes.names import (
    APP_LABEL,
    MANAGED_BY,
    REVISION_LABEL,
    owned,
    revision_of,
)
from rollwise.kubernetes.objects import (
    revision_deployment,
    revision_name,
    revision_secret,
    secret_name,
)
from rollwise.kubernetes.recorder import EventRecorder
from rollwise.kubernetes.watch import Obj, Reflector
from rollwise.words import EventKind

if TYPE_CHECKING:
    from lightkube import AsyncClient

__all__ = ["KubernetesBackend"]

log = structlog.get_logger("rollwise.kubernetes")
OURS = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
RETRY_S = 2.0
LOG_LINES = 10  # of a crashed container, for the event that ends its release

Key = tuple[str, int]


def _ready(pod: Obj) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _address(pod: Obj) -> tuple[str, int]:
    """The pod's IP and its container's (first) port."""
    ports = pod.get("spec", {}).get("containers", [{}])[0].get("ports") or [{}]
    return str(pod.get("status", {}).get("podIP", "")), int(ports[0].get("containerPort", 0))


def _pod_key(pod: Obj) -> str:
    return f"{pod['metadata'].get('namespace', '')}/{pod['metadata']['name']}"


# a container waiting for one of these is on its way; any other reason stops it
_STARTING = {"ContainerCreating", "PodInitializing", "CrashLoopBackOff", None}


def _stuck(status: Obj) -> str:
    """Why the pod does not start, as the cluster says: a container's waiting reason
    (CreateContainerConfigError: a Secret not found, ImagePullBackOff...) or the scheduler's."""
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") not in _STARTING:
            return f"{waiting['reason']}: {waiting.get('message', '')}".rstrip(": ")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"{condition.get('reason', 'Unschedulable')}: {condition.get('message', '')}"
    return ""


def _replica(index: int, pod: Obj, cpu: float | None = None) -> ReplicaState:
    status = pod.get("status", {})
    statuses = status.get("containerStatuses") or []
    waiting = [s.get("state", {}).get("waiting", {}).get("reason") for s in statuses]
    exits = [
        s["lastState"]["terminated"].get("exitCode")
        for s in statuses
        if "terminated" in (s.get("lastState") or {})
    ]
    if _ready(pod):
        state = "ready"
    elif "CrashLoopBackOff" in waiting:
        state = "crashed"
    elif status.get("phase") == "Running":
        state = "starting"
    else:
        state = "pending"
    ip, port = _address(pod)
    return ReplicaState(
        index=index,
        address=f"{ip}:{port}",
        pid=None,
        state=state,
        restarts=sum(int(s.get("restartCount", 0)) for s in statuses),
        last_exit=exits[0] if exits else None,
        name=str(pod["metadata"].get("name", "")),
        reason=_stuck(status),
        cpu=cpu,
    )


def _manifests(workload: Workload, replicas: int) -> list[Obj]:
    """What a revision applies: its Secret (when it has secret variables), its Deployment."""
    rollout = workload.rollout
    assert rollout is not None, "a Kubernetes workload carries its spec"
    secret = revision_secret(rollout, workload.revision, workload.version)
    deployment = revision_deployment(rollout, workload.revision, workload.version, replicas)
    return [secret, deployment] if secret is not None else [deployment]


def _resource(kind: str) -> Any:
    """lightkube's class for what a revision applies: its Deployment, its Secret."""
    from lightkube.resources.apps_v1 import Deployment
    from lightkube.resources.core_v1 import Secret

    return {"Deployment": Deployment, "Secret": Secret}[kind]


class KubernetesBackend:
    """Revisions as Deployments, readiness from pod watches (see the module's docstring)."""

    # set by the providers: backends.kubernetes_reach.InCluster, or ThroughApi over ``pod_at``
    reach: Reach = DIRECT

    def __init__(
        self,
        client: AsyncClient,
        http: httpx.AsyncClient,
        on_event: BackendEvents | None = None,
        on_change: HealthListener | None = None,
    ) -> None:
        self.client = client
        self.http = http
        self.on_event = on_event or (lambda app, rev, kind, msg: None)
        self.on_change = on_change or (lambda app, rev: None)
        self.wanted: dict[Key, tuple[Workload, int]] = {}
        self.applied: dict[Key, list[Obj]] = {}
        self.refused: set[Key] = set()
        self.namespaces: dict[Key, str] = {}
        self.pods: dict[str, Reflector] = {}
        self._watches: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # crashed containers' logs being read
        self._health: dict[Key, RevisionHealth] = {}
        # namespace/pod -> (restart count, last lines of the crashed container) as read
        self._crash_logs: dict[str, tuple[int, tuple[str, ...] | None]] = {}
        self._wake = asyncio.Event()
        self.recorder = EventRecorder(http)  # the cluster's Events of each revision
        self.usage = PodUsage(
            http, lambda ns: self.pods[ns].objects.values() if ns in self.pods else ()
        )

    # the Backend protocol

    def ensure(self, workload: Workload, replicas: int) -> None:
        key = (workload.app, workload.revision)
        self.wanted[key] = (workload, replicas)
        self.namespaces[key] = self._namespace(workload)
        self._watch(self.namespaces[key])
        autoscaling = workload.rollout.spec.autoscaling if workload.rollout else None
        if autoscaling is not None:
            self.usage.measure(self.namespaces[key], autoscaling.interval)
        self._wake.set()

    def health(self, app: str, revision: int) -> RevisionHealth:
        pods = self._pods(app, revision)
        wanted = self.wanted.get((app, revision))
        if wanted is None and not pods:
            return RevisionHealth.none()
        usage = self.usage.cpu
        replicas = tuple(_replica(i, p, usage.get(_pod_key(p))) for i, p in enumerate(pods))
        # a crash loop is told once the crashed container's last lines are read (or could not
        # be), so that what aborts the release says why it crashed
        crashed = [(r, pod) for r, pod in zip(replicas, pods, strict=True) if r.state == "crashed"]
        logs: tuple[str, ...] | None = None
        if crashed:
            pod = max(crashed, key=lambda c: c[0].restarts)[1]
            logs = self._crash_logs.get(_pod_key(pod), (-1, None))[1]
        return RevisionHealth(
            desired=wanted[1] if wanted else 0,
            running=sum(1 for r in replicas if r.state in ("ready", "starting")),
            ready=sum(1 for r in replicas if r.state == "ready"),
            crash_loop=logs is not None,
            replicas=replicas,
            last_logs=logs or (),
        )

    def addresses(self, app: str, revision: int, *, ready: bool = True) -> list[str]:
        health = self.health(app, revision)
        return [r.address for r in health.replicas if r.state == "ready" or not ready]

    async def stop(self, app: str, revision: int) -> None:
        key = (app, revision)
        self.wanted.pop(key, None)
        self.applied.pop(key, None)
        namespace = self.namespaces.get(key)
        if namespace is not None and key not in self.refused:
            await self._delete("Deployment", namespace, revision_name(app, revision))
            await self._delete("Secret", namespace, secret_name(app, revision))
        self.refused.discard(key)

    async def adopt(self, running: Mapping[Key, Workload]) -> int:
        from lightkube.resources.apps_v1 import Deployment
        from lightkube.resources.core_v1 import Secret

        ours: dict[str, Any] = dict(MANAGED_BY)
        for namespace in sorted({self._namespace(w) for w in running.values()}):
            self._watch(namespace)
            async for found in self.client.list(Deployment, namespace=namespace, labels=ours):
                name = found.metadata.name if found.metadata else None
                key = revision_of(found.metadata.labels if found.metadata else None)
                if key is None:
                    continue
                if key in running and found.spec is not None:
                    self.namespaces[key] = namespace
                    if found.metadata and found.metadata.uid and name is not None:
                        self.recorder.regard(key, namespace, name, found.metadata.uid)
                    self.wanted[key] = (running[key], found.spec.replicas or 0)
                elif name is not None:
                    log.info("stopping an orphan revision", deployment=f"{namespace}/{name}")
                    await self._delete("Deployment", namespace, name)
            async for secret in self.client.list(Secret, namespace=namespace, labels=ours):
                name = secret.metadata.name if secret.metadata else None
                key = revision_of(secret.metadata.labels if secret.metadata else None)
                if key is not None and key not in running and name is not None:
                    await self._delete("Secret", namespace, name)
        for reflector in self.pods.values():
            await reflector.synced.wait()
        self._wake.set()
        return sum(len(self._pods(*key)) for key in running)

    def suspect(self, address: str) -> None:
        """The kubelet probes the pods; the watch reports what it finds."""

    def owner(self, address: str) -> Key | None:
        for key in self.namespaces:
            if address in self.addresses(*key, ready=False):
                return key
        return None

    def pod_at(self, address: str) -> tuple[str, str, int] | None:
        """The pod (namespace, name, container port) of ours that answers at ``address``."""
        ip, _, port = address.rpartition(":")
        for namespace, reflector in self.pods.items():
            for pod in reflector.objects.values():
                if _address(pod) == (ip, int(port)):
                    return namespace, str(pod["metadata"]["name"]), int(port)
        return None

    def record(self, app: str, event: Mapping[str, Any]) -> None:
        """One of rollwise's events as a cluster Event regarding its revision's Deployment
        (events of no revision, or of one not applied here, stay rollwise's own)."""
        revision = event.get("revision")
        if isinstance(revision, int):
            self.recorder.tell((app, revision), str(event["kind"]), str(event["message"]))

    def log_paths(self, app: str, revision: int | None = None) -> list[Path]:
        return []  # pods' logs are the cluster's: pod_logs

    async def pod_logs(
        self, app: str, revision: int | None, tail: int, since: Mapping[str, str]
    ) -> list[tuple[str, int, list[LogLine]]]:
        """(pod, revision, lines) of each pod the app's revisions (or ``revision``) run now:
        its last ``tail`` lines, or those after the stamp ``since`` gives for it. A pod whose
        container has not started says why in place of its lines."""

        async def read(namespace: str, name: str, number: int) -> tuple[str, int, list[LogLine]]:
            try:
                lines = await read_pod_log(
                    self.http, namespace, name, tail=tail, since=since.get(name)
                )
            except BackendError as exc:
                lines = [("", f"({exc})")] if name not in since else []
            return name, number, lines

        keys = sorted(k for k in self.namespaces if k[0] == app)
        return list(
            await asyncio.gather(
                *(
                    read(self.namespaces[key], str(pod["metadata"]["name"]), key[1])
                    for key in keys
                    if revision is None or key[1] == revision
                    for pod in self._pods(*key)
                )
            )
        )

    async def run(self) -> None:
        """Apply what is wanted whenever it changes; retry what failed."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            for key, (workload, replicas) in list(self.wanted.items()):
                if key in self.refused:
                    continue
                manifests = _manifests(workload, replicas)
                if self.applied.get(key) == manifests:
                    continue
                try:
                    await self._apply(key, manifests)
                except httpx.HTTPError as exc:
                    log.warning("apply failed", deployment=key, error=str(exc), retry_in=RETRY_S)
                    asyncio.get_running_loop().call_later(RETRY_S, self._wake.set)

    async def stop_all(self) -> None:
        for app, revision in list(self.wanted):
            await self.stop(app, revision)

    async def aclose(self) -> None:
        tasks = [*self._watches.values(), *self._tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.usage.aclose()
        await self.recorder.aclose()
        await self.http.aclose()
        await self.client.close()

    # helpers

    @staticmethod
    def _namespace(workload: Workload) -> str:
        return workload.rollout.spec.backend.namespace if workload.rollout else "default"

    def _watch(self, namespace: str) -> None:
        if namespace in self.pods:
            return
        path = f"/api/v1/namespaces/{namespace}/pods"
        self.pods[namespace] = Reflector(self.http, path, OURS, self._pod_changed)
        self._watches[namespace] = asyncio.get_running_loop().create_task(
            self.pods[namespace].run(), name=f"pods {namespace}"
        )

    def _pods(self, app: str, revision: int) -> list[Obj]:
        namespace = self.namespaces.get((app, revision))
        reflector = self.pods.get(namespace or "")
        if reflector is None:
            return []
        wanted = {APP_LABEL: app, REVISION_LABEL: str(revision)}
        pods = [
            pod
            for pod in reflector.objects.values()
            if all(pod["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
        ]
        return sorted(pods, key=lambda pod: str(pod["metadata"]["name"]))

    def _pod_changed(self, change: str, pod: Obj) -> None:
        key = revision_of(pod.get("metadata", {}).get("labels"))
        if key is None:
            return
        replica = _replica(0, pod)
        name = _pod_key(pod)
        if change == "DELETED":
            self._crash_logs.pop(name, None)
        elif (
            replica.state == "crashed" and self._crash_logs.get(name, (-1,))[0] != replica.restarts
        ):
            self._crash_logs[name] = (replica.restarts, None)
            task = asyncio.get_running_loop().create_task(self._read_crash(pod, replica.restarts))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._tell(key)

    async def _read_crash(self, pod: Obj, restarts: int) -> None:
        """The crashed container's last lines (``kubectl logs --previous --tail``)."""
        meta = pod["metadata"]
        try:
            read = await read_pod_log(
                self.http, meta["namespace"], meta["name"], tail=LOG_LINES, previous=True
            )
            lines = tuple(line for _, line in read[-LOG_LINES:])
        except BackendError as exc:
            lines = (f"({exc})",)
        if self._crash_logs.get(_pod_key(pod), (-1,))[0] == restarts:
            self._crash_logs[_pod_key(pod)] = (restarts, lines)
            key = revision_of(meta.get("labels"))
            if key is not None:
                self._tell(key)

    def _tell(self, key: Key) -> None:
        """Call the controller's listener if the revision's health changed."""
        health = self.health(*key)
        if self._health.get(key) != health:
            self._health[key] = health
            self.on_change(*key)

    @api_retry
    async def _apply(self, key: Key, manifests: list[Obj]) -> None:
        """Apply the revision's objects in order (its Secret before the Deployment whose pods
        read it), unless one of them exists and is not rollwise's: then none is touched."""
        from lightkube import codecs

        for manifest in manifests:
            meta = manifest["metadata"]
            labels = await self._labels(manifest["kind"], meta["namespace"], meta["name"])
            if labels is not None and not owned(labels):
                self.refused.add(key)
                self.on_event(
                    *key,
                    EventKind.OBJECT_NOT_OURS,
                    f"{manifest['kind']} {meta['namespace']}/{meta['name']} exists and is not "
                    "rollwise's (no app.kubernetes.io/managed-by=rollwise label): left as it "
                    "is; rename or delete it, or deploy the app to another namespace",
                )
                return
        for manifest in manifests:
            made = await self.client.apply(codecs.from_dict(manifest), force=True)
            meta = made.metadata
            if manifest["kind"] == "Deployment" and meta and meta.uid and meta.name:
                namespace = manifest["metadata"]["namespace"]
                self.recorder.regard(key, namespace, meta.name, meta.uid)
        self.applied[key] = manifests

    @api_retry
    async def _delete(self, kind: str, namespace: str, name: str) -> None:
        """Delete rollwise's ``kind`` (Deployment or Secret) of that name; never another's."""
        from lightkube import ApiError

        labels = await self._labels(kind, namespace, name)
        if labels is None or not owned(labels):
            return
        try:
            await self.client.delete(_resource(kind), name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise

    async def _labels(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        """The labels of that Deployment or Secret (``None``: there is none)."""
        from lightkube import ApiError

        try:
            found = await self.client.get(_resource(kind), name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise
        return dict(found.metadata.labels or {}) if found.metadata else {}
