"""How the Python deployment API reaches a controller: the one running for the state
directory, or one started inside the calling process.

A ``Session`` knows the app (from ``rollwise.yaml`` in the working directory unless told
otherwise), talks to the controller's admin API with ``AsyncAdminClient``, and waits for
states by polling that API: every wait is on real state, with a deadline, never a fixed
sleep. An embedded controller runs as a task of the caller's event loop and stops, with the
replicas it started, at ``close()`` or when the loop ends; start ``rollwise up --detach``
first to keep releases running after the script.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self

from rollwise.client import AsyncAdminClient, default_state_dir
from rollwise.errors import ControllerError, UsageError
from rollwise.spec import load_spec

__all__ = ["CONFIG_KEYS", "Closing", "Session", "config_overrides", "version_of"]

POLL_S = 0.1


class Session:
    def __init__(
        self,
        app: str | None = None,
        spec_file: str | Path | None = None,
        state_dir: str | Path | None = None,
    ) -> None:
        self.app = app
        self.spec_file = Path(spec_file) if spec_file is not None else Path("rollwise.yaml")
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.client = AsyncAdminClient(self.state_dir)
        self.embedded: asyncio.Task[None] | None = None
        self._controller: Any = None
        self._started = False

    async def start(self) -> None:
        """Connect to the controller, starting one in this process if none runs."""
        if self._started:
            return
        if not await self.client.running():
            from rollwise.service import controller_with_api

            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._controller = controller_with_api(self.state_dir, handle_signals=False)
            self.embedded = asyncio.get_running_loop().create_task(self._controller.run())
            deadline = time.monotonic() + 30
            while not await self.client.running():
                if self.embedded.done():
                    self.embedded.result()  # raises what stopped it
                    raise ControllerError("the embedded controller stopped at start")
                if time.monotonic() > deadline:
                    raise ControllerError(
                        f"the controller started in this process did not answer on "
                        f"{self.client.socket} within 30s; its log lines are on this "
                        "process's output, or run `rollwise up --state-dir "
                        f"{self.state_dir}` to start one on its own"
                    )
                await asyncio.sleep(POLL_S)
        self._started = True
        if self.app is None:
            self.app = load_spec(self.spec_file).name

    async def apply(self, change: Callable[[dict[str, Any]], None] | None = None) -> str:
        """Apply the spec file (after ``change``) as the app's spec; returns the app name."""
        await self.start()
        spec = load_spec(self.spec_file).model_dump(mode="json", by_alias=True)
        if change is not None:
            change(spec)
        base_dir = str(self.spec_file.resolve().parent)
        answer = await self.client.request(
            "PUT", "/apps", json={"spec": spec, "base_dir": base_dir}
        )
        self.app = str(answer["app"])
        return self.app

    async def view(self) -> dict[str, Any]:
        await self.start()
        return dict(await self.client.request("GET", f"/apps/{self.app}"))

    async def command(self, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.start()
        return dict(await self.client.request("POST", f"/apps/{self.app}/{name}", json=body or {}))

    async def history(self) -> list[dict[str, Any]]:
        await self.start()
        return list(await self.client.request("GET", f"/apps/{self.app}/history"))

    async def wait(
        self, done: Callable[[dict[str, Any]], bool], limit_s: float
    ) -> tuple[dict[str, Any], bool]:
        """Poll the app's view until ``done``, a Degraded phase or ``limit_s``."""
        deadline = time.monotonic() + limit_s
        while True:
            view = await self.view()
            if done(view):
                return view, True
            if view["phase"] == "Degraded" or time.monotonic() > deadline:
                return view, False
            await asyncio.sleep(POLL_S)

    async def close(self) -> None:
        """Close the connection; stop the embedded controller if this session started one."""
        if self.embedded is not None and self._controller is not None:
            self._controller.stopping.set()
            await self.embedded
            self.embedded = None
        await self.client.aclose()


class Closing:
    """What the API's objects share: a ``Session``, closed by ``close()`` or at the end of
    ``async with``. An object never closed leaks nothing either: the session keeps no idle
    connection, and an embedded controller stops with its event loop."""

    session: Session

    async def close(self) -> None:
        await self.session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# ``deploy(version, config=...)``: what a key may name, and the spec path it sets
CONFIG_KEYS = {
    "replicas": "replicas",
    "env": "template.env",
    "readiness": "template.readiness",
    "command": "template.command",
}


def config_overrides(config: Mapping[str, Any] | None) -> list[str]:
    """``deploy``'s ``config`` as the spec overrides of ``rollwise deploy --set``: keys name
    spec fields (``replicas``, ``env`` as a mapping or ``env.NAME``, ``readiness`` or
    ``readiness.FIELD``, ``command``); anything else is refused, listing what is allowed."""
    sets: list[str] = []
    for key, value in (config or {}).items():
        head, dot, rest = str(key).partition(".")
        path = CONFIG_KEYS.get(head)
        if path is None or (dot and head not in ("env", "readiness")) or (dot and not rest):
            raise UsageError(
                f"config key {key!r} is not a spec field a release can set; use "
                "replicas, env (a mapping) or env.NAME, readiness or readiness.FIELD, command"
            )
        if not dot and head in ("env", "readiness"):
            if not isinstance(value, Mapping):
                raise UsageError(f"config {key!r} must be a mapping, e.g. {{'LOG_LEVEL': 'debug'}}")
            sets += [f"{path}.{name}={_yaml(v)}" for name, v in value.items()]
        else:
            sets.append(f"{path}{'.' + rest if dot else ''}={_yaml(value)}")
    return sets


def _yaml(value: Any) -> str:
    """A value as ``--set`` reads it (YAML): lists and booleans keep their type."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def version_of(view: dict[str, Any], revision: int | None) -> str | None:
    """The version of ``revision`` in an app view (``None`` when it is not listed)."""
    for rev in view["revisions"]:
        if rev["number"] == revision:
            return str(rev["version"])
    return None
