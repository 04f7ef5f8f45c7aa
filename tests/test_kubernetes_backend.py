"""The Kubernetes backend against the fake API server, over real HTTP: revisions become
labelled Deployments, scale by apply, report readiness from a pod watch (no polling), are
stopped by deletion, adopted by label after a restart, and never touch what is not theirs;
the pod watch lists again after 410 Gone and keeps its version with bookmarks."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from rollwise.backends.base import Workload
from rollwise.backends.kubernetes import KubernetesBackend
from rollwise.dashboard.pages import log_lines
from rollwise.kubernetes.connection import ClusterAccess, connect, http_client
from rollwise.kubernetes.recorder import PENDING, WAITING, EventRecorder
from rollwise.kubernetes.watch import Reflector
from rollwise.spec import parse_spec
from rollwise.spec.models import Rollout
from rollwise.words import EventKind

from .helpers import EXAMPLES
from .kube.apiserver import FakeApiServer

pytestmark = pytest.mark.anyio
DEPLOYMENTS = "/apis/apps/v1/namespaces/agents/deployments"
PODS = "/api/v1/namespaces/agents/pods"
SECRETS = "/api/v1/namespaces/agents/secrets"


@pytest.fixture
def rollout() -> Rollout:
    return parse_spec((EXAMPLES / "kubernetes" / "rollwise.yaml").read_text())


class Running:
    """A backend with its loop running, and what it told the controller."""

    def __init__(self, access: ClusterAccess) -> None:
        self.changes: list[tuple[str, int]] = []
        self.events: list[tuple[str, int, EventKind, str]] = []
        self.backend = KubernetesBackend(
            connect(access),
            http_client(access),
            on_event=lambda *event: self.events.append(event),
            on_change=lambda app, rev: self.changes.append((app, rev)),
        )
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> KubernetesBackend:
        self.task = asyncio.ensure_future(self.backend.run())
        return self.backend

    async def __aexit__(self, *_: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.backend.aclose()


@pytest.fixture
def access(api: FakeApiServer, tmp_path: Path) -> ClusterAccess:
    return ClusterAccess(api.kubeconfig(tmp_path / "kubeconfig", "agents"), namespace="agents")


def workload(rollout: Rollout, revision: int, version: str) -> Workload:
    return Workload(rollout.name, revision, version, rollout.spec.template, ".", (), rollout)


async def revision_one(backend: KubernetesBackend, rollout: Rollout, replicas: int) -> None:
    """Revision 1 (1.0.0) of ``rollout`` running with ``replicas`` ready pods."""
    backend.ensure(workload(rollout, 1, "1.0.0"), replicas)
    await until(lambda: backend.health("sample-agent", 1).ready == replicas)


async def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll an in-process condition (the watch updates it) with a timeout."""
    async with asyncio.timeout(timeout):
        while not (value := check()):
            await asyncio.sleep(0.02)
    return value


def get(api: FakeApiServer, path: str) -> dict[str, Any]:
    body = httpx.get(api.url + path).json()
    assert isinstance(body, dict)
    return body


async def test_a_revision_becomes_a_labelled_deployment_that_scales_and_stops(
    api: FakeApiServer, access: ClusterAccess, rollout: Rollout
) -> None:
    running = Running(access)
    async with running as backend:
        await revision_one(backend, rollout, 2)
        made = get(api, f"{DEPLOYMENTS}/sample-agent-r1")
        labels = made["metadata"]["labels"]
        assert labels["rollwise.dev/revision"] == "1"
        assert labels["app.kubernetes.io/managed-by"] == "rollwise"
        assert made["spec"]["replicas"] == 2
        assert made["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.0.0")
        addresses = backend.addresses("sample-agent", 1)
        assert len(addresses) == 2 and all(a.endswith(":8080") for a in addresses)
        assert ("sample-agent", 1) in running.changes  # told, not asked
        assert backend.owner(addresses[0]) == ("sample-agent", 1)

        backend.ensure(workload(rollout, 1, "1.0.0"), 3)  # setCanaryScale, replicas: an apply
        await until(lambda: backend.health("sample-agent", 1).ready == 3)
        assert get(api, f"{DEPLOYMENTS}/sample-agent-r1")["spec"]["replicas"] == 3

        pod = sorted(p["metadata"]["name"] for p in get(api, PODS)["items"])[0]
        api.state.set_pod_ready("agents", pod, False)  # its readiness probe fails
        await until(lambda: backend.health("sample-agent", 1).ready == 2)
        health = backend.health("sample-agent", 1)
        assert health.desired == 3 and health.running == 3

        await backend.stop("sample-agent", 1)
        assert httpx.get(api.url + f"{DEPLOYMENTS}/sample-agent-r1").status_code == 404
        await until(lambda: not backend.health("sample-agent", 1).replicas)
        assert backend.health("sample-agent", 1) == backend.health("sample-agent", 1).none()


async def test_an_object_that_is_not_rollwises_is_never_modified(
    api: FakeApiServer, access: ClusterAccess, rollout: Rollout
) -> None:
    from rollwise.kubernetes.objects import revision_deployment

    theirs = revision_deployment(rollout, 1, "0.9.0", 1)
    theirs["metadata"]["labels"] = {"team": "payments"}  # same name, someone else's
    assert httpx.post(api.url + DEPLOYMENTS, json=theirs).status_code == 201
    before = get(api, f"{DEPLOYMENTS}/sample-agent-r1")
    running = Running(access)
    async with running as backend:
        backend.ensure(workload(rollout, 1, "1.0.0"), 2)
        event = await until(lambda: running.events)
        assert event[0][2] is EventKind.OBJECT_NOT_OURS
        assert "agents/sample-agent-r1 exists and is not rollwise's" in event[0][3]
        await backend.stop("sample-agent", 1)
    after = get(api, f"{DEPLOYMENTS}/sample-agent-r1")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_a_restarted_backend_adopts_its_revisions_by_label_and_stops_orphans(
    api: FakeApiServer, access: ClusterAccess, rollout: Rollout
) -> None:
    async with Running(access) as first:
        first.ensure(workload(rollout, 1, "1.0.0"), 2)
        first.ensure(workload(rollout, 2, "1.1.0"), 1)
        await until(lambda: first.health("sample-agent", 2).ready == 1)
    # the controller restarts: revision 2 was aborted meanwhile, 1 still runs
    running = Running(access)
    async with running as second:
        adopted = await second.adopt({("sample-agent", 1): workload(rollout, 1, "1.0.0")})
        assert adopted == 2 and second.health("sample-agent", 1).ready == 2  # known at once
        assert httpx.get(api.url + f"{DEPLOYMENTS}/sample-agent-r2").status_code == 404
        before = get(api, f"{DEPLOYMENTS}/sample-agent-r1")["metadata"]["generation"]
        await until(lambda: ("sample-agent", 1) in second.applied)  # its apply went out
        assert get(api, f"{DEPLOYMENTS}/sample-agent-r1")["metadata"]["generation"] == before


async def test_a_revisions_secret_environment_is_its_own_secret_applied_first_and_deleted_with_it(
    api: FakeApiServer, access: ClusterAccess, rollout: Rollout
) -> None:
    env = {**rollout.spec.template.env, "API_TOKEN": "s3cret", "DB_PASSWORD": "hunter2"}
    template = rollout.spec.template.model_copy(update={"env": env})
    rollout = rollout.model_copy(
        update={"spec": rollout.spec.model_copy(update={"template": template})}
    )
    theirs = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sample-agent-r3-env"}}
    assert httpx.post(api.url + SECRETS, json={**theirs, "data": {}}).status_code == 201
    running = Running(access)
    async with running as backend:
        backend.ensure(workload(rollout, 1, "1.0.0"), 1)
        backend.ensure(workload(rollout, 2, "1.1.0"), 1)
        await until(lambda: backend.health("sample-agent", 2).ready == 1)
        secret = get(api, f"{SECRETS}/sample-agent-r1-env")
        assert secret["metadata"]["labels"]["rollwise.dev/revision"] == "1"
        assert base64.b64decode(secret["data"]["API_TOKEN"]) == b"s3cret"
        assert set(secret["data"]) == {"API_TOKEN", "DB_PASSWORD"}
        # the Secret went out before the Deployment whose pods read it
        writes = [p for m, p, _ in api.state.requests if m == "PATCH" and "sample-agent-r1" in p]
        assert writes[0].startswith(SECRETS) and writes[1].startswith(DEPLOYMENTS)
        made = get(api, f"{DEPLOYMENTS}/sample-agent-r2")
        env_of = {e["name"]: e for e in made["spec"]["template"]["spec"]["containers"][0]["env"]}
        ref = env_of["DB_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "sample-agent-r2-env", "key": "DB_PASSWORD"}
        assert "hunter2" not in json.dumps(made)

        await backend.stop("sample-agent", 2)  # aborted: its Secret goes with it
        assert httpx.get(api.url + f"{SECRETS}/sample-agent-r2-env").status_code == 404
        backend.ensure(workload(rollout, 3, "1.2.0"), 1)  # a Secret of that name is not ours
        event = await until(lambda: running.events)
        assert event[0][2] is EventKind.OBJECT_NOT_OURS
        assert "Secret agents/sample-agent-r3-env exists and is not rollwise's" in event[0][3]
        assert httpx.get(api.url + f"{DEPLOYMENTS}/sample-agent-r3").status_code == 404
    async with Running(access) as second:  # restarted, with revision 1 no longer running
        await second.adopt({("sample-agent", 2): workload(rollout, 2, "1.1.0")})
        assert httpx.get(api.url + f"{SECRETS}/sample-agent-r1-env").status_code == 404
    assert get(api, f"{SECRETS}/sample-agent-r3-env")["data"] == {}  # theirs, untouched


async def test_a_secret_ref_names_the_teams_secret_and_a_missing_one_says_why_pods_wait(
    api: FakeApiServer, access: ClusterAccess, rollout: Rollout
) -> None:
    spec = rollout.model_dump(by_alias=True)
    spec["spec"]["template"]["secretRefs"] = {"API_TOKEN": {"secret": "team-api", "key": "token"}}
    rollout = Rollout.model_validate(spec)
    async with Running(access) as backend:
        backend.ensure(workload(rollout, 1, "1.0.0"), 1)
        health = await until(lambda: (h := backend.health("sample-agent", 1)).stuck() and h)
        (pod,) = [p["metadata"]["name"] for p in get(api, PODS)["items"]]
        assert health.ready == 0
        assert health.stuck() == (
            f'pod {pod}: CreateContainerConfigError: secret "team-api" not found'
        )
        made = get(api, f"{DEPLOYMENTS}/sample-agent-r1")
        env_of = {e["name"]: e for e in made["spec"]["template"]["spec"]["containers"][0]["env"]}
        ref = env_of["API_TOKEN"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "team-api", "key": "token"}
        assert httpx.get(api.url + f"{SECRETS}/sample-agent-r1-env").status_code == 404
        (told,) = await backend.pod_logs("sample-agent", 1, 10, {})
        assert told == (
            pod,
            1,
            [
                (
                    "",
                    f'(pod agents/{pod}: its log: container "sample-agent" '
                    f'in pod "{pod}" is waiting to start: CreateContainerConfigError)',
                )
            ],
        )
        # the team creates its Secret: the kubelet starts the pod, rollwise sees it ready
        theirs = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "team-api"}}
        answer = httpx.post(api.url + SECRETS, json={**theirs, "stringData": {"token": "t0k3n!"}})
        assert answer.status_code == 201
        await until(lambda: backend.health("sample-agent", 1).ready == 1)
        assert backend.health("sample-agent", 1).stuck() == ""
        await backend.stop("sample-agent", 1)
    assert get(api, f"{SECRETS}/team-api")["metadata"].get("labels") is None  # never ours


async def test_a_crash_loop_is_told_with_the_crashed_containers_last_lines(
    api: FakeApiServer, access: ClusterAccess, rollout: Rollout
) -> None:
    running = Running(access)
    async with running as backend:
        await revision_one(backend, rollout, 1)
        (pod,) = [p["metadata"]["name"] for p in get(api, PODS)["items"]]
        output = [f"line {n}" for n in range(15)] + ["boom: API_TOKEN is not set"]
        api.state.crash_pod("agents", pod, 3, output)
        health = await until(lambda: (h := backend.health("sample-agent", 1)).crash_loop and h)
        assert health.last_logs == tuple(output[-10:])  # kubectl logs --previous --tail=10
        (replica,) = health.replicas
        assert (replica.state, replica.last_exit, replica.restarts) == ("crashed", 3, 1)
        asked = [p for m, p, _ in api.state.requests if p.endswith(f"/pods/{pod}/log")]
        assert asked and ("sample-agent", 1) in running.changes


async def test_pod_logs_are_the_last_lines_then_those_after_the_newest_stamp_seen(
    api: FakeApiServer, access: ClusterAccess, rollout: Rollout
) -> None:
    async with Running(access) as backend:
        await revision_one(backend, rollout, 2)
        first, second = sorted(p["metadata"]["name"] for p in get(api, PODS)["items"])
        api.state.write_log("agents", first, "one", "two", "three")
        found = {
            pod: (rev, lines)
            for pod, rev, lines in await backend.pod_logs("sample-agent", None, 2, {})
        }
        assert [line for _, line in found[first][1]] == ["two", "three"]
        assert found[second] == (1, [])
        newest = found[first][1][-1][0]
        api.state.write_log("agents", first, "four")
        (after,) = [
            lines
            for pod, _, lines in await backend.pod_logs("sample-agent", 1, 2, {first: newest})
            if pod == first
        ]
        assert [line for _, line in after] == ["four"]  # "three", same second, not again
        assert await backend.pod_logs("sample-agent", 2, 2, {}) == []


async def test_the_dashboard_follows_a_pods_log_showing_each_line_once(
    api: FakeApiServer, access: ClusterAccess, rollout: Rollout
) -> None:
    async with Running(access) as backend:
        await revision_one(backend, rollout, 1)
        (pod,) = [p["metadata"]["name"] for p in get(api, PODS)["items"]]
        api.state.write_log("agents", pod, "started", "ready")
        controller: Any = SimpleNamespace(backend=backend)  # all the page reads of it
        offsets: dict[str, int] = {}
        since: dict[str, str] = {}
        shown = await log_lines(controller, "sample-agent", 1, offsets, since)
        assert shown == [f"[{pod}] started", f"[{pod}] ready"]
        api.state.write_log("agents", pod, "GET / 200")
        assert await log_lines(controller, "sample-agent", 1, offsets, since) == [
            f"[{pod}] GET / 200"
        ]
        assert await log_lines(controller, "sample-agent", 1, offsets, since) == []


async def test_events_wait_for_their_deployment_and_are_bounded_meanwhile(
    api: FakeApiServer, access: ClusterAccess
) -> None:
    http = http_client(access)
    recorder = EventRecorder(http)
    for revision in range(2, WAITING + 3):  # more revisions waiting than are kept
        recorder.tell(("web", revision), "RolloutStarted", "waiting")
    for n in range(PENDING + 5):  # more events than one revision keeps
        recorder.tell(("web", 1), "RolloutStarted", f"event {n}")
    assert get(api, "/api/v1/namespaces/agents/events")["items"] == []
    recorder.regard(("web", 1), "agents", "web-r1", "uid-1")
    recorder.regard(("web", 2), "agents", "web-r2", "uid-2")  # dropped: the oldest waiting
    recorder.tell(("web", 1), "RolloutCompleted", "done")
    try:
        written = await until(
            lambda: (
                (items := get(api, "/api/v1/namespaces/agents/events")["items"])
                and len(items) == PENDING + 1
                and items
            )
        )
    finally:
        await recorder.aclose()
        await http.aclose()
    assert {e["involvedObject"]["name"] for e in written} == {"web-r1"}
    assert written[0]["involvedObject"]["uid"] == "uid-1"


async def test_the_pod_watch_moves_on_with_bookmarks_and_lists_again_after_410(
    api: FakeApiServer, access: ClusterAccess, rollout: Rollout
) -> None:
    async with Running(access) as backend:
        await revision_one(backend, rollout, 2)
    seen: list[tuple[str, str]] = []
    http = http_client(access)
    reflector = Reflector(
        http,
        PODS,
        "app.kubernetes.io/managed-by=rollwise",
        lambda kind, pod: seen.append((kind, pod["metadata"]["name"])),
    )
    task = asyncio.ensure_future(reflector.run())
    try:
        await until(reflector.synced.is_set)
        assert len(reflector.objects) == 2 and reflector.lists == 1
        version = int(reflector.version)
        lease(api, "a")  # no pod changes: the watch's version moves on by a bookmark
        await until(lambda: int(reflector.version) > version, timeout=5)

        task.cancel()  # the watch is cut; meanwhile the server compacts its history
        with contextlib.suppress(asyncio.CancelledError):
            await task
        lease(api, "b")
        api.state.compact()
        pod = sorted(reflector.objects)[0].split("/")[1]
        api.state.set_pod_ready("agents", pod, False)
        seen.clear()
        task = asyncio.ensure_future(reflector.run())  # resumes at its version: 410 Gone
        await until(lambda: ("MODIFIED", pod) in seen)
        assert reflector.lists == 2  # listed again, and told the difference as an event
        assert reflector.objects[f"agents/{pod}"]["status"]["conditions"][0]["status"] != "True"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await http.aclose()


def lease(api: FakeApiServer, name: str) -> None:
    """Some other object changes (the resourceVersion moves on)."""
    made = httpx.post(
        api.url + "/apis/coordination.k8s.io/v1/namespaces/agents/leases",
        json={
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name},
            "spec": {},
        },
    )
    assert made.status_code == 201, made.text


async def test_an_overloaded_or_failing_api_is_retried_as_it_asks(
    api: FakeApiServer, access: ClusterAccess, rollout: Rollout
) -> None:
    api.state.faults = [(429, "1"), (503, None)]  # the next two writes are refused
    async with Running(access) as backend:
        started = asyncio.get_running_loop().time()
        await revision_one(backend, rollout, 1)
        took = asyncio.get_running_loop().time() - started
    assert api.state.faults == []
    assert took >= 1.0  # Retry-After: 1 was waited, not hammered
    refused = [m for m, path, _ in api.state.requests if m == "PATCH" and "deployments" in path]
    assert len(refused) >= 2  # the apply was sent again after each refusal
