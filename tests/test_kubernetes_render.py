"""``rollwise render``: the Kubernetes objects of a revision, valid against the official
schemas of a current Kubernetes (and the vendored Gateway API schema), consistent with each
other (selectors, Services, the route's weights), refused with one line when a spec lacks
what a cluster needs; ``rollwise describe`` / ``export`` of a stored revision; the mission's
``DeploymentConfig`` and ``ManifestWriter``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollwise.errors import ManifestError, SpecError
from rollwise.kubernetes.names import APP_LABEL, REVISION_LABEL
from rollwise.kubernetes.objects import http_route, revision_deployment
from rollwise.kubernetes.validation import problems, validate_objects
from rollwise.spec import parse_spec
from rollwise.spec.models import HeaderMatch, SetHeaderRoute
from rollwise.toolkit import DeploymentConfig, ExtensionConfig, ExtensionRegistry, ManifestWriter

from .conftest import Cluster
from .helpers import EXAMPLES, assert_spec_refused, rollwise

K8S_EXAMPLE = EXAMPLES / "kubernetes" / "rollwise.yaml"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def by_name(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in objects}


def test_the_example_renders_valid_consistent_objects(tmp_path: Path) -> None:
    done = rollwise("render", "-f", str(K8S_EXAMPLE), "--version", "1.2.0", "-o", str(tmp_path))
    assert f"{tmp_path / 'sample-agent.yaml'}: 4 objects" in done.stdout
    app = by_name(documents(tmp_path / "sample-agent.yaml"))
    controller = by_name(documents(tmp_path / "rollwise-controller.yaml"))
    assert sorted(app) == [
        "Deployment/sample-agent-r1",
        "HTTPRoute/sample-agent",
        "Service/sample-agent-canary",
        "Service/sample-agent-stable",
    ]
    assert sorted(controller) == [
        "Deployment/rollwise-controller",
        "Lease/rollwise-controller",
        "PersistentVolumeClaim/rollwise-controller-state",
        "Role/rollwise-controller",
        "RoleBinding/rollwise-controller",
        "ServiceAccount/rollwise-controller",
    ]
    for obj in [*app.values(), *controller.values()]:
        assert problems(obj) == [], obj
        assert obj["metadata"]["namespace"] == "agents"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "rollwise"

    deployment = app["Deployment/sample-agent-r1"]
    pod = deployment["spec"]["template"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == {APP_LABEL: "sample-agent", REVISION_LABEL: "1"}
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert deployment["spec"]["replicas"] == 2
    container = pod["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/example/sample-agent:1.2.0"
    assert container["command"][-2:] == ["--port", "8080"]  # {port}: the container port
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["resources"]["limits"] == {"memory": "256Mi"}
    env = {e["name"]: e for e in container["env"]}
    assert env["AGENT_VERSION"]["value"] == "1.2.0"
    assert env["ROLLWISE_REPLICA"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    for role in ("stable", "canary"):  # no canary yet: both on revision 1
        service = app[f"Service/sample-agent-{role}"]
        assert service["spec"]["selector"] == selector
        assert service["spec"]["ports"][0]["targetPort"] == "http"

    route = app["HTTPRoute/sample-agent"]["spec"]
    assert route["parentRefs"][0]["name"] == "public"
    assert route["hostnames"] == ["sample-agent.example.com"]
    refs = {r["name"]: r["weight"] for r in route["rules"][-1]["backendRefs"]}
    assert refs == {"sample-agent-stable": 100, "sample-agent-canary": 0}

    rules = controller["Role/rollwise-controller"]["rules"]
    granted = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    for needed in [
        ("apps", "deployments/scale"),
        ("gateway.networking.k8s.io", "httproutes"),
        ("coordination.k8s.io", "leases"),
        ("", "pods"),
    ]:
        assert needed in granted
    binding = controller["RoleBinding/rollwise-controller"]
    assert binding["subjects"][0]["name"] == "rollwise-controller"
    pod_spec = controller["Deployment/rollwise-controller"]["spec"]["template"]["spec"]
    assert pod_spec["serviceAccountName"] == "rollwise-controller"
    assert pod_spec["containers"][0]["command"][:2] == ["rollwise", "up"]
    command = pod_spec["containers"][0]["command"]
    assert "--leader-elect" in command  # the Lease is used
    assert command[command.index("--backend") + 1] == "kubernetes"
    assert command[command.index("--metrics-host") + 1] == "0.0.0.0"  # scraped in the cluster


def test_a_canary_route_with_header_routes_and_secrets_from_a_secret(tmp_path: Path) -> None:
    text = (
        K8S_EXAMPLE.read_text()
        .replace("      AGENT_VERSION:", "      API_TOKEN: s3cret\n      AGENT_VERSION:")
        .replace(
            "    resources:",
            "    secretRefs: {DB_PASSWORD: {secret: team-db, key: password}}\n    resources:",
        )
    )
    spec = parse_spec(text)
    header = SetHeaderRoute(
        name="testers", match=[HeaderMatch(header_name="X-Canary", header_value="yes")]
    )
    route = http_route(spec, 30, [header])
    validate_objects([route])
    rules = route["spec"]["rules"]
    assert rules[0]["matches"][0]["headers"][0] == {
        "type": "Exact",
        "name": "X-Canary",
        "value": "yes",
    }
    assert [r["name"] for r in rules[0]["backendRefs"]] == ["sample-agent-canary"]
    assert [r["weight"] for r in rules[1]["backendRefs"]] == [70, 30]

    deployment = revision_deployment(spec, 3, "2.0.0", 1)
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["API_TOKEN"] == {
        "name": "API_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "sample-agent-r3-env", "key": "API_TOKEN"}},
    }
    assert "s3cret" not in json.dumps(deployment)
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "team-db", "key": "password"}

    spec_file = tmp_path / "rollwise.yaml"
    spec_file.write_text(text)
    done = rollwise("render", "-f", str(spec_file), "--version", "2.0.0", "--no-controller")
    assert "s3cret" not in done.stdout
    assert "kubectl create secret generic sample-agent-r1-env -n agents" in done.stderr
    assert "DB_PASSWORD from Secret team-db (key password)" in done.stderr
    assert [d["kind"] for d in yaml.safe_load_all(done.stdout)] == [
        "Deployment",
        "Service",
        "Service",
        "HTTPRoute",
    ]


def test_the_ingress_nginx_router_renders_two_valid_ingresses(tmp_path: Path) -> None:
    spec_file = tmp_path / "rollwise.yaml"
    spec_file.write_text(
        K8S_EXAMPLE.read_text().replace("router: gatewayAPI", "router: ingressNginx")
    )
    done = rollwise("render", "-f", str(spec_file), "--version", "1.0.0", "--no-controller")
    objects = list(yaml.safe_load_all(done.stdout))
    assert [o["kind"] for o in objects] == [
        "Deployment",
        "Service",
        "Service",
        "Ingress",
        "Ingress",
    ]
    stable, canary = objects[3:]
    assert stable["metadata"]["name"] == "sample-agent" and "annotations" not in stable["metadata"]
    assert canary["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary"] == "true"
    assert canary["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "0"
    backends = [o["spec"]["rules"][0]["http"]["paths"][0]["backend"] for o in (stable, canary)]
    assert [b["service"]["name"] for b in backends] == [
        "sample-agent-stable",
        "sample-agent-canary",
    ]
    validate_objects(objects)  # render validated them too: Kubernetes 1.37's Ingress schema
    installs = rollwise("render", "-f", str(spec_file), "--version", "1.0.0").stdout
    (role,) = [o for o in yaml.safe_load_all(installs) if o["kind"] == "Role"]
    assert {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"]} in [
        {k: r[k] for k in ("apiGroups", "resources")} for r in role["rules"]
    ]


def test_a_wrong_object_is_refused_with_its_field_path() -> None:
    route = http_route(parse_spec(K8S_EXAMPLE.read_text()), 10)
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 1_000_001
    deployment = revision_deployment(parse_spec(K8S_EXAMPLE.read_text()), 1, "1.0.0", 1)
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy2"] = "Always"
    with pytest.raises(ManifestError) as caught:
        validate_objects([route, deployment])
    message = str(caught.value)
    assert (
        "HTTPRoute/sample-agent (Gateway API v1.6.1): spec.rules[0].backendRefs[0].weight"
        in message
    )
    assert "Deployment/sample-agent-r1: spec.template.spec.containers[0]" in message
    assert "'imagePullPolicy2' was unexpected" in message


def test_a_spec_that_cannot_run_on_a_cluster_is_refused_with_how_to_fix_it(
    tmp_path: Path,
) -> None:
    assert_spec_refused(
        "  backend: ",
        {
            "{kind: kubernetes}": "spec.template.image is not set",
            "{kind: nomad}": "'local' or 'kubernetes'",
            "{kind: kubernetes, hostnames: [BAD_host]}": "'BAD_host' is not a host name",
            "{kind: kubernetes, namespace: Agents}": "'Agents' is not a valid namespace",
        },
    )
    example = K8S_EXAMPLE.read_text()
    for change, says in {
        (
            "    gateway: {name: public, namespace: gateways}\n",
            "",
        ): "spec.backend.gateway is not set",
        ("router: gatewayAPI", "router: service"): "only blue-green can use",
        ("cpu: 100m", "cpu: lots"): "'lots' is not a Kubernetes quantity",
        (
            "  smokeTests:",
            "  autoscaling: {minReplicas: 1, maxReplicas: 3, target: {inFlight: 5}}\n  smokeTests:",
        ): "spec.autoscaling.target scales a cluster app on cpu only",
    }.items():
        with pytest.raises(SpecError) as caught:
            parse_spec(example.replace(*change))
        assert says in str(caught.value)
    scaled = example.replace(
        "  smokeTests:", "  autoscaling: {maxReplicas: 3, target: {cpu: 50%}}\n  smokeTests:"
    )
    assert parse_spec(scaled).spec.autoscaling is not None  # cpu, with a CPU request
    with pytest.raises(SpecError) as caught:
        parse_spec(scaled.replace("requests: {cpu: 100m, memory: 128Mi}", "requests: {}"))
    assert "set spec.template.resources.requests.cpu, e.g. 250m" in str(caught.value)

    # a local app renders for a cluster only with what a cluster needs, said in one line
    done = rollwise(
        "render", "-f", str(EXAMPLES / "rollwise.yaml"), "--version", "1.0.0", check=False
    )
    assert done.returncode == 2 and "pass --backend kubernetes" in done.stderr
    out = tmp_path / "manifests"
    done = rollwise(
        "render", "-f", str(EXAMPLES / "rollwise.yaml"), "--version", "1.0.0",
        "--backend", "kubernetes", "-o", str(out), check=False,
    )  # fmt: skip
    assert done.returncode == 2, done
    assert "spec.template.image is not set" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()  # nothing written
    missing = rollwise("render", "-f", str(K8S_EXAMPLE), check=False)
    assert missing.returncode == 2 and "--version" in missing.stderr


def test_the_missions_deployment_config_and_manifest_writer(tmp_path: Path) -> None:
    registry = ExtensionRegistry()
    registry.register(ExtensionConfig("timestamp", "1.0.0"))
    registry.register(ExtensionConfig("traceability", "0.2.0"))
    registry.toggle("traceability", False)
    config = DeploymentConfig("image:tag", 2, {"A2A_HOST": "0.0.0.0"}, registry.active())
    assert config.describe() == (
        "Image: image:tag\nReplicas: 2\nEnvironment variables:\n  A2A_HOST=0.0.0.0\n"
        "Extensions:\n  timestamp@1.0.0 (enabled)"
    )
    path = ManifestWriter(tmp_path / "manifest.json").write(config)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == {
        "image": "image:tag",
        "replicas": 2,
        "env": {"A2A_HOST": "0.0.0.0"},
        "extensions": [{"id": "timestamp", "version": "1.0.0", "enabled": True}],
    }


@pytest.mark.replicas(1)
def test_describe_and_export_a_stored_revision_with_secrets_masked(cluster: Cluster) -> None:
    cluster.deploy("1.1.0", "template.env.API_TOKEN=s3cret")
    cluster.wait_stable(2)
    described = cluster.cli("describe", "sample-agent", "--revision", "2").stdout
    assert "App: sample-agent  Revision: 2  Version: 1.1.0" in described
    assert "Image: local process: " in described and "-m sample_agent --port {port}" in described
    assert "Replicas: 1" in described
    assert "  AGENT_VERSION=1.1.0" in described
    assert "  API_TOKEN=***" in described and "s3cret" not in described
    # the extensions its agent card declared
    assert "  timestamp@1 (enabled)" in described and "  traceability@1 (enabled)" in described
    first = cluster.cli("describe", "sample-agent", "--revision", "1").stdout
    assert "AGENT_VERSION=1.0.0" in first and "API_TOKEN" not in first

    out = cluster.state_dir.parent / "r2.json"
    cluster.cli("export", "sample-agent", "--revision", "2", "-o", str(out))
    exported = json.loads(out.read_text())
    assert exported["env"]["API_TOKEN"] == "***" and exported["replicas"] == 1
    assert {"id": "timestamp", "version": "1", "enabled": True} in exported["extensions"]
    missing = cluster.cli("describe", "sample-agent", "--revision", "9", check=False)
    assert missing.returncode == 1 and "has no revision 9" in missing.stderr

    # a kubernetes app is not run by this controller: refused, nothing changed
    refused = cluster.cli("apply", "-f", str(K8S_EXAMPLE), check=False)
    assert refused.returncode == 2, refused
    assert "spec.backend.kind is kubernetes, and this controller runs local apps" in refused.stderr
    assert "rollwise up --backend kubernetes" in refused.stderr  # how to run it
    assert cluster.get()["stable"] == 2
    assert len(cluster.client.request("GET", "/apps/sample-agent/history")) == 2


def test_how_a_controller_reaches_a_cluster_app_inside_and_outside_the_cluster(
    tmp_path: Path,
) -> None:
    from rollwise.backends.kubernetes_reach import InCluster, ThroughApi
    from rollwise.kubernetes.connection import ClusterAccess

    spec = parse_spec(K8S_EXAMPLE.read_text()).spec
    inside = InCluster()
    assert inside.url("10.0.3.7:8080") == "http://10.0.3.7:8080"
    assert inside.entry("sample-agent", spec) == (
        "http://sample-agent-stable.agents.svc:80",
        "the Service agents/sample-agent-stable",
    )
    config = tmp_path / "kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://api.example:6443/"}}],
                "users": [{"name": "u", "user": {"token": "t0ken"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    pods = {"10.0.3.7:8080": ("agents", "sample-agent-r2-abc", 8080)}
    outside = ThroughApi(ClusterAccess(config), pods.get)
    api = "https://api.example:6443/api/v1/namespaces/agents"
    assert outside.url("10.0.3.7:8080") == f"{api}/pods/sample-agent-r2-abc:8080/proxy"
    assert outside.entry("sample-agent", spec)[0] == f"{api}/services/sample-agent-stable:80/proxy"
    # an address that is no pod of ours is never sent the cluster's credentials
    assert outside.url("192.0.2.1:80").startswith("https://api.example:6443/api/v1/")


POD_SETTINGS = """    pod:
      serviceAccountName: weather-agent
      imagePullSecrets: [registry-credentials]
      nodeSelector: {kubernetes.io/arch: arm64}
      tolerations: [{key: dedicated, value: agents, effect: NoSchedule}]
      priorityClassName: agents-high
      labels: {team: weather, sidecar.istio.io/inject: "true"}
      annotations: {example.com/cost-centre: "42"}
"""


def test_pod_settings_reach_every_revisions_pods_and_validate() -> None:
    text = K8S_EXAMPLE.read_text().replace(
        "    containerPort: 8080\n", "    containerPort: 8080\n" + POD_SETTINGS
    )
    spec = parse_spec(text)
    deployment = revision_deployment(spec, 2, "1.1.0", 3)
    validate_objects([deployment])
    template = deployment["spec"]["template"]
    pod = template["spec"]
    assert pod["serviceAccountName"] == "weather-agent"
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert pod["nodeSelector"] == {"kubernetes.io/arch": "arm64"}
    assert pod["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "agents", "effect": "NoSchedule"}
    ]
    assert pod["priorityClassName"] == "agents-high"
    labels = template["metadata"]["labels"]
    assert labels["team"] == "weather" and labels[REVISION_LABEL] == "2"
    assert template["metadata"]["annotations"]["example.com/cost-centre"] == "42"
    assert deployment["spec"]["selector"]["matchLabels"] == {
        APP_LABEL: "sample-agent",
        REVISION_LABEL: "2",
    }
    for wrong, says in (
        ("labels: {rollwise.dev/app: other}", "labels rollwise.dev/app are rollwise's own"),
        ("labels: {'bad key!': x}", "is not a label key"),
        ("imagePullSecrets: [Registry_Creds]", "is not a valid Secret name"),
        ("tolerations: [{operator: Maybe}]", "operator"),
    ):
        with pytest.raises(SpecError) as refused:
            parse_spec(text.replace(POD_SETTINGS, f"    pod:\n      {wrong}\n"))
        assert says in str(refused.value), str(refused.value)
