"""A client of the controller's admin API, over its unix socket (what the CLI uses)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from rollwise import errors

__all__ = ["AdminClient", "AsyncAdminClient", "default_state_dir"]


def default_state_dir() -> Path:
    return Path(os.environ.get("ROLLWISE_STATE_DIR", ".rollwise"))


class AdminClient:
    def __init__(self, state_dir: Path | None = None, timeout: float = 30.0) -> None:
        self.state_dir = (state_dir or default_state_dir()).resolve()
        self.socket = self.state_dir / "admin.sock"
        self._http = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(self.socket)),
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
        try:
            self.request("GET", "/version")
        except errors.ControllerError:
            return False
        return True


class AsyncAdminClient:
    """The same API for asyncio code (the Python deployment API), errors included."""

    def __init__(self, state_dir: Path | None = None, timeout: float = 30.0) -> None:
        self.state_dir = (state_dir or default_state_dir()).resolve()
        self.socket = self.state_dir / "admin.sock"
        self._http = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(self.socket)),
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
        except errors.ControllerError:
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
    """The JSON of a 2xx answer; otherwise the error the controller named, raised here."""
    if resp.status_code < 400:
        return resp.json()
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
