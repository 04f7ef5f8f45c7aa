"""The sockets and servers the controller answers people on: the admin API on its unix
socket (our user and root only), and the token-guarded API and the dashboard on loopback
ports. uvicorn serves them inside the controller's event loop, without its own signal
handling (the controller owns SIGTERM, SIGINT and SIGHUP).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Generator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from rollwise.errors import ControllerError
from rollwise.peer import allowed_peer

__all__ = [
    "admin_server",
    "admin_socket",
    "loopback_server",
    "loopback_socket",
    "own_port",
    "url_host",
]


class _PeerChecked(HttpToolsProtocol):
    """uvicorn's HTTP protocol, refusing peers that are neither our user nor root."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if not allowed_peer(transport):
            body = b'{"error": "this admin socket answers only its owner", "kind": "Forbidden"}'
            transport.write(
                b"HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
            )
            transport.close()
            return
        super().connection_made(transport)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the controller owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def admin_socket(state_dir: Path) -> socket.socket:
    path = state_dir / "admin.sock"
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(128)
    return sock


def loopback_socket(listen: tuple[str, int], flag: str) -> socket.socket:
    host, port = listen
    try:
        sock = socket.create_server((host, port), family=_family(host), backlog=128)
    except OSError as exc:
        raise ControllerError(
            f"cannot listen on {host}:{port} for {flag}: {exc.strerror}; pick another {flag} port"
        ) from None
    return sock


def _server(app: ASGIApp, http: Any) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, http=http)
    return _Server(config)


def loopback_server(app: ASGIApp) -> uvicorn.Server:
    """The admin API behind bearer tokens, or the dashboard, on a loopback port."""
    return _server(app, "httptools")


def admin_server(app: ASGIApp) -> uvicorn.Server:
    """The admin API on its unix socket, refusing other users."""
    return _server(app, _PeerChecked)


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


WILDCARDS = {"", "0.0.0.0", "::"}


def own_port(listen: str, own: dict[str, tuple[str, int]]) -> str | None:
    """Which of the controller's own listeners (flag: (host, port)) ``listen`` would share
    a port with, if any: the proxy could not open it, and the app would get no traffic."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    for flag, (own_host, taken) in own.items():
        same_host = host == own_host or {host, own_host} & WILDCARDS
        if int(port) == taken and same_host:
            return flag
    return None
