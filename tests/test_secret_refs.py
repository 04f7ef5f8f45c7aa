"""``template.secretRefs``: a secret variable's value kept out of the spec. Locally a file
read as each replica starts (a missing one aborts the release saying which field and file);
the value is hidden wherever rollwise shows it. The cluster side (a Secret the pod reads) is
in test_kubernetes_backend.py."""

from __future__ import annotations

import httpx
import pytest
import yaml

from rollwise.errors import SpecError
from rollwise.spec import parse_spec

from .conftest import Cluster
from .helpers import wait_for_view

HEAD = "apiVersion: rollwise/v1\nkind: Rollout\nmetadata: {name: a}\nspec:\n"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("  template:\n    command: [x]\n    secretRefs: {K: {}}\n", "give secret and key"),
        ("  template:\n    command: [x]\n    secretRefs: {K: {secret: s}}\n", "needs the key"),
        (
            "  template:\n    command: [x]\n    secretRefs: {K: {file: f, key: k}}\n",
            "a file holds one value",
        ),
        (
            "  template:\n    command: [x]\n    env: {K: v}\n    secretRefs: {K: {file: f}}\n",
            "template.secretRefs.K and template.env.K both set it",
        ),
        (
            "  template:\n    command: [x]\n    secretRefs: {K: {secret: s, key: k}}\n",
            "secret s is a Kubernetes Secret, and this app runs on this machine; give file",
        ),
        (
            "  backend: {kind: kubernetes, router: replicas}\n"
            "  template:\n    command: [x]\n    image: i:1\n    secretRefs: {K: {file: f}}\n",
            "file f is on this machine, not in the pod; name a Secret",
        ),
    ],
)
def test_a_reference_that_cannot_work_is_refused_saying_where(spec: str, says: str) -> None:
    with pytest.raises(SpecError) as refused:
        parse_spec(HEAD + spec)
    assert says in str(refused.value) and str(refused.value).startswith("rollwise.yaml:")


@pytest.mark.replicas(1)
def test_a_local_secret_file_is_read_at_start_and_hidden_a_missing_one_says_which(
    cluster: Cluster,
) -> None:
    secret = cluster.spec_file.with_name("version.secret")
    spec = yaml.safe_load(cluster.spec_file.read_text())
    spec["spec"]["template"]["env"].pop("AGENT_VERSION")
    spec["spec"]["template"]["secretRefs"] = {"AGENT_VERSION": {"file": secret.name}}
    cluster.spec_file.write_text(yaml.safe_dump(spec))
    cluster.apply("2.0.0")
    view = wait_for_view(cluster.get, lambda v: v["phase"] == "Degraded", 60, "not aborted")
    assert view["stable"] == 1
    assert (
        "last log line: rollwise: app sample-agent revision 2: "
        f"spec.template.secretRefs.AGENT_VERSION: cannot read {secret}: No such file or "
        "directory; create the file (the value, alone) or fix the path" in view["message"]
    ), view["message"]

    value = "2.0.0-from-a-file"
    secret.write_text(value + "\n")
    cluster.deploy("2.0.1")
    cluster.wait_stable(3)
    card = httpx.get(cluster.url + "/.well-known/agent-card.json").json()
    assert card["version"] == value  # the replica read the file, without its newline
    events = cluster.cli("events", "sample-agent", "-o", "json").stdout
    assert value not in events and "Sample Echo Agent' ***" in events
    described = cluster.cli("describe", "sample-agent", "--revision", "3").stdout
    assert "AGENT_VERSION=<file version.secret>" in described and value not in described
