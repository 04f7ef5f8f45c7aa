"""``AgentSettings``: a base for an agent's typed settings (pydantic-settings), read by
``load_env_config(prefix, AgentSettingsSubclass)``. Its own module: pydantic-settings loads
only for agents that use it (``import rollwise.toolkit`` stays under 150 ms)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["AgentSettings"]


class AgentSettings(BaseSettings):
    """Subclass it with typed fields; unknown variables with the prefix are ignored, names
    are case-insensitive."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)
