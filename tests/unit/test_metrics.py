"""/metrics of every role, scraped over HTTP while real traffic goes through the real gRPC
ingestor (embedded backend): the counters move with what was sent, and nothing else."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from access.keys import Role, new_key
from ledger.ports import OutgoingRecord
from ledger.writer import wait_until
from pulse.bootstrap import Parts, build
from pulse.demo.client import IngestClient, make_pulse
from pulse.metrics import Metrics
from pulse.runtime import ApiServer, Running, caught_up, start, start_api
from pulse.settings import (
    ApiSettings,
    AuthSettings,
    Backend,
    EmbeddedSettings,
    MetricsSettings,
    Settings,
)
from pulse.supervision import Health

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(port: int, path: str = "/metrics") -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
        return parse(answer.read().decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def settings_of(root: Path, metrics_port: int = 0, auth: str = "off") -> Settings:
    return Settings(
        backend=Backend.EMBEDDED,
        embedded=EmbeddedSettings(path=root, partitions=2),
        api=ApiSettings(host="127.0.0.1", port=0),
        auth=AuthSettings(mode="on" if auth == "on" else "off"),
        metrics=MetricsSettings(port=metrics_port),
    )


class Roles:
    """Ingestor, writer and projector each in a `Running` of its own with its own metrics
    port (as `pulse serve ROLE` runs them), plus the API, all on one embedded store."""

    def __init__(self, root: Path) -> None:
        self.settings = settings_of(root)
        self.parts: Parts = build(self.settings)
        self.ports: dict[str, int] = {}
        self.running: dict[str, Running] = {}
        for role in ("ingestor", "writer", "projector"):
            own = settings_of(root, free_port())
            self.running[role] = start(own, self.parts, {role}, grpc_address="127.0.0.1:0")
            self.ports[role] = self.running[role].metrics_port
        self.api: ApiServer = start_api(self.settings, self.parts, Health(stuck_after=60))
        self.ports["api"] = self.api.port
        self.client = IngestClient(f"127.0.0.1:{self.running['ingestor'].grpc_port}")

    def close(self) -> None:
        self.client.close()
        self.api.stop()
        for running in self.running.values():
            running.stop(grace=1)
        self.parts.close()


@pytest.fixture
def roles(tmp_path: Path) -> Iterator[Roles]:
    started = Roles(tmp_path / "data")
    yield started
    started.close()


def test_each_role_counts_the_traffic_it_handled(roles: Roles) -> None:
    # given: every role answers /metrics before any traffic
    assert all(port > 0 for port in roles.ports.values())
    before = {role: scrape(port) for role, port in roles.ports.items()}
    assert value(before["ingestor"], "pulse_ingest_pulses_total", outcome="accepted") == 0
    at = datetime.now(UTC) - timedelta(minutes=5)
    pulses = [make_pulse(f"p-{i}", "acme", "network.egress", "1.5", "GB", at) for i in range(5)]

    # when: 5 new pulses, 2 rejected, then 2 of them again and 1 reused id with a new payload
    results = roles.client.ingest(
        [
            *pulses,
            make_pulse("bad-unit", "acme", "network.egress", "1", "parsecs", at),
            make_pulse("bad-amount", "acme", "network.egress", "-1", "GB", at),
        ]
    )
    assert sum(r.status == r.ACCEPTED for r in results) == 5
    changed = make_pulse("p-0", "acme", "network.egress", "9", "GB", at)
    roles.client.ingest([pulses[1], pulses[2], changed])
    assert wait_until(lambda: caught_up(roles.settings, roles.parts), 15)
    with httpx.Client(base_url=f"http://127.0.0.1:{roles.ports['api']}") as http:
        usage = http.get(
            "/v1/tenants/acme/usage",
            params={"start": (at - timedelta(hours=1)).isoformat(), "end": at.isoformat()},
        )
        assert usage.status_code == 200
        assert http.get("/no/such/route").status_code == 404

    # then: the ingestor counted what it answered, by outcome and field
    ingest = scrape(roles.ports["ingestor"])
    assert value(ingest, "pulse_ingest_pulses_total", outcome="accepted") == 8
    assert value(ingest, "pulse_ingest_pulses_total", outcome="rejected") == 2
    assert value(ingest, "pulse_ingest_rejections_total", field="use_unit") == 1
    assert value(ingest, "pulse_ingest_rejections_total", field="used_amount") == 1
    assert value(ingest, "pulse_ingest_publish_seconds_count") == 2
    # the writer: batches, new / duplicate / conflict, dead letters, no lag once caught up
    writer = scrape(roles.ports["writer"])
    assert value(writer, "pulse_writer_batch_records_sum") == 8
    assert value(writer, "pulse_writer_records_total", result="written") == 5
    assert value(writer, "pulse_writer_records_total", result="duplicate") == 2
    assert value(writer, "pulse_writer_records_total", result="conflict") == 1
    assert value(writer, "pulse_writer_dead_letters_total", reason="conflict") == 1
    writer_lag = {k: v for k, v in writer.items() if k[0] == "pulse_consumer_lag"}
    assert len(writer_lag) == 2  # one per partition of the writer group
    assert set(writer_lag.values()) == {0.0}
    # the projector: one freshness sample per record it made visible, its own group's lag
    projector = scrape(roles.ports["projector"])
    assert value(projector, "pulse_projector_freshness_seconds_count") == 8
    assert 0 < value(projector, "pulse_projector_freshness_seconds_sum") < 8 * 30
    assert value(projector, "pulse_projector_hours_total") >= 1
    assert value(projector, "pulse_role_ready", role="projector") == 1
    assert value(writer, "pulse_role_ready", role="writer") == 1
    groups = {dict(k[1])["group"] for k in projector if k[0] == "pulse_consumer_lag"}
    assert groups == {roles.settings.kafka.projector_group}
    # the API: latency by route template (never the tenant's id), unmatched paths bounded
    api = scrape(roles.ports["api"])
    route = "/v1/tenants/{tenant_id}/usage"
    assert value(api, "pulse_http_request_seconds_count", method="GET", route=route, status="200")
    assert value(
        api, "pulse_http_request_seconds_count", method="GET", route="unmatched", status="404"
    )
    assert not any("acme" in str(labels) for _, labels in api)


def test_lag_is_the_records_a_group_has_not_committed(tmp_path: Path) -> None:
    # given: 3 records in partition 0 and nobody has committed
    parts = build(settings_of(tmp_path))
    try:
        metrics = Metrics()
        metrics.watch_lag(parts.log, ["late-group"])
        now = datetime.now(UTC)
        parts.log.publish([OutgoingRecord(b"acme", b"x")] * 3, now)

        # when
        samples = parse(metrics.exposition().decode())

        # then: the whole log is lag, per partition
        lag = "pulse_consumer_lag"
        lags = {dict(k[1])["partition"]: v for k, v in samples.items() if k[0] == lag}
        assert sum(lags.values()) == 3
        assert len(lags) == 2
    finally:
        parts.close()


def test_api_metrics_need_an_operator_key_when_auth_is_on(tmp_path: Path) -> None:
    # given
    settings = settings_of(tmp_path, auth="on")
    parts = build(settings)
    now = datetime.now(UTC)
    operator = new_key(Role.OPERATOR, [], "ops", now, cost=2**10)
    tenant = new_key(Role.TENANT, ["acme"], "acme", now, cost=2**10)
    for made in (operator, tenant):
        parts.keys.add(made.record)
    server = start_api(settings, parts, Health(stuck_after=60))
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"

        def status(token: str | None) -> int:
            headers = {"authorization": f"Bearer {token}"} if token else {}
            return httpx.get(url, headers=headers).status_code

        # when / then
        assert status(None) == 401
        assert status(tenant.token) == 403
        assert status(operator.token) == 200
        assert (
            "pulse_http_request_seconds"
            in httpx.get(url, headers={"authorization": f"Bearer {operator.token}"}).text
        )
    finally:
        server.stop()
        parts.close()


def test_metrics_port_zero_starts_no_listener(tmp_path: Path) -> None:
    parts = build(settings_of(tmp_path))
    running = start(settings_of(tmp_path), parts, {"writer"})
    try:
        assert running.metrics_port == 0
    finally:
        running.stop(grace=1)
        parts.close()
