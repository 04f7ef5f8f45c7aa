"""The mission's ``DeploymentConfig`` (what a revision runs, in words a person reads) and
``ManifestWriter`` (the same as a JSON file).

``rollwise describe APP --revision N`` prints a stored revision's ``describe()``, and
``rollwise export APP --revision N -o FILE`` writes it with ``ManifestWriter``; both come
with secret values already masked. A program builds one by hand as well::

    config = DeploymentConfig("gcr.io/example/agent:1.0.0", 3, {"A2A_HOST": "0.0.0.0"}, [])
    ManifestWriter(Path("deployment.json")).write(config)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rollwise.toolkit.extensions import ExtensionConfig

__all__ = ["DeploymentConfig", "ManifestWriter"]


@dataclass
class DeploymentConfig:
    image: str
    replicas: int
    env: dict[str, str]
    extensions: list[ExtensionConfig]

    def describe(self) -> str:
        lines = [f"Image: {self.image}", f"Replicas: {self.replicas}"]
        lines.append("Environment variables:")
        lines += [f"  {key}={value}" for key, value in self.env.items()]
        lines.append("Extensions:")
        for ext in self.extensions:
            state = "enabled" if ext.enabled else "disabled"
            lines.append(f"  {ext.identifier}@{ext.version} ({state})")
        return "\n".join(lines)


@dataclass
class ManifestWriter:
    path: Path

    def write(self, config: DeploymentConfig) -> Path:
        manifest = {
            "image": config.image,
            "replicas": config.replicas,
            "env": config.env,
            "extensions": [ext.as_dict() for ext in config.extensions],
        }
        self.path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        return self.path
