"""Secret values kept out of everything rollwise shows: logs, events, the admin API, history
and webhooks.

An env value is secret when its name is listed in ``secretEnv`` or looks like a secret's
(``*_TOKEN``, ``*_KEY``, ``*PASSWORD*``, ``*SECRET*``, ``*CREDENTIAL*``). Hiding it by name
is not enough: a replica that prints its token lands it in a crash loop's "last log line", a
smoke check's output can echo it, and both travel into events, webhooks and ``rollwise
get``. So the controller registers the value of every secret it is given (at start, on apply
and on deploy), and each way out replaces those values, wherever they occur, with ``***``.

Values shorter than six characters are hidden by name only: replacing every "1" in the
output would hide more than it protects.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

__all__ = ["MASK", "SECRETS", "Secrets", "is_secret_name", "remember_secrets"]

MASK = "***"
MIN_LENGTH = 6

# Suffixes for TOKEN and KEY: MAX_TOKENS or KEY_FILE name no secret.
_SECRET_NAME = re.compile(
    r"SECRET|PASSW|PASSPHRASE|CREDENTIAL|PRIVATE_?KEY|(^|_)(API_?KEY|KEY|TOKEN)$", re.I
)


def is_secret_name(name: str) -> bool:
    """Whether an env name looks like it holds a secret (``DB_PASSWORD``, ``SIGNING_KEY``)."""
    return bool(_SECRET_NAME.search(name))


class Secrets:
    """The secret values this process has been given, and their redaction."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, values: Iterable[str]) -> None:
        new = {v for v in values if len(v) >= MIN_LENGTH} - self._values
        if not new:
            return
        with self._lock:
            self._values |= new
            # longest first: a secret that contains another is hidden whole
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def text(self, value: str) -> str:
        pattern = self._pattern
        return value if pattern is None else pattern.sub(MASK, value)

    def redact(self, value: Any) -> Any:
        """``value`` with every secret replaced, through dicts, lists and tuples."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.redact(k): self.redact(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact(v) for v in value]
        return value

    def processor(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """A structlog processor: log lines carry no secret value (tracebacks included)."""
        if self._pattern is None:
            return event_dict
        return {k: self.redact(v) for k, v in event_dict.items()}


# One per process: the log pipeline, the event writer and the admin API all read it.
SECRETS = Secrets()


def remember_secrets(spec: Mapping[str, Any]) -> None:
    """Register the secret env values of a rollout spec (as stored: camelCase JSON)."""
    template = spec.get("spec", {}).get("template", {}) if isinstance(spec, Mapping) else {}
    env = template.get("env") or {}
    listed = set(template.get("secretEnv") or [])
    SECRETS.add(str(value) for name, value in env.items() if name in listed or is_secret_name(name))
