"""Where a proxy's listening sockets come from: handed over by the controller's keeper (or,
for a worker, by its primary), else bound here; and the ones it holds, for the handover
back (``routing/handover.py``)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from rollwise.routing.handover import bind_listener, fetch_listeners

__all__ = ["acquire", "held"]


async def acquire(
    loop: asyncio.AbstractEventLoop,
    listen: str,
    app: str,
    sources: tuple[Path, ...],
    reuse_port: bool,
) -> socket.socket:
    """The listener for ``listen`` from the first source that answers; bound here when none
    does (SO_REUSEPORT only between our own workers: alone, a taken port is an error). A
    source that answers but cannot bind the port says why: that is the app's listen error."""
    for source in sources:
        try:
            got, errors = await loop.run_in_executor(None, fetch_listeners, source, [listen])
        except OSError:
            continue
        if listen in got:
            return got[listen]
        if listen in errors:
            raise OSError(0, _why(listen, app, errors[listen]))
    try:
        return bind_listener(listen, reuse_port=reuse_port)
    except OSError as exc:
        raise OSError(exc.errno, _why(listen, app, exc.strerror or str(exc))) from None


def held(
    sockets: dict[str, socket.socket], wanted: list[str]
) -> tuple[list[str], list[socket.socket], dict[str, str]]:
    """``sockets`` asked for by listen (``["*"]``: all), for the handover."""
    names = list(sockets) if wanted == ["*"] else wanted
    granted = [n for n in names if n in sockets]
    errors = {n: "not held by the proxy" for n in names if n not in sockets}
    return granted, [sockets[n] for n in granted], errors


def _why(listen: str, app: str, reason: str) -> str:
    return f"cannot listen on {listen} for app {app}: {reason}; free the port or change spec.listen"
