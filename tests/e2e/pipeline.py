"""Helpers of the end-to-end tests: a pipeline on real Kafka + Cassandra, and independent sums."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from access.keys import Role, new_key
from proto.pulse.v1 import pulse_pb2
from pulse.bootstrap import Parts, build
from pulse.runtime import Running, caught_up, start
from pulse.settings import Backend, CqlSettings, IngestSettings, Settings
from tests.backends import kafka_settings

# Written out here, not taken from catalog.units: the test's own idea of the conversions
# (billing unit, divisor).
TO_BILLING = {
    ("network.egress", "MB"): ("GB", Decimal(1000)),
    ("network.egress", "GB"): ("GB", Decimal(1)),
    ("storage.block", "GB-hour"): ("GB-hour", Decimal(1)),
    ("compute.vcpu", "vCPU-hour"): ("vCPU-hour", Decimal(1)),
    ("compute.vcpu", "vCPU-minute"): ("vCPU-hour", Decimal(60)),
}


@dataclass
class Pipeline:
    settings: Settings
    parts: Parts
    running: Running
    key: str  # a producer key for every tenant, stored in the backend's key store

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.running.grpc_port}"

    def wait_caught_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not caught_up(self.settings, self.parts):
            if time.monotonic() > deadline:
                raise AssertionError("writer/projector did not catch up")
            time.sleep(0.1)


def server_settings(bootstrap: str, cql: tuple[str, int], keyspace: str) -> Settings:
    host, port = cql
    return Settings(
        backend=Backend.SERVERS,
        kafka=kafka_settings(bootstrap),
        cql=CqlSettings(contact_points=host, port=port, keyspace=keyspace),
        ingest=IngestSettings(address="127.0.0.1:0", delivery_timeout_seconds=5),
    )


@contextmanager
def running_pipeline(settings: Settings, roles: set[str]) -> Iterator[Pipeline]:
    parts = build(settings)
    # Auth is on (the default): the pipeline's clients present a real producer key.
    made = new_key(Role.PRODUCER, (), "e2e", datetime.now(UTC))
    parts.keys.add(made.record)
    running = start(settings, parts, roles, grpc_address="127.0.0.1:0")
    try:
        yield Pipeline(settings, parts, running, made.token)
    finally:
        running.stop()
        parts.close()


def expected_hourly(
    pulses: Iterable[pulse_pb2.Pulse],
) -> dict[tuple[str, datetime, str, str], Decimal]:
    """Sum per (tenant, hour, sku, billing unit) of the first payload of each unique id."""
    first: dict[tuple[str, str], pulse_pb2.Pulse] = {}
    for p in pulses:
        first.setdefault((p.tenant_id, p.pulse_id), p)
    sums: dict[tuple[str, datetime, str, str], Decimal] = defaultdict(Decimal)
    for p in first.values():
        unit, divisor = TO_BILLING[(p.product_sku, p.use_unit)]
        moment = datetime.fromtimestamp(p.occurred_at.seconds, UTC)
        hour = moment.replace(minute=0, second=0, microsecond=0)
        sums[(p.tenant_id, hour, p.product_sku, unit)] += Decimal(p.used_amount) / divisor
    return dict(sums)
