"""``template.secretRefs``: secret variables whose values never enter the spec.

A value written in ``template.env`` travels with the spec: into the controller's store (masked
in what it shows), into a per-revision Secret on a cluster. A team that already keeps its
secrets elsewhere names them instead:

- on a cluster, a Secret of the app's namespace and its key (``secret``, ``key``): the pod's
  variable comes from it (``valueFrom.secretKeyRef``); the controller never reads it, and
  the Secret stays the team's (rollwise neither writes nor deletes it);
- on this machine, a file (``file``, relative to the spec's directory): read when each
  replica starts, so a rotated file reaches the next replica started without a new spec.
"""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from rollwise.spec.base import Model

__all__ = ["SecretRef", "ref_problems"]


class SecretRef(Model):
    """Where one secret variable's value is kept: a cluster's Secret, or a local file."""

    secret: str | None = None
    key: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one_place(self) -> Self:
        if (self.secret is None) == (self.file is None):
            raise ValueError(
                "give secret and key (a Kubernetes Secret) or file (a file on this machine)"
            )
        if self.secret is not None and not self.key:
            raise ValueError(f"secret {self.secret!r} needs the key that holds the value")
        if self.file is not None and self.key is not None:
            raise ValueError("key belongs to secret; a file holds one value, its whole text")
        return self

    def describe(self) -> str:
        """Where the value comes from, for ``rollwise describe`` (never the value)."""
        return f"<secret {self.secret}/{self.key}>" if self.secret else f"<file {self.file}>"


def ref_problems(refs: dict[str, SecretRef], env: dict[str, str], kind: str) -> list[str]:
    """What keeps these references from working on a backend of ``kind``."""
    problems = [
        f"template.secretRefs.{name} and template.env.{name} both set it; keep one"
        for name in refs
        if name in env
    ]
    for name, ref in refs.items():
        if kind == "kubernetes" and ref.file is not None:
            problems.append(
                f"template.secretRefs.{name}: file {ref.file} is on this machine, not in the "
                "pod; name a Secret of the app's namespace (secret, key)"
            )
        if kind == "local" and ref.secret is not None:
            problems.append(
                f"template.secretRefs.{name}: secret {ref.secret} is a Kubernetes Secret, "
                "and this app runs on this machine; give file (a path holding the value)"
            )
    return problems
