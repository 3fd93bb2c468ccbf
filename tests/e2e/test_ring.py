"""A replica dies mid-stream and comes back: on a 3-node ring with replication factor 3 at
LOCAL_QUORUM (the default), nothing is lost and nothing is counted twice.

The pipeline is the real one (gRPC ingestor -> Kafka -> writer -> ledger -> projector ->
hourly usage) in this process; the nodes are real Cassandra JVMs of `pulse dev ring`,
stopped by their pids. Expected sums come from the sender's own log of accepted pulses.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ledger.model import LedgerEvent
from ledger.ports import LedgerStore
from proto.pulse.v1 import pulse_pb2
from pulse.bootstrap import build
from pulse.demo.client import IngestClient, make_pulse
from pulse.migrate import migrate_cql
from pulse.runtime import caught_up
from pulse.settings import Backend, CqlSettings, IngestSettings, Settings
from storage.cql import connect
from tests.backends import kafka_settings
from tests.e2e.pipeline import Pipeline, expected_hourly, running_pipeline
from tests.ring import Ring

pytestmark = [pytest.mark.servers, pytest.mark.ring]

log = logging.getLogger(__name__)

ACCEPTED = pulse_pb2.PulseResult.ACCEPTED
ALL_ROLES = {"ingestor", "writer", "projector"}
BATCH = 25
SEND_INTERVAL_SECONDS = 0.1
CATCH_UP_SECONDS = 240.0  # a loaded 2-core machine, three JVMs, Kafka and the suite


def hour_start(hours_ago: int) -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours_ago)


class Sender:
    """Streams batches through the real ingestor from a thread; every 5th batch re-sends an
    earlier one (a client retry). Its log holds each pulse the ingestor ACCEPTED."""

    def __init__(self, target: str, key: str, tenants: list[str], seed: int) -> None:
        self._client = IngestClient(target, key=key)
        self._tenants = tenants
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sender", daemon=True)
        self.accepted: list[pulse_pb2.Pulse] = []
        self.batches: list[list[pulse_pb2.Pulse]] = []
        self.error: BaseException | None = None
        self._next = 0
        self._sends = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self._client.close()
        if self.error is not None:
            raise AssertionError(f"the sender failed: {self.error!r}") from self.error

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._send_one()
                self._stop.wait(SEND_INTERVAL_SECONDS)
        except BaseException as error:  # reported by stop()
            self.error = error

    def _send_one(self) -> None:
        self._sends += 1
        if self._sends % 5 == 0:
            batch = self._rng.choice(self.batches)  # a retry: same ids, same payloads
        else:
            batch = [self._pulse() for _ in range(BATCH)]
            self.batches.append(batch)
        results = self._client.ingest(batch)
        self.accepted += [p for p, r in zip(batch, results, strict=True) if r.status == ACCEPTED]

    def _pulse(self) -> pulse_pb2.Pulse:
        self._next += 1
        tenant = self._rng.choice(self._tenants)
        at = hour_start(self._rng.randrange(1, 4)) + timedelta(seconds=self._rng.randrange(3600))
        if self._next % 3:
            amount = Decimal(self._rng.randrange(1, 10**6)) / 1000
            return make_pulse(f"p{self._next}", tenant, "network.egress", amount, "MB", at)
        minutes = Decimal(self._rng.choice([6, 12, 30, 45]))
        return make_pulse(f"p{self._next}", tenant, "compute.vcpu", minutes, "vCPU-minute", at)


@pytest.fixture
def ring_settings(kafka_bootstrap: str, cassandra_ring: Ring) -> Iterator[Settings]:
    """Fresh topics and a fresh keyspace with replication factor 3 on the ring."""
    endpoints = cassandra_ring.endpoints
    keyspace = f"ring_{uuid.uuid4().hex[:12]}"
    cql = CqlSettings(
        contact_points=endpoints.contact_points,
        port=endpoints.cql_port,
        keyspace=keyspace,
        replication_factor=3,
        request_timeout_seconds=20,
    )
    settings = Settings(
        backend=Backend.SERVERS,
        kafka=kafka_settings(kafka_bootstrap),
        cql=cql,
        ingest=IngestSettings(address="127.0.0.1:0", delivery_timeout_seconds=10),
    )
    admin = connect(cql.config())
    try:
        list(migrate_cql(admin.session, cql))
        yield settings
        cassandra_ring.ensure_up()
        admin.session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
    finally:
        admin.close()


def wait_for(what: str, predicate: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


def writer_committed(pipeline: Pipeline) -> int:
    return sum(pipeline.parts.log.committed(pipeline.settings.kafka.writer_group).values())


def all_events(ledger: LedgerStore, tenants: list[str]) -> list[LedgerEvent]:
    return [e for t in tenants for h in ledger.hours(t) for e in ledger.events_in_hour(t, h)]


def test_a_replica_killed_mid_stream_and_restarted_loses_nothing_and_counts_nothing_twice(
    cassandra_ring: Ring, ring_settings: Settings
) -> None:
    # given: the whole pipeline on the ring (RF 3, LOCAL_QUORUM), pulses streaming in
    assert ring_settings.cql.consistency == "LOCAL_QUORUM"
    run = uuid.uuid4().hex[:6]
    tenants = [f"ring-{run}-{i}" for i in range(4)]
    victim = cassandra_ring.node_names[1]
    started = time.monotonic()
    with running_pipeline(ring_settings, ALL_ROLES) as pipeline:
        sender = Sender(pipeline.target, pipeline.key, tenants, seed=8)
        sender.start()
        try:
            wait_for("the writer's first commit", lambda: writer_committed(pipeline) > 0, 120)

            # when: a replica is killed (SIGKILL: no drain, no goodbye to gossip) ...
            cassandra_ring.stop(victim)
            at_kill = writer_committed(pipeline)
            # ... the stream goes on, and the writer keeps committing on 2 of 3 replicas
            wait_for(
                "writer progress with a replica down",
                lambda: writer_committed(pipeline) > at_kill + 5 * BATCH,
                120,
            )
            while_down = writer_committed(pipeline) - at_kill
            # ... then the node comes back (the stream still going) and the ring settles
            restart_seconds = time.monotonic()
            cassandra_ring.start(victim)
            restart_seconds = time.monotonic() - restart_seconds
            back = writer_committed(pipeline)
            wait_for(
                "writer progress after the node came back",
                lambda: writer_committed(pipeline) > back + 5 * BATCH,
                120,
            )
        finally:
            sender.stop()
        catch_up_seconds = wait_for(
            "writer and projector catching up",
            lambda: caught_up(pipeline.settings, pipeline.parts),
            CATCH_UP_SECONDS,
        )
        usage = [
            row
            for t in tenants
            for row in pipeline.parts.usage.usage(t, hour_start(5), hour_start(-1))
        ]
    log.warning(
        "ring test: %d accepted (%d unique) in %.0f s; %d records committed while %s was down; "
        "restart %.1f s; catch-up %.1f s",
        len(sender.accepted),
        len({p.pulse_id for p in sender.accepted}),
        time.monotonic() - started,
        while_down,
        victim,
        restart_seconds,
        catch_up_seconds,
    )

    # then: read back at LOCAL_QUORUM by a fresh process's adapters, the node back in the ring
    parts = build(ring_settings)
    try:
        stored = all_events(parts.ledger, tenants)
    finally:
        parts.close()
    unique = {(p.tenant_id, p.pulse_id) for p in sender.accepted}
    assert len(sender.accepted) > len(unique), "the stream must hold re-sent pulses"
    assert while_down > 0
    # every accepted pulse is in the ledger, exactly once
    assert len(stored) == len(unique)
    assert {(e.pulse.tenant_id, e.pulse.pulse_id) for e in stored} == unique
    # hourly usage equals the sender's own sums, and counts each unique pulse once
    got = {(r.tenant_id, r.hour, r.product_sku, r.unit): r.quantity for r in usage}
    assert got == expected_hourly(sender.accepted)
    assert sum(r.pulse_count for r in usage) == len(unique)
