"""``flags:``: feature flags in flagd's flag-definition format (the OpenFeature project's).

    flags:
      shout:
        state: ENABLED                    # or DISABLED: every evaluation gets the caller's default
        variants: {"on": true, "off": false}   # quote on/off: YAML reads them as booleans
        defaultVariant: "off"
        targeting:                        # JsonLogic, with flagd's fractional, sem_ver, ...
          if: [{"==": [{var: role}, canary]}, "on", "off"]

The controller evaluates them with flagd's own evaluation core and serves them over OFREP
(``rollwise.flags``); each evaluation's context carries ``app``, ``revision`` and ``role``
(``stable``, ``canary``, ...) of the replica that asks, so targeting can scope a flag to a
revision. ``rollwise flags set|rollout`` change them at runtime, kept with their history.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from rollwise.spec.base import Model

__all__ = ["FLAG_KEY_RE", "FlagKey", "FlagSpec", "flag_key", "flag_kind"]

FLAG_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def flag_key(value: str) -> str:
    """``value`` if it can name a flag (it goes into OFREP's URLs); else ``ValueError``."""
    if not FLAG_KEY_RE.match(value):
        raise ValueError(
            f"flag key {value!r} cannot be used; use letters, digits, '.', '_' and '-' "
            "(at most 128, starting with a letter or digit), e.g. new-greeting"
        )
    return value


FlagKey = Annotated[str, AfterValidator(flag_key)]

Value = bool | int | float | str | dict[str, Any] | list[Any]


def _variant_names(value: object) -> object:
    if isinstance(value, dict):
        for name in value:
            if isinstance(name, bool):  # pydantic reports a ValueError, not a TypeError
                raise ValueError(  # noqa: TRY004
                    f"a variant named {str(name).lower()!r} reads as a boolean in YAML (on, off, "
                    'yes and no do); quote it: "on": true'
                )
    return value


def flag_kind(
    variants: dict[str, Any],
) -> Literal["boolean", "string", "integer", "float", "object"]:
    """The flag's type, as flagd infers it from its variants (one type for all)."""
    values = list(variants.values())
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    if all(isinstance(v, str) for v in values):
        return "string"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "integer"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "float"
    if all(isinstance(v, dict | list) for v in values):
        return "object"
    raise ValueError("the variants mix types (boolean, string, number, object); give them one type")


class FlagSpec(Model):
    state: Literal["ENABLED", "DISABLED"] = "ENABLED"
    variants: Annotated[dict[str, Value], BeforeValidator(_variant_names), Field(min_length=1)]
    default_variant: str | None = None
    targeting: dict[str, Any] | None = None
    metadata: dict[str, bool | int | float | str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        flag_kind(self.variants)
        if self.default_variant is not None and self.default_variant not in self.variants:
            raise ValueError(
                f"defaultVariant {self.default_variant!r} is not among the variants "
                f"({', '.join(self.variants)})"
            )
        return self

    def flagd(self) -> dict[str, Any]:
        """The flag as flagd's flag-definition JSON."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
