"""One app's feature flags: the spec's ``flags:``, overridden by those set at runtime
(``rollwise flags set|rollout``, kept in the store with who, when and their history), in a
``FlagEngine`` that flagd's core evaluates.

The engine is rebuilt only when the flags change (an apply, a set, a reset); an evaluation
reads it without touching the store. Each change is a ``FlagChanged`` event with the old
and new definitions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from rollwise.errors import NotFoundError, UsageError
from rollwise.flags.client import definition_for
from rollwise.flags.engine import FlagEngine, OfrepAnswer
from rollwise.spec.flags import FlagSpec, flag_key
from rollwise.spec.models import RolloutSpec
from rollwise.store import Store
from rollwise.store.ops import FlagRow
from rollwise.words import EventKind

__all__ = ["AppFlags"]

Emit = Callable[[EventKind, str, int | None, dict[str, Any] | None], None]


class AppFlags:
    def __init__(self, app: str, store: Store, emit: Emit, clock: Callable[[], float]) -> None:
        self.app = app
        self.store = store
        self.emit = emit
        self.clock = clock
        self.engine = FlagEngine()
        self._loaded: tuple[int, int] | None = None
        self._writes = 0
        self._runtime: list[FlagRow] = store.flags(app)  # kept: a view reads no store

    def effective(self, spec: RolloutSpec) -> dict[str, dict[str, Any]]:
        """Each flag's definition and where it comes from (``spec`` or ``runtime``)."""
        flags: dict[str, dict[str, Any]] = {
            key: {"definition": flag.flagd(), "source": "spec", "by": None, "updated": None}
            for key, flag in spec.flags.items()
        }
        for row in self._runtime:
            flags[row.key] = {
                "definition": row.definition,
                "source": "runtime",
                "by": row.by,
                "updated": row.updated,
            }
        return flags

    def current(self, spec: RolloutSpec) -> FlagEngine:
        """The engine, loaded with the flags as they are now."""
        version = (id(spec), self._writes)
        if self._loaded != version:
            self.engine.load({k: v["definition"] for k, v in self.effective(spec).items()})
            self._loaded = version
        return self.engine

    def evaluate(self, spec: RolloutSpec, key: str, context: dict[str, Any]) -> OfrepAnswer:
        return self.current(spec).evaluate(key, context)

    def set(
        self, spec: RolloutSpec, key: str, definition: dict[str, Any], by: str, note: str = ""
    ) -> dict[str, Any]:
        """Set ``key``'s definition (flagd's format) at runtime; refused, changing nothing,
        if it is not a valid flag."""
        try:
            flag_key(key)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        try:
            flag = FlagSpec.model_validate(definition)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'flag'}: {e['msg']}" for e in exc.errors()
            )
            raise UsageError(f"flag {key} of app {self.app} is not valid: {problems}") from None
        old = self.effective(spec).get(key)
        new = flag.flagd()
        self.store.put_flag(self.app, key, new, by, self.clock(), note)
        self._runtime = self.store.flags(self.app)
        self._writes += 1
        self._changed(key, old["definition"] if old else None, new, by, note)
        return new

    def _base(self, spec: RolloutSpec, key: str, variant: str) -> dict[str, Any]:
        """The flag's definition now; a new on/off flag when there is none and ``variant``
        is on or off."""
        current = self.effective(spec).get(key)
        if current is not None:
            definition: dict[str, Any] = dict(current["definition"])
        elif variant in ("on", "off"):
            definition = definition_for(False)
        else:
            raise UsageError(
                f"app {self.app} has no flag {key}; define it in the spec's flags:, or set a "
                "whole definition with --definition '{...}' (on/off makes a boolean flag)"
            )
        if variant not in definition["variants"]:
            raise UsageError(
                f"flag {key} has no variant {variant!r}; its variants: "
                f"{', '.join(definition['variants'])}"
            )
        return definition

    def set_variant(
        self, spec: RolloutSpec, key: str, variant: str, revision: int | None, by: str, note: str
    ) -> dict[str, Any]:
        """Serve ``variant`` to everyone (targeting dropped), or to ``revision`` only (the
        others keep the default variant)."""
        definition = self._base(spec, key, variant)
        definition["state"] = "ENABLED"
        if revision is None:
            definition["defaultVariant"] = variant
            definition.pop("targeting", None)
        else:
            default = definition.get("defaultVariant")
            if default is None:
                raise UsageError(f"flag {key} has no defaultVariant for the other revisions")
            definition["targeting"] = {
                "if": [{"==": [{"var": "revision"}, revision]}, variant, default]
            }
        return self.set(spec, key, definition, by, note)

    def rollout(
        self, spec: RolloutSpec, key: str, percent: float, variant: str | None, by: str, note: str
    ) -> dict[str, Any]:
        """Serve ``variant`` (default ``on``) to ``percent`` % of targeting keys, sticky per
        key (flagd's ``fractional``), the default variant to the others."""
        if not 0 <= percent <= 100:
            raise UsageError(f"--percent must be between 0 and 100, not {percent:g}")
        chosen = variant or "on"
        definition = self._base(spec, key, chosen)
        other = definition.get("defaultVariant")
        if other is None or other == chosen:
            others = [v for v in definition["variants"] if v != chosen]
            if not others:
                raise UsageError(f"flag {key} has one variant: nothing to roll out against")
            other = others[0]
            definition["defaultVariant"] = other
        whole = 100 if float(percent).is_integer() else 10000
        share = round(percent * whole / 100)
        definition["state"] = "ENABLED"
        definition["targeting"] = {"fractional": [[chosen, share], [other, whole - share]]}
        return self.set(spec, key, definition, by, note or f"{percent:g}% {chosen}")

    def reset(self, spec: RolloutSpec, key: str, by: str) -> dict[str, Any] | None:
        """Drop the runtime definition of ``key``: the spec's applies again (or none)."""
        old = self.effective(spec).get(key)
        if old is None or old["source"] != "runtime":
            raise NotFoundError(f"flag {key} of app {self.app} has no runtime definition to reset")
        self.store.drop_flag(self.app, key, by, self.clock())
        self._runtime = self.store.flags(self.app)
        self._writes += 1
        spec_flag = spec.flags.get(key)
        new = spec_flag.flagd() if spec_flag is not None else None
        self._changed(key, old["definition"], new, by, "reset to the spec")
        return new

    def _changed(
        self,
        key: str,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
        by: str,
        note: str,
    ) -> None:
        what = "removed" if new is None else f"default {new.get('defaultVariant')!r}"
        if new is not None and new.get("targeting"):
            what += " with targeting"
        if new is not None and new.get("state") == "DISABLED":
            what = "disabled"
        message = f"flag {key} set by {by}: {what}" + (f" ({note})" if note else "")
        data = {"flag": key, "by": by, "old": old, "new": new, "note": note}
        self.emit(EventKind.FLAG_CHANGED, message, None, data)
