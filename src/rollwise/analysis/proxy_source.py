"""The built-in proxy's statistics as a ``MetricSource``.

The proxy counts every request per app listener, revision and second (``routing/proxy/
stats.py``) and keeps 15 minutes of seconds. An app's revisions are served on its main
listener and, for a blue-green preview, on the preview listener: both count for the revision.
"""

from __future__ import annotations

from typing import Any

from rollwise.analysis.source import SecondCounts, Series, merge_seconds
from rollwise.routing.dataplane import DataPlane
from rollwise.words import preview_app

__all__ = ["ProxyMetrics"]


class ProxyMetrics:
    settle_s = 1.25  # the proxy's workers have all counted a second by then

    def __init__(self, dataplane: DataPlane) -> None:
        self.dataplane = dataplane

    async def seconds(self, app: str, since: int, *, preview: bool = True) -> Series:
        listeners = [app, preview_app(app)] if preview else [app]
        stats = await self.dataplane.stats(since, listeners)
        return merge_seconds(_series(stats.get("apps", {}).get(name, {})) for name in listeners)


def _series(revisions: dict[str, Any]) -> Series:
    return {
        int(revision): {
            int(second): SecondCounts.from_json(counts)
            for second, counts in body.get("seconds", {}).items()
        }
        for revision, body in revisions.items()
        if revision.isdigit()
    }
