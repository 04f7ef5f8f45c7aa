"""Listening sockets handed from process to process (``SCM_RIGHTS`` over a unix socket), so
that a public listener outlives the proxy that accepts on it.

The controller's ``ListenerKeeper`` binds every listener the routing table needs and keeps
it; the proxy (each of its workers) asks for the ones it serves and accepts on those same
sockets. A proxy killed with ``-9`` leaves them open in the keeper: new connections wait in
the kernel's backlog and the next proxy accepts them, instead of being refused (HAProxy's
``expose-fd listeners``). The proxy serves the sockets it holds the same way, so that a
restarted controller takes them back from a proxy that outlived it (HAProxy's ``-x``).

One request per connection: a JSON line ``{"listen": ["127.0.0.1:8080", ...]}`` (``["*"]``:
all held); one answer: a JSON line ``{"listen": [...in the order of the fds], "errors":
{listen: reason}}`` with the descriptors attached.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import structlog

__all__ = [
    "ListenerKeeper",
    "bind_listener",
    "fetch_listeners",
    "handover_path",
    "serve_listeners",
    "unlink_if_ours",
]

log = structlog.get_logger("rollwise.handover")

MAX_FDS = 250  # one message; the kernel's SCM_MAX_FD is 253
TIMEOUT_S = 2.0


def handover_path(admin_socket: str | Path) -> Path:
    """Where a proxy process hands over the listening sockets it holds: beside its admin
    socket."""
    return Path(f"{admin_socket}.fds")


# listens asked for → (granted listens, their sockets, errors by listen)
Provide = Callable[[list[str]], tuple[list[str], list[socket.socket], dict[str, str]]]


def unlink_if_ours(path: str | Path, inode: int) -> None:
    """Remove the socket file at ``path`` if it is still the one we bound (``inode``): a
    proxy that replaced this one has put its own there."""
    with contextlib.suppress(FileNotFoundError):
        if os.stat(path).st_ino == inode:
            os.unlink(path)


def serve_listeners(path: Path, provide: Provide) -> Callable[[], None]:
    """Answer requests on ``path`` (mode 0600) from a daemon thread; the stop function."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    os.chmod(path, 0o600)
    server.listen(16)
    stopping = threading.Event()
    ours = os.stat(path).st_ino

    def loop() -> None:
        while not stopping.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.settimeout(TIMEOUT_S)
                    _answer(conn, provide)
                except (OSError, ValueError) as exc:
                    log.warning("listener handover failed", error=str(exc))

    def stop() -> None:
        stopping.set()
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)
        server.close()
        unlink_if_ours(path, ours)

    threading.Thread(target=loop, name="listener-handover", daemon=True).start()
    return stop


def _answer(conn: socket.socket, provide: Provide) -> None:
    request = json.loads(_readline(conn))
    wanted = [str(x) for x in request.get("listen", [])][:MAX_FDS]
    granted, sockets, errors = provide(wanted)
    header = json.dumps({"listen": granted, "errors": errors}).encode() + b"\n"
    socket.send_fds(conn, [header], [s.fileno() for s in sockets])


def _readline(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def fetch_listeners(
    path: Path, listens: list[str]
) -> tuple[dict[str, socket.socket], dict[str, str]]:
    """Ask the process serving ``path`` for ``listens`` (``["*"]``: all it holds): the
    sockets by listen, and why the others could not be had. ``OSError`` when nobody
    answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(TIMEOUT_S)
        conn.connect(str(path))
        conn.sendall(json.dumps({"listen": listens}).encode() + b"\n")
        message, fds, _, _ = socket.recv_fds(conn, 1 << 20, MAX_FDS)
    header = json.loads(message.split(b"\n", 1)[0] or b"{}")
    granted = [str(x) for x in header.get("listen", [])]
    sockets = {listen: socket.socket(fileno=fd) for listen, fd in zip(granted, fds, strict=False)}
    for fd in fds[len(granted) :]:
        os.close(fd)
    return sockets, {str(k): str(v) for k, v in header.get("errors", {}).items()}


class ListenerKeeper:
    """The listeners of every app, bound once and kept while the table names them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sockets: dict[str, socket.socket] = {}
        self._lock = threading.Lock()
        self._stop: Callable[[], None] | None = None

    def start(self) -> None:
        if self._stop is None:
            self._stop = serve_listeners(self.path, self.provide)

    def provide(self, wanted: list[str]) -> tuple[list[str], list[socket.socket], dict[str, str]]:
        granted: list[str] = []
        sockets: list[socket.socket] = []
        errors: dict[str, str] = {}
        with self._lock:
            names = list(self.sockets) if wanted == ["*"] else wanted
            for listen in names:
                sock = self.sockets.get(listen)
                if sock is None:
                    try:
                        sock = self.sockets[listen] = bind_listener(listen)
                    except OSError as exc:
                        errors[listen] = exc.strerror or str(exc)
                        continue
                granted.append(listen)
                sockets.append(sock)
        return granted, sockets, errors

    def adopt(self, sockets: dict[str, socket.socket]) -> None:
        """Hold sockets a running proxy had (a restarted controller takes them back)."""
        with self._lock:
            for listen, sock in sockets.items():
                old = self.sockets.get(listen)
                if old is None:
                    self.sockets[listen] = sock
                else:
                    sock.close()

    def retain(self, listens: set[str]) -> None:
        """Close the listeners no table names any more (their ports are free again)."""
        with self._lock:
            for listen in [k for k in self.sockets if k not in listens]:
                self.sockets.pop(listen).close()

    def close(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None
        with self._lock:
            for sock in self.sockets.values():
                sock.close()
            self.sockets.clear()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def bind_listener(listen: str, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``[v6]:port`` too)."""
    host, _, port = listen.rpartition(":")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host.strip("[]"), int(port)))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
