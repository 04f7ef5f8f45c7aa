"""A revision's resolved configuration: what it runs once its spec's placeholders are filled,
as the mission's ``DeploymentConfig`` (``rollwise describe``, ``rollwise export``).

The image is the template's (its ``{version}`` filled) or, for a local app without one, the
command line its processes start with. Values that differ per replica (``{port}``,
``{replica}``) stay placeholders locally and take the pod's values on Kubernetes. Secret
values are masked: the configuration is for reading and diffing, not for starting anything.
The extensions are the ones the revision's agent card declared when it was checked.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from rollwise.redact import MASK
from rollwise.spec.models import Rollout
from rollwise.toolkit.extensions import ExtensionConfig
from rollwise.toolkit.manifest import DeploymentConfig

__all__ = ["card_extensions", "revision_config"]

_PLAIN = re.compile(r"^[\w@%+=:,./{}-]+$")  # an argument a shell reads as it is
_VERSIONED = re.compile(r"/(?P<id>[^/]+)/v(?P<version>\d[^/]*)/?$")


def card_extensions(card: dict[str, Any] | None) -> list[ExtensionConfig]:
    """An agent card's declared extensions: ``…/timestamp/v1`` is ``timestamp@1``; a URI
    without a version segment is its own identifier (version '')."""
    declared = ((card or {}).get("capabilities") or {}).get("extensions") or []
    made = []
    for extension in declared:
        uri = str(extension.get("uri", ""))
        found = _VERSIONED.search(uri)
        if found:
            made.append(ExtensionConfig(found["id"], found["version"]))
        elif uri:
            made.append(ExtensionConfig(uri, ""))
    return made


def revision_config(
    rollout: Rollout, version: str, revision: int, card: dict[str, Any] | None = None
) -> DeploymentConfig:
    spec = rollout.spec
    template = spec.template
    cluster = spec.backend.kind == "kubernetes"
    fields = {
        "port": str(spec.backend.container_port) if cluster else "{port}",
        "version": version,
        "replica": "{replica}",
        "python": "python",
        "app": rollout.name,
        "revision": str(revision),
    }
    if template.image is not None:
        image = template.image.format_map(fields)
    else:
        argv = (a.format_map(fields) for a in template.command)
        image = "local process: " + " ".join(a if _PLAIN.match(a) else shlex.quote(a) for a in argv)
    env = {
        name: MASK if template.is_secret(name) else value.format_map(fields)
        for name, value in template.env.items()
    } | {name: ref.describe() for name, ref in template.secret_refs.items()}
    return DeploymentConfig(image, spec.replicas, env, card_extensions(card))
