"""The monitoring files agree with the code: every metric a dashboard, an alert or the docs
names exists, every metric exists in the docs, and Prometheus scrapes the ports the roles use."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from pulse.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\bpulse_[a-z_]+")


class _Unreachable:
    """A log that cannot be read: the lag collector then yields its family without samples."""

    def end_offsets(self) -> dict[int, int]:
        raise OSError("unreachable")

    def committed(self, group: str) -> dict[int, int]:
        raise OSError("unreachable")


def families() -> dict[str, str]:
    """Family name -> type of every metric a process can expose."""
    metrics = Metrics()
    metrics.watch_lag(_Unreachable(), ["g"])  # type: ignore[arg-type]
    metrics.watch_health(lambda: {"roles": {}})
    return {f.name: f.type for f in metrics.registry.collect()}


def sample_names() -> set[str]:
    names = set()
    for name, kind in families().items():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        names |= {name + s for s in suffixes.get(kind, [""])}
    return names


def expressions_in_dashboard() -> list[str]:
    dashboard: dict[str, Any] = json.loads(
        (ROOT / "deploy/grafana/dashboards/pulse-ledger.json").read_text()
    )
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def test_dashboard_and_alerts_name_only_metrics_that_exist() -> None:
    # given
    alerts = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    rules = [r["expr"] for g in alerts["groups"] for r in g["rules"]]

    # when
    named = {n for expr in [*expressions_in_dashboard(), *rules] for n in NAME.findall(expr)}

    # then
    assert named, "no pulse_* metric found in the files"
    assert named <= sample_names(), f"unknown metrics: {sorted(named - sample_names())}"


def test_operations_doc_lists_every_metric() -> None:
    # given
    doc = (ROOT / "docs/operations.md").read_text()

    # when
    listed = set(re.findall(r"^\| `(pulse_[a-z_]+)`", doc, flags=re.MULTILINE))
    expected = {name + ("_total" if kind == "counter" else "") for name, kind in families().items()}

    # then
    assert listed == expected


def test_prometheus_scrapes_the_ports_the_compose_services_listen_on() -> None:
    # given
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    environment = compose["x-pulse-environment"]
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())

    # when
    targets = {
        job["job_name"]: {t for c in job["static_configs"] for t in c["targets"]}
        for job in config["scrape_configs"]
    }

    # then: the roles on their own listener, the API (which has no second one) on its port
    port = environment["PULSE_METRICS__PORT"]
    assert targets["pulse-roles"] == {f"{s}:{port}" for s in ("ingestor", "writer", "projector")}
    assert targets["pulse-api"] == {"api:8000"}
    assert environment["PULSE_METRICS__HOST"] == "0.0.0.0"
    for service in ("prometheus", "grafana"):
        ports = compose["services"][service]["ports"]
        assert all(str(p).startswith("127.0.0.1:") for p in ports), ports
