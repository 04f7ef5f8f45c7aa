"""Release bundles: what one revision was, in one file that can be checked before use.

``rollwise bundle APP [--revision N] -o FILE.tar.gz`` writes the revision's resolved spec
(its environment's secret values replaced by ``***``, as history shows them), its record
(version, who and why), the agent card it served and that card's Markdown docs (with its
extensions), and ``manifest.json``: the sha256 and size of every other file. ``rollwise
bundle verify FILE`` reads it without extracting anything and refuses it — exit 2, each
problem named — if a file was changed, added or removed, or a member is not a plain file
with a plain name. A bundle is what an auditor, a ticket or another environment gets of a
release; the state store stays the source of truth.

The mission's ``Artifact`` and ``bundle_artifacts`` keep their shape: a manifest
(``artifacts.json``) of files with descriptions, here with each file's sha256 and size.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rollwise.errors import InputError, NotFoundError
from rollwise.store import Store

__all__ = ["Artifact", "BundleInfo", "bundle_artifacts", "verify_bundle", "write_bundle"]

MANIFEST = "manifest.json"


@dataclass
class Artifact:
    """A file shipped with a release, and what it is."""

    path: Path
    description: str

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": str(self.path), "description": self.description}
        if self.path.is_file():
            content = self.path.read_bytes()
            data["sha256"] = hashlib.sha256(content).hexdigest()
            data["size"] = len(content)
        return data


def bundle_artifacts(artifacts: Iterable[Artifact], destination: Path) -> Path:
    """Write ``destination/artifacts.json``: each artifact's path, description, sha256, size."""
    destination.mkdir(parents=True, exist_ok=True)
    manifest = [artifact.to_dict() for artifact in artifacts]
    manifest_path = destination / "artifacts.json"
    manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest_path


@dataclass(frozen=True, slots=True)
class BundleInfo:
    path: Path
    app: str
    revision: int
    version: str
    files: dict[str, dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "app": self.app,
            "revision": self.revision,
            "version": self.version,
            "files": self.files,
        }


def _contents(store: Store, app: str, revision: int | None) -> tuple[int, str, dict[str, bytes]]:
    from rollwise.a2a.docs import card_markdown
    from rollwise.spec.loading import spec_from_dict

    rows = store.revisions(app)
    if not rows:
        raise NotFoundError(f"app {app} has no revisions; `rollwise list` shows the apps")
    if revision is None:
        row = rows[-1]
    else:
        found = [r for r in rows if r.number == revision]
        if not found:
            known = ", ".join(str(r.number) for r in rows)
            raise NotFoundError(f"app {app} has no revision {revision} (it has {known})")
        row = found[0]
    spec = dict(row.spec)
    resolved = spec_from_dict(spec, file=f"{app} revision {row.number}")
    spec["spec"] = {**spec["spec"], "template": dict(spec["spec"]["template"])}
    spec["spec"]["template"]["env"] = resolved.spec.template.redacted_env()
    record = {
        "app": app,
        "revision": row.number,
        "version": row.version,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "cause": row.cause,
        "outcome": row.outcome,
        "reason": row.reason,
    }
    files = {
        "spec.yaml": yaml.safe_dump(spec, sort_keys=False).encode(),
        "revision.json": json.dumps(record, indent=2).encode(),
    }
    card = store.card(app, row.number)
    if card is not None:
        files["agent-card.json"] = json.dumps(card, indent=2, sort_keys=True).encode()
        files["agent-card.md"] = card_markdown(card, f" (revision {row.number})").encode()
    return row.number, row.version, files


def write_bundle(store: Store, app: str, revision: int | None, out: Path) -> BundleInfo:
    """Write the bundle of ``app``'s revision (the newest without one) to ``out``, whole or
    not at all."""
    number, version, files = _contents(store, app, revision)
    listed = {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for name, data in files.items()
    }
    created = time.time()
    manifest = {
        "app": app,
        "revision": number,
        "version": version,
        "created": created,
        "files": listed,
    }
    files[MANIFEST] = json.dumps(manifest, indent=2).encode()
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        for name, data in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            member.mtime = int(created)
            member.mode = 0o644
            tar.addfile(member, io.BytesIO(data))
    os.replace(partial, out)
    return BundleInfo(out, app, number, version, listed)


def verify_bundle(path: Path) -> BundleInfo:
    """Check every file of the bundle at ``path`` against its manifest; ``InputError``
    naming each problem if anything differs."""
    if not path.is_file():
        raise InputError(f"{path}: no such bundle file")
    files: dict[str, bytes] = {}
    problems: list[str] = []
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar.getmembers():
                if not member.isfile() or "/" in member.name or member.name.startswith("."):
                    problems.append(f"{member.name}: not a plain file at the top of the bundle")
                    continue
                extracted = tar.extractfile(member)
                assert extracted is not None  # a regular file
                files[member.name] = extracted.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(f"{path} is not a readable bundle ({exc}); write it again") from None
    if MANIFEST not in files:
        raise InputError(f"{path} has no {MANIFEST}: not a rollwise bundle")
    try:
        manifest = json.loads(files.pop(MANIFEST))
        listed: dict[str, dict[str, Any]] = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: {MANIFEST} is unreadable ({exc})") from None
    for name, expected in sorted(listed.items()):
        data = files.get(name)
        if data is None:
            problems.append(f"{name}: listed in the manifest but missing")
        elif hashlib.sha256(data).hexdigest() != expected.get("sha256"):
            problems.append(f"{name}: its sha256 differs from the manifest's (changed)")
    problems += [
        f"{name}: not in the manifest (added)" for name in sorted(set(files) - set(listed))
    ]
    if problems:
        raise InputError(
            f"{path} fails verification, do not use it: "
            + "; ".join(problems)
            + ". Write it again with `rollwise bundle`."
        )
    return BundleInfo(
        path, str(manifest["app"]), int(manifest["revision"]), str(manifest["version"]), listed
    )
