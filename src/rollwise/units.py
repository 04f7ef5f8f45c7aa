"""systemd units for the controller: a supervisor the machine already trusts, so that
``kill -9`` of the controller and the proxy together is healed without a person.

``Restart=always`` brings the controller back; ``KillMode=process`` lets the proxy and the
replicas outlive a controller restart (they run in sessions of their own and are adopted),
while ``systemctl stop`` still ends everything: the controller's SIGTERM stops the proxy and
the replicas, as ``rollwise down`` does. Without systemd, any supervisor with the same three
promises does: run ExecStart, restart it ``RestartSec`` after it exits, send SIGTERM to stop.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Unit", "render_unit", "unit_dir"]

RESTART_SEC = 0.5


@dataclass(frozen=True, slots=True)
class Unit:
    name: str
    state_dir: Path
    user: bool
    up_args: tuple[str, ...] = ()

    @property
    def file_name(self) -> str:
        return f"{self.name}.service"

    def exec_start(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "rollwise",
            "up",
            "--state-dir",
            str(self.state_dir),
            "--log-format",
            "json",
            *self.up_args,
        ]


def unit_dir(user: bool) -> Path:
    """Where systemd reads units: the user's own, or the system's."""
    return Path.home() / ".config" / "systemd" / "user" if user else Path("/etc/systemd/system")


def render_unit(unit: Unit) -> str:
    exec_start = shlex.join(unit.exec_start())
    wanted_by = "default.target" if unit.user else "multi-user.target"
    return f"""# written by `rollwise service install`; `rollwise service uninstall` removes it
[Unit]
Description=rollwise controller for {unit.state_dir}
After=network.target

[Service]
Type=simple
ExecStart={exec_start}
Restart=always
RestartSec={RESTART_SEC:g}
# the proxy and the replicas outlive a controller restart; `systemctl stop` still stops all
KillMode=process
KillSignal=SIGTERM
# `systemctl reload`: the controller leaves the proxy and the replicas serving and exits;
# Restart= brings it back from the installed rollwise (an upgrade without downtime)
ExecReload=/bin/kill -HUP $MAINPID
TimeoutStopSec=60
Environment=PYTHONUNBUFFERED=1

[Install]
WantedBy={wanted_by}
"""
