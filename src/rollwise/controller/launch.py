"""Starting a controller in the background: what ``rollwise up --detach`` does.

The controller runs in its own session with its output in ``<state>/logs/controller.log``;
the caller waits until it answers on its admin socket, or learns from the log's last lines
why it exited. A controller started with ``--leader-elect`` answers only once it holds the
Lease, which another may hold for as long as it runs: it has started when it says so in its
log (``waiting for the lease``) or answers.
"""

from __future__ import annotations

import atexit
import subprocess
import sys
import time
from pathlib import Path

from rollwise.client import AdminClient
from rollwise.errors import ControllerError
from rollwise.kubernetes.names import WAITING_FOR_LEASE
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
    start = log_path.stat().st_size if log_path.exists() else 0
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
    candidate = "--leader-elect" in options
    with AdminClient(directory) as client:
        while time.monotonic() < deadline:
            if client.running():
                return proc
            if candidate and WAITING_FOR_LEASE in _new_log(log_path, start):
                return proc
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace").splitlines()[-5:]
                raise ControllerError(
                    "the controller exited at start:\n  " + "\n  ".join(tail) + f"\nsee {log_path}"
                )
            time.sleep(0.05)
    raise ControllerError(f"the controller did not answer within {wait_s:.0f}s; see {log_path}")


def _new_log(path: Path, start: int) -> str:
    """What the controller wrote to its log since it was started."""
    with open(path, "rb") as log:
        log.seek(start)
        return log.read().decode(errors="replace")
