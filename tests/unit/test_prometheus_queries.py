"""``analysis.prometheus`` in-process: the spec's queries and presets, and how a latency
histogram's ``le`` buckets become the judges' 2 % buckets (the end-to-end run against a real
Prometheus is tests/test_prometheus_source.py)."""

from __future__ import annotations

from rollwise.analysis.prometheus_source import _histograms
from rollwise.routing.proxy.stats import bucket_index
from rollwise.spec.prometheus import PrometheusSource

from ..helpers import assert_spec_refused


def test_presets_queries_and_placeholders() -> None:
    source = PrometheusSource(address="http://127.0.0.1:9090", preset="istio")
    assert source.latency_scale() == 0.001
    assert 'destination_service_name="$service"' in (source.resolved().requests or "")
    mine = PrometheusSource.model_validate(
        {
            "address": "http://127.0.0.1:9090",
            "preset": "rollwise",
            "queries": {"failures": 'sum(increase(errors_total{v="$version"}[$interval]))'},
            "latencyUnit": "milliseconds",
        }
    )
    assert mine.resolved().failures == 'sum(increase(errors_total{v="$version"}[$interval]))'
    assert (mine.resolved().requests or "").startswith("sum(increase(rollwise_requests_total")
    assert mine.latency_scale() == 0.001
    section = "  strategy:\n    canary:\n      analysis:\n        prometheus: "
    assert_spec_refused(
        section,
        {
            "{address: 'http://p:9090'}": "give a preset (rollwise, istio, ingressNginx) or",
            "{address: 'http://p:9090', preset: rollwise, interval: 500ms}": "below Prometheus",
            "{address: 'http://p:9090', queries: {requests: 'x{a=\"$pod\"}', failures: y}}": (
                "unknown placeholder $pod"
            ),
            "{address: 'http://p:9090', queries: {requests: 'x $', failures: y}}": "write $$",
            "{address: p9090, preset: istio}": "is not an http(s) URL",
        },
    )


def test_le_buckets_become_the_judges_buckets_at_their_upper_bound() -> None:
    matrix = [
        ({"le": "0.1"}, [(100, 4.0), (110, 0.0)]),
        ({"le": "0.5"}, [(100, 9.2), (110, 1.0)]),  # increase() extrapolates: rounded
        ({"le": "+Inf"}, [(100, 10.0), (110, 1.0)]),
        ({}, [(100, 99.0)]),  # not a bucket
    ]
    made = _histograms(matrix, 1.0)
    assert made[100] == {bucket_index(0.1): 4, bucket_index(0.5): 5, bucket_index(1.0): 1}
    assert made[110] == {bucket_index(0.5): 1}
    in_ms = _histograms([({"le": "250"}, [(5, 3.0)]), ({"le": "+Inf"}, [(5, 3.0)])], 0.001)
    assert in_ms == {5: {bucket_index(0.25): 3}}
