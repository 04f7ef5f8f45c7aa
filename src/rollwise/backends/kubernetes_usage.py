"""The CPU a cluster app's pods use, for ``spec.autoscaling``: metrics-server's PodMetrics
(``metrics.k8s.io``, what an HPA and ``kubectl top pod`` read) of rollwise's pods in a
namespace, as a share of each pod's CPU request (an HPA's utilization), read once per
autoscaling interval. The metrics API has no watch, so this is the one place the backend
polls; it runs only for namespaces with an autoscaled app.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

import httpx
import structlog

from rollwise.kubernetes.names import MANAGED_BY
from rollwise.kubernetes.watch import Obj
from rollwise.spec.backend import cpu_cores

__all__ = ["PodUsage"]

log = structlog.get_logger("rollwise.kubernetes")
OURS = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())


def _request(pod: Obj) -> float | None:
    """The pod's CPU request in cores (its containers' sum), if every container has one."""
    total = 0.0
    for container in pod.get("spec", {}).get("containers") or []:
        cpu = ((container.get("resources") or {}).get("requests") or {}).get("cpu")
        if cpu is None:
            return None
        total += cpu_cores(str(cpu))
    return total or None


class PodUsage:
    """``cpu["namespace/pod"]``: the share of its CPU request the pod used in the metrics'
    last window."""

    def __init__(self, http: httpx.AsyncClient, pods: Callable[[str], Iterable[Obj]]) -> None:
        self.http = http
        self.pods = pods  # a namespace's pods as the watch has them (for their requests)
        self.cpu: dict[str, float] = {}
        self._every: dict[str, float] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def measure(self, namespace: str, every: float) -> None:
        """Read ``namespace``'s usage every ``every`` seconds (the shortest asked) from now."""
        self._every[namespace] = min(every, self._every.get(namespace, every))
        if namespace not in self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks[namespace] = loop.create_task(self._poll(namespace), name="pod-usage")

    async def _poll(self, namespace: str) -> None:
        told = ""
        while True:
            try:
                await self.read(namespace)
                told = ""
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                why = _why(exc)
                if why != told:  # said once, until it changes
                    log.warning(
                        "the pods' CPU usage could not be read; autoscaling waits for it",
                        namespace=namespace,
                        error=why,
                    )
                    told = why
            await asyncio.sleep(self._every[namespace])

    async def read(self, namespace: str) -> None:
        answer = await self.http.get(
            f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods",
            params={"labelSelector": OURS},
        )
        answer.raise_for_status()
        requests = {str(p["metadata"]["name"]): _request(p) for p in self.pods(namespace)}
        fresh = {}
        for item in answer.json().get("items") or []:
            name = str(item["metadata"]["name"])
            request = requests.get(name)
            if request:
                used = sum(cpu_cores(str(c["usage"]["cpu"])) for c in item.get("containers") or [])
                fresh[f"{namespace}/{name}"] = used / request
        for key in [k for k in self.cpu if k.startswith(f"{namespace}/")]:
            del self.cpu[key]
        self.cpu.update(fresh)

    async def aclose(self) -> None:
        for task in self._tasks.values():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


def _why(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in (404, 503):
        return (
            f"the metrics API answered {exc.response.status_code}: is metrics-server "
            "installed (kubectl top pod reads the same API)?"
        )
    if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == 403:
        return "403: the controller needs get and list on pods in metrics.k8s.io"
    return str(exc) or type(exc).__name__
