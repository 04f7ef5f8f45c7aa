"""Release bundles and the backups list, on a real controller's store: a bundle of a served
revision verifies, its secrets are masked, and a changed, added or removed file is refused."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from rollwise import Artifact, bundle_artifacts, list_backups
from tests.conftest import Cluster


def _rewrite(source: Path, target: Path, change: dict[str, bytes | None]) -> None:
    """Copy a bundle, replacing (bytes), removing (None) or adding members."""
    with tarfile.open(source, "r:gz") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    for name, data in change.items():
        if data is None:
            members.pop(name, None)
        else:
            members[name] = data
    with tarfile.open(target, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.replicas(1)
def test_a_bundle_verifies_masks_secrets_and_refuses_tampering(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.deploy("1.1.0", "template.env.API_TOKEN=s3cret-value")
    cluster.wait_stable(2)
    out = tmp_path / "release.tar.gz"
    done = cluster.cli("bundle", "sample-agent", "-o", str(out))
    assert "revision 2 (1.1.0)" in done.stdout
    with tarfile.open(out, "r:gz") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert {"spec.yaml", "revision.json", "manifest.json"} <= set(files)
    assert all(b"s3cret-value" not in data for data in files.values())
    assert b"API_TOKEN: '***'" in files["spec.yaml"]
    manifest = json.loads(files["manifest.json"])
    assert (manifest["app"], manifest["revision"], manifest["version"]) == (
        "sample-agent",
        2,
        "1.1.0",
    )
    if "agent-card.json" in files:  # the card the revision served, and its docs
        assert json.loads(files["agent-card.json"])["version"] == "1.1.0"
        assert b"# Sample Echo Agent 1.1.0" in files["agent-card.md"]
    verified = cluster.cli("bundle", "verify", str(out))
    assert "verified" in verified.stdout and "sample-agent revision 2" in verified.stdout
    older = cluster.cli("bundle", "sample-agent", "--revision", "1", "-o", str(tmp_path / "1.tgz"))
    assert "revision 1 (1.0.0)" in older.stdout

    cases: dict[str, tuple[dict[str, bytes | None], str]] = {
        "changed": ({"spec.yaml": files["spec.yaml"] + b"\n# edited\n"}, "spec.yaml: its sha256"),
        "added": ({"extra.sh": b"echo hi"}, "extra.sh: not in the manifest (added)"),
        "removed": ({"revision.json": None}, "revision.json: listed in the manifest but missing"),
        "no manifest": ({"manifest.json": None}, "has no manifest.json"),
    }
    for name, (change, says) in cases.items():
        bad = tmp_path / f"{name}.tar.gz"
        _rewrite(out, bad, change)
        refused = cluster.cli("bundle", "verify", str(bad), check=False)
        assert refused.returncode == 2, (name, refused.stderr)
        assert says in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not a tar")
    refused = cluster.cli("bundle", "verify", str(garbage), check=False)
    assert refused.returncode == 2 and "not a readable bundle" in refused.stderr
    for args, says in [
        (["bundle", "sample-agent"], "say where with -o"),
        (["bundle", "verify"], "give the bundle to check"),
    ]:
        refused = cluster.cli(*args, check=False)
        assert refused.returncode == 2 and says in refused.stderr, refused.stderr
    missing = cluster.cli("bundle", "nope", "-o", str(tmp_path / "x.tgz"), check=False)
    assert missing.returncode == 1 and "app nope has no revisions" in missing.stderr
    unknown = cluster.cli("bundle", "sample-agent", "--revision", "9", "-o", "x", check=False)
    assert "has no revision 9 (it has 1, 2)" in unknown.stderr
    assert not (tmp_path / "x.tgz").exists()


@pytest.mark.replicas(1)
def test_backups_are_listed_with_their_integrity(cluster: Cluster) -> None:
    cluster.cli("backup")
    backups = cluster.state_dir / "backups"
    (backups / "state-19700101T000000Z.db").write_bytes(b"not sqlite")
    listed = json.loads(cluster.cli("backup", "--list", "-o", "json", check=False).stdout)
    assert len(listed) == 2
    good = [b for b in listed if b["integrity"] == "ok"]
    assert len(good) == 1 and good[0]["size"] > 0
    (bad,) = [b for b in listed if b["integrity"] != "ok"]
    assert "not a readable SQLite file" in bad["integrity"]
    shown = cluster.cli("backup", "--list", check=False)
    assert shown.returncode == 1 and "state-19700101T000000Z.db" in shown.stdout
    assert set(list_backups(cluster.state_dir)) == {b["name"] for b in listed}


def test_the_missions_artifact_manifest(tmp_path: Path) -> None:
    card = tmp_path / "agent-card.json"
    card.write_text('{"name": "x"}')
    manifest = bundle_artifacts(
        [Artifact(card, "the agent card"), Artifact(tmp_path / "gone", "not built")],
        tmp_path / "out",
    )
    listed = json.loads(manifest.read_text())
    assert listed[0]["description"] == "the agent card" and listed[0]["size"] == 13
    assert len(listed[0]["sha256"]) == 64 and "sha256" not in listed[1]
    assert Artifact.__module__ == "rollwise"
