"""A controller that acts only while it holds the Lease (``rollwise up --leader-elect``).

It waits for the Lease before it starts (no admin socket, nothing adopted, nothing pushed),
renews it while it runs, and gives it up when it stops cleanly. When the Lease is lost it
*leaves*, as ``rollwise restart`` does: it stops acting at once and leaves what serves
serving, then exits 3 so that its supervisor (the pod's restart policy, systemd) brings it
back as a candidate. The renew deadline is shorter than the lease, so the old leader has
stopped acting before a new one may start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Awaitable
from typing import Protocol

from rollwise.kubernetes.lease import Elector

__all__ = ["Leading", "identity", "lead"]


class Leading(Protocol):
    """What ``lead`` needs of a controller."""

    def run(self) -> Awaitable[None]: ...

    def leave(self) -> None: ...


def identity() -> str:
    """This candidate's name in ``holderIdentity``: host, pid, and a random part for the
    case of two processes with one pid (two pods' pid namespaces)."""
    return f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:6]}"


async def lead(controller: Leading, elector: Elector) -> None:
    """Run ``controller`` while holding the Lease. Raises ``LeadershipLost`` (after the
    controller has left) when the Lease is lost."""
    await elector.acquire()
    runner = asyncio.ensure_future(controller.run())
    holder = asyncio.ensure_future(elector.hold())
    await asyncio.wait({runner, holder}, return_when=asyncio.FIRST_COMPLETED)
    if holder.done():
        controller.leave()
        await runner
        holder.result()  # raises LeadershipLost, which is why hold() ended
    holder.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await holder
    await elector.release()
    runner.result()
