"""A client of the controller's admin API, over its unix socket (what the CLI uses)."""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpcore
import httpx

from rollwise import errors

__all__ = ["AdminClient", "AsyncAdminClient", "default_state_dir", "unix_transport"]


class _UnixStream(httpcore.NetworkStream):
    """A connected unix socket for httpcore (what its sync backend makes, minus TLS)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            self._sock.settimeout(timeout)
            return self._sock.recv(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            self._sock.settimeout(timeout)
            self._sock.sendall(buffer)
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    def close(self) -> None:
        self._sock.close()

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # an idle pooled connection that reads has been closed
            return bool(select.select([self._sock], [], [], 0)[0])
        return self._sock if info == "socket" else None


class _UnixBackend(httpcore.SyncBackend):
    """httpcore's sync backend, but a connect that fails closes its socket: httpcore leaves
    it to the garbage collector, a ``ResourceWarning`` each time a client waits for a
    controller or a proxy that is not up yet."""

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(timeout)
            sock.connect(path)
        except TimeoutError as exc:
            sock.close()
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            sock.close()
            raise httpcore.ConnectError(str(exc)) from exc
        return _UnixStream(sock)


def unix_transport(path: str | Path) -> httpx.HTTPTransport:
    """An ``httpx`` transport to a unix socket (the controller's or the proxy's)."""
    transport = httpx.HTTPTransport(uds=str(path))
    transport._pool = httpcore.ConnectionPool(  # httpx's own limits, our backend
        uds=str(path),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=_UnixBackend(),
    )
    return transport


def default_state_dir() -> Path:
    return Path(os.environ.get("ROLLWISE_STATE_DIR", ".rollwise"))


class AdminClient:
    def __init__(self, state_dir: Path | None = None, timeout: float = 30.0) -> None:
        self.state_dir = (state_dir or default_state_dir()).resolve()
        self.socket = self.state_dir / "admin.sock"
        self._http = httpx.Client(
            transport=unix_transport(self.socket),
            base_url="http://rollwise",
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, "/api/v1" + path, **kwargs)
        except httpx.InvalidURL as exc:
            raise _unsendable(path, exc) from None
        except (httpx.ConnectError, httpx.RemoteProtocolError, FileNotFoundError):
            raise _not_running(self.socket) from None
        except httpx.TimeoutException:
            raise _too_slow(self.socket) from None
        return _answer(resp)

    def running(self) -> bool:
        """Whether a controller answers; a connection reset while one starts or stops (its
        socket replaced under a waiting connection) is a no, not an error."""
        try:
            self.request("GET", "/version")
        except (errors.ControllerError, httpx.ReadError, httpx.WriteError):
            return False
        return True


class AsyncAdminClient:
    """The same API for asyncio code (the Python deployment API), errors included."""

    def __init__(self, state_dir: Path | None = None, timeout: float = 30.0) -> None:
        self.state_dir = (state_dir or default_state_dir()).resolve()
        self.socket = self.state_dir / "admin.sock"
        # No idle connection is kept: the Python API's objects are used from one event loop
        # after another (``asyncio.run`` each) and are seldom closed by their callers.
        self._http = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(
                uds=str(self.socket), limits=httpx.Limits(max_keepalive_connections=0)
            ),
            base_url="http://rollwise",
            timeout=timeout,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = await self._http.request(method, "/api/v1" + path, **kwargs)
        except httpx.InvalidURL as exc:
            raise _unsendable(path, exc) from None
        except (httpx.ConnectError, httpx.RemoteProtocolError, FileNotFoundError):
            raise _not_running(self.socket) from None
        except httpx.TimeoutException:
            raise _too_slow(self.socket) from None
        return _answer(resp)

    async def running(self) -> bool:
        try:
            await self.request("GET", "/version")
        except (errors.ControllerError, httpx.ReadError, httpx.WriteError):
            return False
        return True


def _not_running(socket: Path) -> errors.ControllerNotRunning:
    return errors.ControllerNotRunning(
        f"no controller answers on {socket}; start one with `rollwise up` (or pass --state-dir)"
    )


def _unsendable(path: str, exc: Exception) -> errors.UsageError:
    return errors.UsageError(
        f"{path!r} cannot be asked for ({exc}); app names are lowercase letters, digits and '-'"
    )


def _too_slow(socket: Path) -> errors.ControllerError:
    return errors.ControllerError(f"the controller on {socket} did not answer in time")


def _answer(resp: httpx.Response) -> Any:
    """The JSON (or text) of a 2xx answer; otherwise the error the controller named, raised here."""
    if resp.status_code < 400:
        if resp.headers.get("content-type", "").startswith("application/json"):
            return resp.json()
        return resp.text  # the rules of ``rollwise slo rules``
    try:
        data = resp.json()
        kind = getattr(errors, str(data.get("kind")), errors.ControllerError)
        message = str(data.get("error"))
    except ValueError:
        kind, message = errors.ControllerError, resp.text
    if not (isinstance(kind, type) and issubclass(kind, errors.RollwiseError)):
        kind = errors.ControllerError
    if kind is errors.SpecError:
        raise errors.SpecError(message.splitlines())
    raise kind(message)
