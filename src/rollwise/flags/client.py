"""The mission's ``FeatureFlags.set(name, value)`` / ``is_enabled(name)`` over the admin API."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

__all__ = ["FeatureFlags", "definition_for"]


def definition_for(value: Any) -> dict[str, Any]:
    """A flagd definition that serves ``value``: a boolean becomes an on/off flag."""
    if isinstance(value, bool):
        return {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on" if value else "off",
        }
    return {"state": "ENABLED", "variants": {"value": value}, "defaultVariant": "value"}


class FeatureFlags:
    def __init__(self, app: str, state_dir: Path | None = None) -> None:
        self.app = app
        self.state_dir = state_dir

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        from rollwise.client import AdminClient, default_state_dir

        with AdminClient(self.state_dir or default_state_dir()) as client:
            return client.request(method, f"/apps/{self.app}/flags{path}", json=body)

    def set(self, name: str, value: Any, by: str | None = None) -> None:
        """Serve ``value`` for ``name`` from now on (a runtime definition, with history)."""
        body = {"definition": definition_for(value), "by": by or getpass.getuser()}
        self._request("PUT", f"/{name}", body)

    def value(self, name: str, targeting_key: str | None = None, **context: Any) -> Any:
        """``name`` evaluated for this context, as an agent's OFREP call is."""
        if targeting_key is not None:
            context["targetingKey"] = targeting_key
        answer = self._request("POST", f"/{name}/evaluate", {"context": context})
        return answer.get("value")

    def is_enabled(self, name: str, targeting_key: str | None = None, **context: Any) -> bool:
        return self.value(name, targeting_key, **context) is True
