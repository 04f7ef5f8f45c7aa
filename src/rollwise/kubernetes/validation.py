"""Rendered objects checked against the schemas of a current Kubernetes, before anything is
written or applied.

Built-in kinds are checked with ``kubernetes-validate`` (the official OpenAPI schemas, strict:
an unknown field is an error, as ``kubectl apply --validate=strict`` makes it). HTTPRoute is
not built in: its schema is the Gateway API CRD's ``openAPIV3Schema``, vendored with its
version in ``schemas/httproute-v1.json`` (its CEL rules are the API server's to check).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from rollwise.errors import ManifestError

__all__ = ["GATEWAY_API_VERSION", "KUBERNETES_VERSION", "validate_objects"]

KUBERNETES_VERSION = "1.37"
GATEWAY_API_VERSION = "v1.6.1"


@cache
def _http_route_validator() -> Any:
    import jsonschema

    text = resources.files("rollwise.kubernetes").joinpath("schemas/httproute-v1.json").read_text()
    return jsonschema.Draft7Validator(json.loads(text))


def _where(path: Any) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def problems(obj: dict[str, Any], version: str = KUBERNETES_VERSION) -> list[str]:
    """What is wrong with ``obj`` for Kubernetes ``version`` (field path and reason each)."""
    kind = obj.get("kind", "?")
    name = obj.get("metadata", {}).get("name", "?")
    if obj.get("apiVersion") == "gateway.networking.k8s.io/v1" and kind == "HTTPRoute":
        errors = sorted(_http_route_validator().iter_errors(obj), key=lambda e: list(e.path))
        schema = f"Gateway API {GATEWAY_API_VERSION}"
        return [
            f"{kind}/{name} ({schema}): {_where(e.path) or '(object)'}: {e.message}" for e in errors
        ]
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except ValidationError as error:
        return [f"{kind}/{name}: {_where(error.path) or '(object)'}: {error.message}"]
    except SchemaNotFoundError:
        return [
            f"{kind}/{name}: Kubernetes {version} has no schema for {obj.get('apiVersion')} {kind}"
        ]
    return []


def validate_objects(objects: list[dict[str, Any]], version: str = KUBERNETES_VERSION) -> None:
    """Raise ``ManifestError`` naming every problem of every object (nothing is written)."""
    found = [p for obj in objects for p in problems(obj, version)]
    if found:
        raise ManifestError(
            f"{len(found)} problem(s) in the rendered objects (Kubernetes {version}): "
            + "; ".join(found)
        )
