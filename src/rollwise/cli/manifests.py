"""``rollwise render`` (the Kubernetes objects a revision would apply, validated),
``rollwise describe`` (a stored revision's resolved configuration) and ``rollwise export``
(the same as JSON, the mission's ``ManifestWriter``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rollwise.cli.common import Output, OutputOpt, StateDir, client, err, out, print_json
from rollwise.errors import UsageError

if TYPE_CHECKING:
    from rollwise.toolkit import DeploymentConfig

__all__ = ["describe", "export", "render"]


def _dump(objects: list[dict[str, Any]]) -> str:
    """Multi-document YAML, each object written out in full (no anchors: kubectl reads
    them, people diffing two renders should not have to)."""
    import yaml

    class Plain(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return "".join("---\n" + yaml.dump(obj, Dumper=Plain, sort_keys=False) for obj in objects)


def render(
    version: Annotated[str, typer.Option("--version", help="The version to render.")],
    file: Annotated[Path, typer.Option("--file", "-f", help="The spec.")] = Path("rollwise.yaml"),
    revision: Annotated[
        int, typer.Option("--revision", min=1, help="The revision number it would be.")
    ] = 1,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend", help="Render for this backend (kubernetes) whatever the spec says."
        ),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir", "-o", help="Write <app>.yaml and rollwise-controller.yaml here."
        ),
    ] = None,
    controller: Annotated[
        bool, typer.Option("--controller/--no-controller", help="Also the controller's objects.")
    ] = True,
    controller_image: Annotated[
        str | None, typer.Option("--controller-image", help="The controller's image.")
    ] = None,
) -> None:
    """Write the Kubernetes objects a revision would apply (its Deployment, the Services,
    the HTTPRoute; the controller's Deployment, ServiceAccount, Role, RoleBinding, Lease and
    volume claim), each validated against a current Kubernetes and the Gateway API schema."""
    from rollwise.kubernetes.install import controller_objects
    from rollwise.kubernetes.names import CONTROLLER
    from rollwise.kubernetes.objects import app_objects, secret_name
    from rollwise.kubernetes.validation import validate_objects
    from rollwise.spec import apply_overrides, load_spec

    spec = load_spec(file)
    if backend is not None:
        if backend != "kubernetes":
            raise UsageError(f"--backend {backend!r}: render writes objects for kubernetes only")
        spec = apply_overrides(spec, ["backend.kind=kubernetes"])
    if spec.spec.backend.kind != "kubernetes":
        raise UsageError(
            f"{file}: spec.backend.kind is {spec.spec.backend.kind}; render writes Kubernetes "
            "objects: set kind: kubernetes, or pass --backend kubernetes"
        )
    objects = app_objects(spec, revision, version)
    installs = (
        controller_objects(spec.spec.backend.namespace, controller_image) if controller else []
    )
    validate_objects(objects + installs)
    secrets = spec.spec.template.secret_names()
    if secrets:
        keys = " ".join(f"--from-literal={n}=..." for n in secrets)
        name = secret_name(spec.name, revision)
        err.print(
            f"revision {revision} reads {', '.join(secrets)} from Secret {name}, which a "
            "controller writes when it runs the revision and these files do not hold; to apply "
            f"them by hand, make it first: kubectl create secret generic {name} "
            f"-n {spec.spec.backend.namespace} {keys}",
            highlight=False,
        )
    refs = spec.spec.template.secret_refs
    if refs:
        named = ", ".join(f"{n} from Secret {r.secret} (key {r.key})" for n, r in refs.items())
        err.print(
            f"the pods read {named}: the team's own, in namespace "
            f"{spec.spec.backend.namespace}; their pods wait until it exists",
            highlight=False,
        )
    if output_dir is None:
        out.print(_dump(objects + installs), end="", highlight=False, markup=False, soft_wrap=True)
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    written = [(output_dir / f"{spec.name}.yaml", objects)]
    if installs:
        written.append((output_dir / f"{CONTROLLER}.yaml", installs))
    for path, group in written:
        path.write_text(_dump(group), encoding="utf-8")
        out.print(f"{path}: {len(group)} objects")


def _config(name: str, revision: int | None, state_dir: Path | None) -> dict[str, Any]:
    with client(state_dir) as admin:
        if revision is None:
            view = admin.request("GET", f"/apps/{name}")
            revision = view.get("stable") or view.get("canary")
            if revision is None:
                raise UsageError(f"app {name} has no revision yet; deploy one first")
        result: dict[str, Any] = admin.request("GET", f"/apps/{name}/revisions/{revision}/config")
    return result


def _deployment_config(data: dict[str, Any]) -> DeploymentConfig:
    from rollwise.toolkit import DeploymentConfig, ExtensionConfig

    extensions = [ExtensionConfig(**e) for e in data["extensions"]]
    return DeploymentConfig(data["image"], data["replicas"], data["env"], extensions)


def describe(
    name: Annotated[str, typer.Argument(help="The app.")],
    revision: Annotated[
        int | None,
        typer.Option("--revision", min=1, help="The revision (default: the stable one)."),
    ] = None,
    output: OutputOpt = Output.TEXT,
    state_dir: StateDir = None,
) -> None:
    """A revision's resolved configuration: image, replicas, environment (secrets masked)
    and the A2A extensions its agent card declares."""
    data = _config(name, revision, state_dir)
    if output == Output.JSON:
        print_json(data)
        return
    out.print(f"App: {data['app']}  Revision: {data['revision']}  Version: {data['version']}")
    out.print(_deployment_config(data).describe(), highlight=False, markup=False)


def export(
    name: Annotated[str, typer.Argument(help="The app.")],
    revision: Annotated[int, typer.Option("--revision", min=1, help="The revision.")],
    output_file: Annotated[Path, typer.Option("--output-file", "-o", help="The JSON file.")],
    state_dir: StateDir = None,
) -> None:
    """Write a revision's resolved configuration as JSON (secrets masked)."""
    from rollwise.toolkit import ManifestWriter

    data = _config(name, revision, state_dir)
    path = ManifestWriter(output_file).write(_deployment_config(data))
    out.print(f"{path}: revision {data['revision']} ({data['version']}) of {name}")
