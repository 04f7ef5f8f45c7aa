"""A client of the controller's admin API, over its unix socket (what the CLI uses)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from rollwise import errors

__all__ = ["AdminClient", "default_state_dir"]


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
        except (httpx.ConnectError, httpx.RemoteProtocolError, FileNotFoundError):
            raise errors.ControllerNotRunning(
                f"no controller answers on {self.socket}; start one with `rollwise up` "
                "(or pass --state-dir)"
            ) from None
        except httpx.TimeoutException:
            raise errors.ControllerError(
                f"the controller on {self.socket} did not answer in time"
            ) from None
        if resp.status_code >= 400:
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
        return resp.json()

    def running(self) -> bool:
        try:
            self.request("GET", "/version")
        except errors.ControllerError:
            return False
        return True
