"""What a replica process is started with: its argv, environment and working directory.

The template's argv and env may name ``{port}``, ``{version}``, ``{replica}``, ``{python}``,
``{app}`` and ``{revision}``; the environment also carries them as ``ROLLWISE_*`` variables
and ``PORT``, and the state directory of the controller that started it (so that a replica a
killed controller never recorded is found and stopped by the next one). Variables of
``template.secretRefs`` are read from their files as each replica starts.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rollwise.backends.base import Workload
from rollwise.errors import ReplicaStartError
from rollwise.redact import SECRETS

__all__ = ["REPLICA_MARKER", "replica_command"]

# In a replica's environment: the state directory of the controller that started it. Not
# ROLLWISE_STATE_DIR, which users set for the CLI and every child would inherit.
REPLICA_MARKER = "ROLLWISE_REPLICA_OF"


def replica_command(
    workload: Workload, index: int, port: int, state_dir: Path
) -> tuple[list[str], dict[str, str], str]:
    """(argv, environment, working directory) of replica ``index`` listening on ``port``."""
    fields = {
        "port": str(port),
        "version": workload.version,
        "replica": str(index),
        "python": sys.executable,
        "app": workload.app,
        "revision": str(workload.revision),
    }
    template = workload.template
    argv = [a.format_map(fields) for a in template.command]
    env = dict(os.environ)
    env.update(dict(workload.extra_env))
    env.update({k: v.format_map(fields) for k, v in template.env.items()})
    env.update(secret_files(workload))
    env.update(
        {
            "ROLLWISE_APP": workload.app,
            "ROLLWISE_REVISION": str(workload.revision),
            "ROLLWISE_VERSION": workload.version,
            "ROLLWISE_REPLICA": str(index),
            REPLICA_MARKER: str(state_dir),
            "PORT": str(port),
        }
    )
    cwd = template.cwd or workload.base_dir
    if not os.path.isabs(cwd):
        cwd = os.path.join(workload.base_dir, cwd)
    return argv, env, cwd


def secret_files(workload: Workload) -> dict[str, str]:
    """The values of the template's file references, read now (a rotated file reaches the
    next replica started), each registered as a secret to keep out of logs and events."""
    values = {}
    for name, ref in workload.template.secret_refs.items():
        path = Path(workload.base_dir, Path(ref.file or "").expanduser())
        try:
            values[name] = path.read_text().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ReplicaStartError(
                f"app {workload.app} revision {workload.revision}: "
                f"spec.template.secretRefs.{name}: cannot read {path}: {why}; "
                "create the file (the value, alone) or fix the path"
            ) from None
    SECRETS.add(values.values())
    return values
