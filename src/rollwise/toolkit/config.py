"""``load_env_config(prefix)``: an agent's settings from its environment.

Without a model, as the mission writes it: every variable that starts with ``prefix``. With a
pydantic-settings model (``rollwise.toolkit.settings.AgentSettings`` or any ``BaseSettings``),
typed and validated (``A2A_PORT=abc`` is refused), and a bad value is one line that names
the variable, what it holds and what is expected, never a traceback.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar, overload

from rollwise.errors import UsageError

__all__ = ["load_env_config"]

S = TypeVar("S")


@overload
def load_env_config(prefix: str = "A2A_") -> dict[str, str]: ...


@overload
def load_env_config(prefix: str, model: type[S]) -> S: ...


def load_env_config(prefix: str = "A2A_", model: type[Any] | None = None) -> Any:
    """The variables starting with ``prefix``; with ``model``, validated into it."""
    if model is None:
        return {key: value for key, value in os.environ.items() if key.startswith(prefix)}
    from pydantic import ValidationError

    try:
        return model(_env_prefix=prefix)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            variable = f"{prefix}{field}".upper()
            given = os.environ.get(variable)
            shown = f" (it holds {given!r})" if given is not None else " (not set)"
            problems.append(f"{variable}{shown}: {error['msg']}")
        raise UsageError("; ".join(problems)) from None
