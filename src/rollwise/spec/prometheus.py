"""``analysis.prometheus``: judge canary against baseline from PromQL answers instead of the
built-in proxy's counts (a team whose Prometheus already scrapes its gateway or services).

Three queries per revision, Flagger's MetricTemplate way: the increase of its requests and of
its failures over one ``interval``, and the increase of its latency histogram's buckets
(``sum by (le) (…)``). A query names the revision with ``$`` placeholders (PromQL's own
braces stay as they are): ``$app``, ``$revision``, ``$version``, ``$service``
(``<app>-canary`` for the canary, ``<app>-stable`` for the baseline: the Services of the
Kubernetes backend), ``$namespace`` and ``$interval``. ``preset`` gives the queries for a
known source; ``queries`` overrides any of them.
"""

from __future__ import annotations

import string
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from rollwise.spec.base import Model, http_url
from rollwise.spec.duration import Duration

__all__ = ["GATEWAY_PRESETS", "PRESETS", "PrometheusQueries", "PrometheusSource"]

QUERY_FIELDS = frozenset({"app", "revision", "version", "service", "namespace", "interval"})


def _query_placeholders(value: str) -> str:
    template = string.Template(value)
    if not template.is_valid():
        raise ValueError(f"{value!r}: a '$' that names nothing; write $$ for a dollar sign")
    unknown = sorted(set(template.get_identifiers()) - QUERY_FIELDS)
    if unknown:
        names = ", ".join("$" + f for f in sorted(QUERY_FIELDS))
        raise ValueError(f"unknown placeholder ${unknown[0]}; allowed: {names}")
    return value


Query = Annotated[str, AfterValidator(_query_placeholders)]


class PrometheusQueries(Model):
    requests: Query | None = None
    failures: Query | None = None
    latency: Query | None = None  # a histogram's buckets by ``le``; none: no latency judge data


_ROLLWISE = '{app="$app",revision="$revision"}[$interval]'
_ISTIO = (
    'destination_service_name="$service",destination_service_namespace="$namespace",'
    'reporter="destination"'
)
_NGINX = 'service="$service",namespace="$namespace"'
# per preset: the three queries and the latency histogram's unit (seconds per unit)
PRESETS: dict[str, tuple[PrometheusQueries, float]] = {
    # rollwise's own per-revision series on the controller's /metrics (the built-in proxy)
    "rollwise": (
        PrometheusQueries(
            requests=f"sum(increase(rollwise_requests_total{_ROLLWISE}))",
            failures=f"sum(increase(rollwise_request_failures_total{_ROLLWISE}))",
            latency=f"sum by (le) (increase(rollwise_request_duration_seconds_bucket{_ROLLWISE}))",
        ),
        1.0,
    ),
    # Istio's standard metrics, as the destination's sidecar sees them (milliseconds)
    "istio": (
        PrometheusQueries(
            requests=f"sum(increase(istio_requests_total{{{_ISTIO}}}[$interval]))",
            failures=(
                f'sum(increase(istio_requests_total{{{_ISTIO},response_code=~"5.."}}[$interval]))'
            ),
            latency=(
                "sum by (le) (increase(istio_request_duration_milliseconds_bucket"
                f"{{{_ISTIO}}}[$interval]))"
            ),
        ),
        0.001,
    ),
    # the ingress-nginx controller's metrics, per backend Service
    "ingressNginx": (
        PrometheusQueries(
            requests=f"sum(increase(nginx_ingress_controller_requests{{{_NGINX}}}[$interval]))",
            failures=(
                "sum(increase(nginx_ingress_controller_requests"
                f'{{{_NGINX},status=~"5.."}}[$interval]))'
            ),
            latency=(
                "sum by (le) (increase(nginx_ingress_controller_request_duration_seconds_bucket"
                f"{{{_NGINX}}}[$interval]))"
            ),
        ),
        1.0,
    ),
}


# a revision's pods, as Prometheus' Kubernetes discovery labels them (its Deployment
# <app>-r<N> names them <app>-r<N>-<hash>-<id>)
_PODS = 'namespace="$namespace",pod=~"$app-r$revision-.+"'
GATEWAY_PRESETS = frozenset({"istio", "ingressNginx"})


class PrometheusSource(Model):
    address: Annotated[str, AfterValidator(http_url("http://prometheus:9090"))]
    preset: Literal["rollwise", "istio", "ingressNginx"] | None = None
    queries: PrometheusQueries = Field(default_factory=PrometheusQueries)
    latency_unit: Literal["seconds", "milliseconds"] | None = None  # default: the preset's
    # the query step and the increase window: at least twice the scrape interval (increase
    # needs two samples in its window), four times is safer
    interval: Duration = 10.0
    delay: Duration = 5.0  # a whole interval is in Prometheus this long after it ended
    timeout: Duration = 2.0

    @model_validator(mode="after")
    def _has_queries(self) -> Self:
        resolved = self.resolved()
        if resolved.requests is None or resolved.failures is None:
            raise ValueError(
                "give a preset (rollwise, istio, ingressNginx) or queries.requests and "
                "queries.failures"
            )
        if self.interval < 1:
            raise ValueError(f"interval {self.interval:g}s is below Prometheus' 1s resolution")
        return self

    def resolved(self, a2a_failures: str = "") -> PrometheusQueries:
        """The preset's queries with ``queries`` over them. ``a2a_failures`` (an A2A app on a
        cluster: its failing outcomes as a regular expression) adds to a gateway preset's
        failures those the agents' own counter saw that the gateway did not see as 5xx
        (``rollwise.toolkit.A2AOutcomes``; none, when no pod exports it)."""
        base = PRESETS[self.preset][0] if self.preset else PrometheusQueries()
        if a2a_failures and self.preset in GATEWAY_PRESETS and self.queries.failures is None:
            assert base.failures is not None
            pods = (
                f"sum(increase(rollwise_toolkit_a2a_exchanges_total{{{_PODS},"
                f'outcome=~"{a2a_failures}",code!="5xx"}}[$interval])) or vector(0)'
            )
            base = base.model_copy(update={"failures": f"({base.failures}) + ({pods})"})
        given = self.queries.model_dump(exclude_none=True)
        return base.model_copy(update=given)

    def latency_scale(self) -> float:
        """Seconds per unit of the latency histogram's ``le``."""
        if self.latency_unit is not None:
            return 0.001 if self.latency_unit == "milliseconds" else 1.0
        return PRESETS[self.preset][1] if self.preset else 1.0
