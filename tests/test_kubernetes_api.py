"""The fake Kubernetes API server (tests/kube/) kept honest: real ``kubectl`` applies the
rendered manifests to it, reads them back, scales and waits for a rollout; and the REST
protocol rollwise relies on (resourceVersion conflicts, label selectors, patches, watches with
bookmarks and 410 Gone, ``/scale``, Leases, strict field validation) answers as a real API
server does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from rollwise.backends.ports import free_port

from .helpers import EXAMPLES, Dependency, rollwise, wait_for
from .kube.apiserver import FakeApiServer

KUBECTL = shutil.which("kubectl")
DEPLOYMENTS = "/apis/apps/v1/namespaces/agents/deployments"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/agents/leases"


def kubectl(api: FakeApiServer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(api.kubeconfig(tmp_path / "kubeconfig", "agents"))}
    env["HOME"] = str(tmp_path)  # kubectl's discovery cache stays in the test's directory
    assert KUBECTL is not None
    return subprocess.run(
        [KUBECTL, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@pytest.mark.skipif(KUBECTL is None, reason="needs kubectl (Debian's kubernetes-client)")
def test_kubectl_applies_reads_scales_and_waits_on_the_rendered_manifests(
    api: FakeApiServer, tmp_path: Path
) -> None:
    manifests = tmp_path / "manifests"
    example = EXAMPLES / "kubernetes" / "rollwise.yaml"
    rollwise("render", "-f", str(example), "--version", "1.2.0", "-o", str(manifests))

    def ok(*args: str) -> str:
        done = kubectl(api, tmp_path, *args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    # no OpenAPI is served: kubectl's own schema check is off, the server checks strictly
    dry = ok("apply", "--dry-run=client", "--validate=false", "-f", str(manifests))
    assert (
        dry.count("(dry run)") == 10 and "httproute.gateway.networking.k8s.io/sample-agent" in dry
    )
    assert not api.state.objects
    assert ok("apply", "--validate=false", "-f", str(manifests)).count(" created") == 10
    assert ok("get", "deployments", "-o", "name").split() == [
        "deployment.apps/rollwise-controller",
        "deployment.apps/sample-agent-r1",
    ]
    pods = ok("get", "pods", "-l", "rollwise.dev/revision=1", "-o", "name").split()
    assert len(pods) == 2
    ready = "jsonpath={.status.readyReplicas}"
    assert ok("get", "deployment/sample-agent-r1", "-o", ready) == "2"
    assert ok("scale", "deployment/sample-agent-r1", "--replicas=3")  # the /scale subresource
    assert ok("rollout", "status", "deployment/sample-agent-r1", "--timeout=20s").startswith(
        'deployment "sample-agent-r1" successfully rolled out'
    )
    assert ok("get", "deployment/sample-agent-r1", "-o", ready) == "3"
    # apply again: a strategic merge patch back to the rendered 2 replicas, the rest unchanged
    again = ok("apply", "--validate=false", "-f", str(manifests))
    assert "deployment.apps/sample-agent-r1 configured" in again and again.count("unchanged") == 9
    assert ok("get", "deployment/sample-agent-r1", "-o", ready) == "2"
    # the proxy subresources, as kubectl reads them: an answer, and a dial refused
    pod = ok("get", "pods", "-l", "rollwise.dev/revision=1", "-o", "name").split()[0]
    proxy = f"/api/v1/namespaces/agents/{pod.replace('pod/', 'pods/')}:8080/proxy/healthz"
    refused = kubectl(api, tmp_path, "get", "--raw", proxy)
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        "Error from server (ServiceUnavailable): error trying to reach"
    )
    name = pod.removeprefix("pod/")
    api.state.crash_pod("agents", name, 2, ["starting", "boom"])
    assert ok("logs", name, "--previous", "--tail=1") == "boom\n"
    assert ok("get", pod, "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason}") == (
        "CrashLoopBackOff"
    )
    with Dependency(failing=False) as container:
        api.containers["ghcr.io/example/sample-agent:1.2.0"] = container.url[7:].rstrip("/")
        assert ok("get", "--raw", proxy) == "ok" and container.hits == 1
        service = "/api/v1/namespaces/agents/services/sample-agent-stable:80/proxy/"
        assert ok("get", "--raw", service) == "ok" and container.hits == 2
    assert (
        ok("apply", "--server-side", "--validate=false", "-f", str(manifests)).count(
            "serverside-applied"
        )
        == 10
    )
    weights = "jsonpath={.spec.rules[0].backendRefs[*].weight}"
    assert ok("get", "httproute/sample-agent", "-o", weights) == "100 0"
    used = {(method, kind) for method, _, kind in api.state.requests}
    assert ("PATCH", "application/strategic-merge-patch+json") in used
    assert ("PATCH", "application/apply-patch+yaml") in used
    # a wrong field is refused by the server, with its path, as a real one does
    broken = manifests / "sample-agent.yaml"
    broken.write_text(broken.read_text().replace("revisionHistoryLimit", "revisionHistoryLimt"))
    refused = kubectl(api, tmp_path, "apply", "--validate=false", "-f", str(broken))
    assert refused.returncode == 1 and "'revisionHistoryLimt' was unexpected" in refused.stderr
    ok("delete", "-f", str(manifests / "rollwise-controller.yaml"))
    assert ok("get", "deployments", "-o", "name").split() == ["deployment.apps/sample-agent-r1"]


@pytest.mark.skipif(KUBECTL is None, reason="needs kubectl (Debian's kubernetes-client)")
def test_kubectl_applies_and_reads_the_ingress_nginx_objects(
    api: FakeApiServer, tmp_path: Path
) -> None:
    spec = tmp_path / "rollwise.yaml"
    example = (EXAMPLES / "kubernetes" / "rollwise.yaml").read_text()
    spec.write_text(example.replace("router: gatewayAPI", "router: ingressNginx"))
    manifests = tmp_path / "manifests"
    rollwise(
        "render", "-f", str(spec), "--version", "1.0.0", "--no-controller", "-o", str(manifests)
    )
    done = kubectl(api, tmp_path, "apply", "--validate=false", "-f", str(manifests))
    assert done.returncode == 0, done.stderr
    assert "ingress.networking.k8s.io/sample-agent-canary created" in done.stdout
    weight = "jsonpath={.metadata.annotations.nginx\\.ingress\\.kubernetes\\.io/canary-weight}"
    read = kubectl(api, tmp_path, "get", "ingress", "sample-agent-canary", "-o", weight)
    assert (read.returncode, read.stdout) == (0, "0"), read.stderr


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    pod = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    spec = {"replicas": replicas, "selector": {"matchLabels": labels}, "template": pod}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def test_resource_versions_patches_selectors_scale_and_leases(api: FakeApiServer) -> None:
    with httpx.Client(base_url=api.url, timeout=10) as http:
        created = http.post(DEPLOYMENTS, json=deployment("a")).json()
        assert created["metadata"]["generation"] == 1 and created["metadata"]["uid"]
        again = http.post(DEPLOYMENTS, json=deployment("a"))
        assert again.status_code == 409 and again.json()["reason"] == "AlreadyExists"
        kindless = http.post(DEPLOYMENTS, json={"metadata": {"name": "c"}, "spec": {}})
        assert kindless.status_code == 400 and "Object 'Kind' is missing" in kindless.text
        http.post(
            DEPLOYMENTS, json=deployment("b") | {"metadata": {"name": "b", "labels": {"t": "x"}}}
        )

        # an update with a stale resourceVersion is a conflict; with the current one it lands
        current = http.get(f"{DEPLOYMENTS}/a").json()
        stale = dict(current, metadata={**current["metadata"], "resourceVersion": "1"})
        conflict = http.put(f"{DEPLOYMENTS}/a", json=stale)
        assert conflict.status_code == 409 and conflict.json()["reason"] == "Conflict"
        current["spec"]["replicas"] = 2
        updated = http.put(f"{DEPLOYMENTS}/a", json=current).json()
        assert updated["metadata"]["generation"] == 2
        assert int(updated["metadata"]["resourceVersion"]) > int(
            current["metadata"]["resourceVersion"]
        )

        patch = {"metadata": {"labels": {"t": "y"}}}
        merged = http.patch(
            f"{DEPLOYMENTS}/a", json=patch, headers={"content-type": "application/merge-patch+json"}
        ).json()
        assert merged["metadata"]["labels"] == {"t": "y"} and merged["spec"]["replicas"] == 2
        listed = http.get(DEPLOYMENTS, params={"labelSelector": "t in (x,z)"}).json()
        assert listed["kind"] == "DeploymentList" and [
            i["metadata"]["name"] for i in listed["items"]
        ] == ["b"]
        assert [
            i["metadata"]["name"]
            for i in http.get(DEPLOYMENTS, params={"labelSelector": "!t"}).json()["items"]
        ] == []

        scale = http.get(f"{DEPLOYMENTS}/a/scale").json()
        assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2
        scale["spec"]["replicas"] = 3
        assert http.put(f"{DEPLOYMENTS}/a/scale", json=scale).json()["spec"]["replicas"] == 3
        late = http.put(f"{DEPLOYMENTS}/a/scale", json=scale)  # the same version again
        assert late.status_code == 409
        status = http.get(f"{DEPLOYMENTS}/a").json()["status"]
        assert status["readyReplicas"] == 3 and status["observedGeneration"] == 3

        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "rollwise-controller"},
            "spec": {"holderIdentity": "one", "leaseDurationSeconds": 15},
        }
        held = http.post(LEASES, json=lease).json()
        taken = dict(held, spec={**held["spec"], "holderIdentity": "two"})
        assert http.put(f"{LEASES}/rollwise-controller", json=taken).status_code == 200
        lost = dict(held, spec={**held["spec"], "holderIdentity": "three"})
        assert http.put(f"{LEASES}/rollwise-controller", json=lost).status_code == 409

        wrong = http.post(DEPLOYMENTS, json=deployment("c") | {"spek": {}})
        assert wrong.status_code == 422 and "'spek' was unexpected" in wrong.json()["message"]
        missing = http.get(f"{DEPLOYMENTS}/nope")
        assert missing.status_code == 404 and missing.json()["kind"] == "Status"
        assert (
            http.post(
                DEPLOYMENTS,
                content=b"\x00",
                headers={"content-type": "application/vnd.kubernetes.protobuf"},
            ).status_code
            == 415
        )


def test_watches_send_events_bookmarks_and_410_after_compaction(api: FakeApiServer) -> None:
    with httpx.Client(base_url=api.url, timeout=10) as http:
        http.post(DEPLOYMENTS, json=deployment("a"))
        since = http.get(DEPLOYMENTS).json()["metadata"]["resourceVersion"]
        events: list[dict[str, Any]] = []
        params = {
            "watch": "1",
            "resourceVersion": since,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "5",
        }
        with http.stream("GET", DEPLOYMENTS, params=params) as stream:
            http.patch(
                f"{DEPLOYMENTS}/a",
                json={"spec": {"replicas": 2}},
                headers={"content-type": "application/strategic-merge-patch+json"},
            )
            http.delete(f"{DEPLOYMENTS}/a")
            for line in stream.iter_lines():
                events.append(json.loads(line))
                if events[-1]["type"] == "BOOKMARK":
                    break
        types = [e["type"] for e in events]
        assert types[0] == "MODIFIED" and "DELETED" in types and types[-1] == "BOOKMARK"
        assert events[0]["object"]["spec"]["replicas"] == 2
        newest = events[-1]["object"]["metadata"]["resourceVersion"]
        assert int(newest) >= max(int(e["object"]["metadata"]["resourceVersion"]) for e in events)

        # the history is compacted: an old version must re-list (410 Expired)
        api.state.compact()
        with http.stream(
            "GET", DEPLOYMENTS, params={"watch": "1", "resourceVersion": since}
        ) as stream:
            first = json.loads(next(stream.iter_lines()))
        assert first["type"] == "ERROR" and first["object"]["code"] == 410
        assert first["object"]["reason"] == "Expired"

        # a watch without a version starts with the objects there are, as ADDED
        http.post(DEPLOYMENTS, json=deployment("b"))
        with http.stream(
            "GET", DEPLOYMENTS, params={"watch": "1", "timeoutSeconds": "2"}
        ) as stream:
            first = json.loads(next(stream.iter_lines()))
        assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "b"

        # a pod that stops being ready shows in its Deployment's status
        pod = http.get("/api/v1/namespaces/agents/pods", params={"labelSelector": "app=b"}).json()
        name = pod["items"][0]["metadata"]["name"]
        api.state.set_pod_ready("agents", name, False)
        wait_for(lambda: http.get(f"{DEPLOYMENTS}/b").json()["status"]["readyReplicas"] == 0)


def test_doctor_asks_the_cluster_what_this_identity_may_do(
    api: FakeApiServer, tmp_path: Path
) -> None:
    config = str(api.kubeconfig(tmp_path / "kubeconfig", "agents"))
    state = tmp_path / "state"

    def doctor() -> tuple[int, dict[str, dict[str, str]]]:
        done = rollwise(
            "doctor", "-o", "json", "-n", "agents", "--kubeconfig", config,
            state_dir=state, check=False,
        )  # fmt: skip
        return done.returncode, {f["check"]: f for f in json.loads(done.stdout)}

    code, found = doctor()
    assert code == 0 and found["cluster"]["state"] == "ok", found
    assert "v1.37.0-fake" in found["cluster"]["detail"]
    assert found["permissions"]["state"] == "ok" and "pod access" not in found
    reviews = [p for m, p, _ in api.state.requests if p.endswith("selfsubjectaccessreviews")]
    assert len(reviews) > 40  # each verb on each resource of the Role, and the proxies
    assert found["metrics"]["state"] == "ok"

    api.state.absent.add("metrics.k8s.io")  # no metrics-server
    code, found = doctor()
    assert code == 0 and found["metrics"]["state"] == "warn"
    assert found["metrics"]["detail"].startswith("the metrics API answered 404")
    assert found["metrics"]["fix"].startswith("install metrics-server")

    api.state.denied |= {("create", "", "secrets"), ("get", "", "pods/log")}
    api.state.denied |= {("create", "", "pods/proxy")}
    code, found = doctor()
    assert code == 1 and found["permissions"]["state"] == "fail"
    assert found["permissions"]["detail"].endswith("may not: create secrets, get pods/log")
    assert "--role=rollwise-controller" in found["permissions"]["fix"]
    assert found["pod access"]["state"] == "warn"
    assert found["pod access"]["detail"].endswith("may not: create pods/proxy")

    closed = tmp_path / "closed"
    closed.write_text(Path(config).read_text().replace(api.url, f"http://127.0.0.1:{free_port()}"))
    done = rollwise(
        "doctor", "-o", "json", "-n", "agents", "--kubeconfig", str(closed),
        state_dir=state, check=False,
    )  # fmt: skip
    (cluster,) = [f for f in json.loads(done.stdout) if f["check"] == "cluster"]
    assert done.returncode == 1 and cluster["state"] == "fail"
    assert cluster["detail"].startswith("the API server cannot be asked: ")
    assert "Traceback" not in done.stderr
