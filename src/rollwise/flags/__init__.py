"""Feature flags, OpenFeature-native: flagd's definitions evaluated by flagd's core and
served over OFREP by the controller (docs/operations.md, *Feature flags*).

``FeatureFlags`` is the mission's call over a running controller's admin API:

    flags = FeatureFlags("sample-agent")
    flags.set("shout", True)          # a boolean flag, "on" by default
    flags.is_enabled("shout")         # evaluated as an agent's OFREP call would be
"""

from rollwise.flags.client import FeatureFlags

__all__ = ["FeatureFlags"]
