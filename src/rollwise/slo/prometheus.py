"""SLOs the Prometheus way: the ``slo:*`` series rollwise exports, and the rules a team's own
Prometheus can run instead.

Names and labels are Sloth's (``slo:sli_error:ratio_rate5m``, ``slo:error_budget:ratio``,
``slo:current_burn_rate:ratio``, ... with ``sloth_service`` = the app, ``sloth_slo`` = the
SLO, ``sloth_id`` = both), so Sloth's and Pyrra's dashboards read them. Two ways to use them:

- scrape rollwise's ``/metrics``: the ``slo:*`` series are computed from the controller's
  stored rows (so a window of days survives restarts), and ``rollwise slo rules APP
  --alerts-only`` writes the alerting rules over them;
- or compute them in Prometheus from the counters ``rollwise_slo_requests_total`` and
  ``rollwise_slo_bad_requests_total`` with ``rollwise slo rules APP`` (recording and
  alerting rules); then drop the exported ``slo:*`` series at scrape time
  (``metric_relabel_configs``) so the two do not mix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import yaml
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rollwise._version import __version__
from rollwise.slo.alertmanager import ALERT_NAME
from rollwise.slo.budget import SloReport, burn_rate, prometheus_duration, windows_of
from rollwise.spec import RolloutSpec
from rollwise.spec.slo import Objective

__all__ = ["SloSeries", "rules"]

_LABELS = ["sloth_id", "sloth_service", "sloth_slo"]
_WINDOW_LABELS = [*_LABELS, "sloth_window"]


def _ids(app: str, slo: str) -> list[str]:
    return [f"{app}-{slo}", app, slo]


class SloSeries(Collector):
    """The ``slo:*`` gauges of every evaluated SLO, at each scrape."""

    def __init__(self, reports: Callable[[], list[SloReport]]) -> None:
        self.reports = reports

    def collect(self) -> Iterator[Metric]:
        reports = self.reports()
        ratios: dict[str, GaugeMetricFamily] = {}
        gauges = {
            name: GaugeMetricFamily(name, text, labels=_LABELS)
            for name, text in [
                ("slo:objective:ratio", "The SLO's target"),
                ("slo:error_budget:ratio", "The share of requests allowed to be bad"),
                ("slo:time_period:days", "The SLO's rolling window, in days"),
                ("slo:current_burn_rate:ratio", "Burn rate over the shortest alert window"),
                ("slo:period_burn_rate:ratio", "Burn rate over the SLO's window"),
                ("slo:period_error_budget_remaining:ratio", "Error budget left"),
            ]
        }
        info = GaugeMetricFamily(
            "sloth_slo_info", "SLOs rollwise evaluates", labels=[*_LABELS, "sloth_objective"]
        )
        for report in reports:
            objective = report.objective
            labels = _ids(report.app, objective.name)
            for window, figures in report.figures.items():
                name = f"slo:sli_error:ratio_rate{prometheus_duration(window)}"
                family = ratios.get(name)
                if family is None:
                    family = ratios[name] = GaugeMetricFamily(
                        name, "Share of bad requests over the window", labels=_WINDOW_LABELS
                    )
                family.add_metric([*labels, prometheus_duration(window)], figures.error_ratio)
            period = burn_rate(report.period.error_ratio, objective.target)
            for name, value in [
                ("slo:objective:ratio", objective.target),
                ("slo:error_budget:ratio", objective.error_budget),
                ("slo:time_period:days", objective.window / 86400),
                ("slo:current_burn_rate:ratio", report.current_burn_rate),
                ("slo:period_burn_rate:ratio", period),
                ("slo:period_error_budget_remaining:ratio", 1 - period),
            ]:
                gauges[name].add_metric(labels, value)
            info.add_metric([*labels, f"{objective.target * 100:g}"], 1)
        yield from ratios.values()
        if reports:
            yield from gauges.values()
            yield info


def _selector(app: str, slo: str) -> str:
    return f'sloth_id="{app}-{slo}", sloth_service="{app}", sloth_slo="{slo}"'


def _recordings(app: str, objective: Objective, spec: RolloutSpec) -> list[dict[str, Any]]:
    sel = f'app="{app}", slo="{objective.name}"'
    ids = dict(zip(_LABELS, _ids(app, objective.name), strict=True))
    out: list[dict[str, Any]] = []
    for window in windows_of(objective, spec.alerting.windows):
        w = prometheus_duration(window)
        out.append(
            {
                "record": f"slo:sli_error:ratio_rate{w}",
                "expr": f"(sum(rate(rollwise_slo_bad_requests_total{{{sel}}}[{w}])))\n"
                f"/\n(sum(rate(rollwise_slo_requests_total{{{sel}}}[{w}])))\n",
                "labels": {**ids, "sloth_window": w},
            }
        )
    shortest = prometheus_duration(min(windows_of(objective, spec.alerting.windows)))
    period = prometheus_duration(objective.window)
    me = _selector(app, objective.name)
    on = "on(sloth_id, sloth_slo, sloth_service) group_left"
    meta = [
        ("slo:objective:ratio", f"vector({objective.target!r})"),
        ("slo:error_budget:ratio", f"vector(1 - {objective.target!r})"),
        ("slo:time_period:days", f"vector({objective.window / 86400!r})"),
        (
            "slo:current_burn_rate:ratio",
            f"slo:sli_error:ratio_rate{shortest}{{{me}}}\n/ {on}\nslo:error_budget:ratio{{{me}}}\n",
        ),
        (
            "slo:period_burn_rate:ratio",
            f"slo:sli_error:ratio_rate{period}{{{me}}}\n/ {on}\nslo:error_budget:ratio{{{me}}}\n",
        ),
        ("slo:period_error_budget_remaining:ratio", f"1 - slo:period_burn_rate:ratio{{{me}}}"),
    ]
    out += [{"record": name, "expr": expr, "labels": ids} for name, expr in meta]
    out.append(
        {
            "record": "sloth_slo_info",
            "expr": "vector(1)",
            "labels": {
                **ids,
                "sloth_objective": f"{objective.target * 100:g}",
                "sloth_version": f"rollwise-{__version__}",
            },
        }
    )
    return out


def _alerts(app: str, objective: Objective, spec: RolloutSpec) -> list[dict[str, Any]]:
    me = _selector(app, objective.name)
    budget = objective.error_budget
    out = []
    for window in spec.alerting.windows:
        long_w = prometheus_duration(window.long)
        short_w = prometheus_duration(window.short_s)
        limit = f"({window.burn_rate!r} * {budget!r})"
        rule: dict[str, Any] = {
            "alert": ALERT_NAME,
            "expr": (
                f"(max(slo:sli_error:ratio_rate{short_w}{{{me}}} > {limit}) without (sloth_window)"
                f"\nand\nmax(slo:sli_error:ratio_rate{long_w}{{{me}}} > {limit}) without "
                "(sloth_window))\n"
            ),
            "labels": {
                "app": app,
                "slo": objective.name,
                "severity": window.severity,
                "window": window.name,
                "sloth_severity": window.severity,
            },
            "annotations": {
                "summary": (
                    f"SLO {objective.name} of {app} burns its error budget at least "
                    f"{window.burn_rate:g}x over {long_w} and {short_w}"
                ),
                "title": f"{window.severity}: {app} {objective.name} error budget burn",
            },
        }
        if window.for_:
            rule["for"] = prometheus_duration(window.for_)
        if objective.runbook:
            key = "runbook_url" if objective.runbook.startswith("http") else "runbook"
            rule["annotations"][key] = objective.runbook
        out.append(rule)
    return out


def rules(app: str, spec: RolloutSpec, *, alerts_only: bool = False) -> str:
    """A Prometheus rule file (YAML) for every SLO of ``app``."""
    groups: list[dict[str, Any]] = []
    for objective in spec.slos:
        if not alerts_only:
            groups.append(
                {
                    "name": f"rollwise-slo-recordings-{app}-{objective.name}",
                    "rules": _recordings(app, objective, spec),
                }
            )
        groups.append(
            {
                "name": f"rollwise-slo-alerts-{app}-{objective.name}",
                "rules": _alerts(app, objective, spec),
            }
        )
    header = (
        f"# Prometheus rules for the SLOs of {app}, written by `rollwise slo rules`.\n"
        "# Load them with rule_files: in prometheus.yml; check them with promtool check rules.\n"
    )
    return header + yaml.safe_dump({"groups": groups}, sort_keys=False, width=100)
