"""Free loopback ports for replicas and tests."""

from __future__ import annotations

import collections
import socket
import threading

__all__ = ["free_port"]

# The kernel picks a free port at random and may pick the one it gave a moment ago, which
# nobody has bound yet (a replica still starting, a listener not opened): two "free" ports
# that are the same one. Ports handed out lately by this process are not handed out again.
_RECENT: collections.deque[int] = collections.deque(maxlen=4096)
_LOCK = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just gave out, free now and not handed out lately by this process."""
    with _LOCK:
        for _ in range(64):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
            if port not in _RECENT:
                break
        _RECENT.append(port)
        return port
