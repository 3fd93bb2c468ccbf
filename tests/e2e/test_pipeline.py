"""End to end on real Kafka + Cassandra: gRPC -> Kafka -> ledger -> hourly usage, exactly once."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import grpc
import pytest

from proto.pulse.v1 import pulse_pb2
from pulse.demo.client import IngestClient, make_pulse
from pulse.settings import Backend, CqlSettings, IngestSettings, KafkaSettings, Settings
from tests.e2e.pipeline import expected_hourly, running_pipeline, server_settings

pytestmark = pytest.mark.servers

ACCEPTED = pulse_pb2.PulseResult.ACCEPTED
ALL_ROLES = {"ingestor", "writer", "projector"}


def hours_ago(n: int) -> datetime:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(hours=n)


def usage_pulses(tenants: list[str], rng: random.Random) -> list[pulse_pb2.Pulse]:
    pulses = []
    for t in tenants:
        for h in range(1, 6):
            start = hours_ago(h)
            for i in range(12):
                at = start + timedelta(minutes=5 * i, seconds=rng.randrange(60))
                pulses.append(
                    make_pulse(
                        f"{t}-egress-{h}-{i}",
                        t,
                        "network.egress",
                        Decimal(rng.randrange(1, 10**6)) / 1000,
                        "MB",
                        at,
                    )
                )
                pulses.append(
                    make_pulse(
                        f"{t}-vcpu-{h}-{i}",
                        t,
                        "compute.vcpu",
                        Decimal(rng.choice([6, 12, 30, 45])),
                        "vCPU-minute",
                        at,
                    )
                    if i % 2 == 0
                    else make_pulse(f"{t}-vcpu-{h}-{i}", t, "compute.vcpu", "0.25", "vCPU-hour", at)
                )
    return pulses


def test_pulses_end_up_exactly_once_and_hourly_sums_match(
    kafka_bootstrap: str, cql_endpoint: tuple[str, int], migrated_keyspace: str
) -> None:
    # given: out-of-order pulses of 3 tenants over 5 hours, then a re-sent batch,
    # a conflicting reuse of an id, and a late pulse for an hour already projected
    rng = random.Random(11)
    tenants = [f"e2e-{uuid.uuid4().hex[:6]}-{i}" for i in range(3)]
    pulses = usage_pulses(tenants, rng)
    rng.shuffle(pulses)
    settings = server_settings(kafka_bootstrap, cql_endpoint, migrated_keyspace)
    with running_pipeline(settings, ALL_ROLES) as pipeline:
        client = IngestClient(pipeline.target, key=pipeline.key)
        sent: list[pulse_pb2.Pulse] = []
        for i in range(0, len(pulses), 100):
            batch = pulses[i : i + 100]
            assert {r.status for r in client.ingest(batch)} == {ACCEPTED}
            sent += batch
        resent = pulses[100:200]
        assert {r.status for r in client.ingest(resent)} == {ACCEPTED}
        conflicting = pulse_pb2.Pulse()
        conflicting.CopyFrom(pulses[0])
        conflicting.used_amount = "999"
        assert client.ingest([conflicting])[0].status == ACCEPTED
        pipeline.wait_caught_up()
        late = make_pulse(
            "late-1",
            tenants[0],
            "network.egress",
            "2500",
            "MB",
            hours_ago(5) + timedelta(minutes=1),
        )
        assert client.ingest([late])[0].status == ACCEPTED
        sent += [*resent, conflicting, late]
        pipeline.wait_caught_up()
        client.close()

        # when
        ledger, usage = pipeline.parts.ledger, pipeline.parts.usage
        stored = [e for t in tenants for h in ledger.hours(t) for e in ledger.events_in_hour(t, h)]
        rows = [r for t in tenants for r in usage.usage(t, hours_ago(6), hours_ago(-1))]
        conflicts = ledger.conflicts(pulses[0].tenant_id)
        letters = pipeline.parts.log.dead_letters(10)

    # then: every unique pulse exactly once, with its Kafka position and arrival time
    unique = {(p.tenant_id, p.pulse_id) for p in sent}
    assert len(stored) == len(unique)
    assert {(e.pulse.tenant_id, e.pulse.pulse_id) for e in stored} == unique
    assert all(e.position.offset >= 0 and e.arrival.year >= 2026 for e in stored)
    # the first payload stayed; the conflicting one is recorded and dead-lettered
    kept = next(e for e in stored if e.pulse.pulse_id == pulses[0].pulse_id)
    assert kept.pulse.used_amount == Decimal(pulses[0].used_amount)
    assert [c.event.pulse.used_amount for c in conflicts] == [Decimal(999)]
    assert [letter.reason for letter in letters] == ["conflict"]
    # hourly usage equals the independent sum of unique pulses (the late one included)
    got = {(r.tenant_id, r.hour, r.product_sku, r.unit): r.quantity for r in rows}
    assert got == expected_hourly(sent)
    assert sum(r.pulse_count for r in rows) == len(unique)


def test_kafka_down_means_unavailable_and_nothing_accepted(
    cql_endpoint: tuple[str, int], migrated_keyspace: str
) -> None:
    # given: an ingestor whose Kafka is a closed port
    host, port = cql_endpoint
    settings = Settings(
        backend=Backend.SERVERS,
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1", topic="nowhere"),
        cql=CqlSettings(contact_points=host, port=port, keyspace=migrated_keyspace),
        ingest=IngestSettings(address="127.0.0.1:0", delivery_timeout_seconds=2),
    )
    with running_pipeline(settings, {"ingestor"}) as pipeline:
        client = IngestClient(pipeline.target, key=pipeline.key)
        pulse = make_pulse("k1", "tenant-down", "network.egress", "1", "GB", hours_ago(1))
        # when
        with pytest.raises(grpc.RpcError) as caught:
            client.ingest([pulse], timeout=30)
        client.close()
    # then
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "nothing of this batch was accepted" in error.details()
