"""Who is at the other end of a unix socket, from the kernel (``SO_PEERCRED``).

The admin sockets of the controller and the proxy are mode 0600 in a private directory; the
peer check holds even if the file mode or the directory is loosened: a connection from any
user other than the owner (or root) is refused before a request is read.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct

__all__ = ["allowed_peer", "peer_uid"]

_UCRED = struct.Struct("3i")


def peer_uid(transport: asyncio.BaseTransport) -> int | None:
    """The user id of the process at the other end of a unix socket, from the kernel."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return None
    try:
        _, uid, _ = _UCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
        )
    except OSError:
        return None
    return int(uid)


def allowed_peer(transport: asyncio.BaseTransport) -> bool:
    return peer_uid(transport) in (os.getuid(), 0)
