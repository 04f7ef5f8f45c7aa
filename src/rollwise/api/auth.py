"""Bearer tokens for the admin API's loopback listener (``rollwise up --api-listen``).

The unix socket needs no token: the kernel says who is at the other end (``SO_PEERCRED``).
A TCP port on loopback is open to every local user, so it asks for one of two tokens,
created at the first start with mode 0600 in the state directory:

- ``api-token``: every endpoint (what the CLI's user holds);
- ``api-token.read``: the read-only endpoints (GET), for a dashboard or a monitoring job;
  a change asked with it is refused with 403.

Without a token, or with a wrong one, the answer is 401 and nothing is read or changed.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from rollwise.errors import StoreError, UsageError

__all__ = [
    "READ_TOKEN_FILE",
    "TOKEN_FILE",
    "BearerAuth",
    "Tokens",
    "ensure_tokens",
    "loopback_address",
]

TOKEN_FILE = "api-token"
READ_TOKEN_FILE = "api-token.read"
READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Tokens:
    admin: str
    read: str


def _token(path: Path) -> str:
    """The token in ``path``, created (mode 0600) if missing; a file that others could
    read is tightened first."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            os.chmod(path, 0o600)
        token = path.read_text().strip()
        if len(token) < 32:
            raise StoreError(
                f"{path} holds no usable token (under 32 characters); delete it and restart "
                "the controller to create a new one"
            ) from None
        return token
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token


def loopback_address(value: str) -> tuple[str, int]:
    """``127.0.0.1:8470`` or ``[::1]:8470`` as (host, port); anything that is not loopback
    is refused: a token travels in clear text."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    try:
        ip = ipaddress.ip_address("127.0.0.1" if host == "localhost" else host)
        number = int(port)
    except ValueError:
        ip, number = None, -1
    if not sep or ip is None or not 0 <= number <= 65535:
        raise UsageError(f"--api-listen {value!r} is not HOST:PORT; write e.g. 127.0.0.1:8470")
    if not ip.is_loopback:
        raise UsageError(
            f"--api-listen {value}: {host} is not a loopback address; the admin API listens on "
            "127.0.0.1 or ::1 only (its tokens travel in clear text); put a TLS proxy in front "
            "to reach it from elsewhere"
        )
    return str(ip), number


def ensure_tokens(state_dir: Path) -> Tokens:
    try:
        return Tokens(_token(state_dir / TOKEN_FILE), _token(state_dir / READ_TOKEN_FILE))
    except OSError as exc:
        raise StoreError(f"cannot create the API tokens in {state_dir}: {exc}") from None


class BearerAuth:
    """ASGI middleware: ``Authorization: Bearer <token>``, the read token for GETs only."""

    def __init__(self, app: ASGIApp, tokens: Tokens) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, rest = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer":
                    given = rest.strip()
        if hmac.compare_digest(given.encode(), self.tokens.admin.encode()):
            await self.app(scope, receive, send)
        elif hmac.compare_digest(given.encode(), self.tokens.read.encode()):
            if scope["method"] in READ_METHODS:
                await self.app(scope, receive, send)
            else:
                await _refuse(
                    send,
                    403,
                    f"the read-only token cannot change anything; use the token in {TOKEN_FILE}",
                )
        else:
            await _refuse(
                send,
                401,
                f"this listener needs 'Authorization: Bearer <token>'; "
                f"the tokens are in the state directory ({TOKEN_FILE}, "
                f"{READ_TOKEN_FILE})",
            )


async def _refuse(send: Send, status: int, message: str) -> None:
    kind = "Unauthorized" if status == 401 else "Forbidden"
    body = json.dumps({"error": message, "kind": kind}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="rollwise"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
