"""Starting a controller in the background: what ``rollwise up --detach`` does.

The controller runs in its own session with its output in ``<state>/logs/controller.log``;
the caller waits until it answers on its admin socket, or learns from the log's last lines
why it exited.
"""

from __future__ import annotations

import atexit
import subprocess
import sys
import time
from pathlib import Path

from rollwise.client import AdminClient
from rollwise.errors import ControllerError
from rollwise.state_dir import ensure_state_dir

__all__ = ["spawn_controller"]

# Controllers started from this process: kept, so that their exit is read when it comes
# (no zombie) and the interpreter never warns of a child it forgot.
_STARTED: list[subprocess.Popen[bytes]] = []


@atexit.register
def _reap() -> None:
    for proc in _STARTED:
        proc.poll()


def spawn_controller(
    directory: Path, *options: str, wait_s: float = 30.0
) -> subprocess.Popen[bytes]:
    """Start ``rollwise up --state-dir directory *options`` detached, and return once it
    answers. Raises ``ControllerError`` with the log's tail if it exits or stays silent."""
    ensure_state_dir(directory)
    _STARTED[:] = [p for p in _STARTED if p.poll() is None]
    argv = [sys.executable, "-m", "rollwise", "up", "--state-dir", str(directory), *options]
    log_path = directory / "logs" / "controller.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _STARTED.append(proc)
    deadline = time.monotonic() + wait_s
    with AdminClient(directory) as client:
        while time.monotonic() < deadline:
            if client.running():
                return proc
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace").splitlines()[-5:]
                raise ControllerError(
                    "the controller exited at start:\n  " + "\n  ".join(tail) + f"\nsee {log_path}"
                )
            time.sleep(0.05)
    raise ControllerError(f"the controller did not answer within {wait_s:.0f}s; see {log_path}")
