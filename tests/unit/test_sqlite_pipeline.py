"""The embedded pipeline in one process: SQLite log -> writer -> SQLite ledger -> projector."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from ledger import codec
from ledger.model import LedgerEvent, Pulse
from ledger.ports import OutgoingRecord
from ledger.sqlite import SQLitePulseLog
from ledger.sqlite_store import SQLiteLedgerStore
from ledger.writer import LedgerWriter
from projections.runner import HourlyProjector, ProjectorSettings
from projections.sqlite import SQLiteUsageStore
from proto.pulse.v1 import pulse_pb2
from tests.unit.helpers import NOW, T0, WIDE, catalog, pulse

WRITER, PROJECTOR = "writer", "projector"
GARBAGE = b"\xff\xfe garbage"

# The test's own conversions to the billing units of helpers.catalog(): (unit, times, per).
TO_BILLING = {
    ("network.egress", "MB"): ("GB", 1, 1000),
    ("network.egress", "GB"): ("GB", 1, 1),
    ("compute.vcpu", "vCPU-minute"): ("vCPU-hour", 1, 60),
}


@dataclass
class Embedded:
    log: SQLitePulseLog
    store: SQLiteLedgerStore
    usage: SQLiteUsageStore
    writer: LedgerWriter
    projector: HourlyProjector

    def publish(self, items: Sequence[Pulse | bytes]) -> None:
        self.log.publish(
            [
                OutgoingRecord(b"acme", item)
                if isinstance(item, bytes)
                else OutgoingRecord(item.tenant_id.encode(), codec.encode(item))
                for item in items
            ],
            NOW,
        )

    def drain_writer(self) -> None:
        for _ in range(100):
            if self.writer.run_once().records == 0:
                return
        raise AssertionError("the writer did not drain the log")

    def drain_projector(self) -> None:
        for _ in range(100):
            if self.log.committed(PROJECTOR) == self.log.committed(WRITER):
                return
            self.projector.run_once()
        raise AssertionError("the projector did not catch up with the writer")

    def ledger(self) -> list[LedgerEvent]:
        return [
            e
            for t in self.store.tenants()
            for h in self.store.hours(t)
            for e in self.store.events_in_hour(t, h)
        ]

    def hourly(self) -> dict[tuple[str, datetime, str, str], Decimal]:
        start, end = T0 - timedelta(days=1), T0 + timedelta(days=1)
        return {
            (r.tenant_id, r.hour, r.product_sku, r.unit): r.quantity
            for t in ("acme", "globex")
            for r in self.usage.usage(t, start, end)
        }


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Embedded]:
    log = SQLitePulseLog(tmp_path / "log.sqlite", partitions=3)
    store = SQLiteLedgerStore(tmp_path / "ledger.sqlite")
    usage = SQLiteUsageStore(tmp_path / "usage.sqlite")
    writer = LedgerWriter(log, store, log.consumer(WRITER), batch_size=3, poll_timeout=0)
    projector = HourlyProjector(
        log,
        log.consumer(PROJECTOR),
        store,
        usage,
        catalog(),
        ProjectorSettings(writer_group=WRITER, batch_size=3, poll_timeout=0),
    )
    yield Embedded(log, store, usage, writer, projector)
    for closeable in (log, store, usage):
        closeable.close()


HOUR2 = T0 + timedelta(hours=1)
SENT: list[Pulse | bytes] = [
    pulse("e1", amount="250", unit="MB", at=T0 + timedelta(minutes=5)),
    pulse("e2", amount="0.75", unit="GB", at=T0 + timedelta(minutes=10)),
    pulse("e1", amount="250.000", unit="MB", at=T0 + timedelta(minutes=5)),  # a retry
    pulse("c1", sku="compute.vcpu", amount="30", unit="vCPU-minute", at=HOUR2),
    pulse("e2", amount="9", unit="GB", at=T0 + timedelta(minutes=10)),  # a conflict
    GARBAGE,
    pulse("g1", tenant="globex", amount="2", unit="GB", at=T0),
    pulse("x1", sku="gpu.h100", amount="2", unit="hour", at=T0 + timedelta(minutes=1)),
    pulse("e3", amount="12345678901.123456789", unit="MB", at=T0 + timedelta(minutes=59)),
]


def expected_hourly(sent: Sequence[Pulse | bytes]) -> dict[tuple[str, datetime, str, str], Decimal]:
    """Per (tenant, hour, sku, unit): the first payload of each id, converted by hand."""
    first: dict[tuple[str, str], Pulse] = {}
    for item in sent:
        if isinstance(item, Pulse):
            first.setdefault((item.tenant_id, item.pulse_id), item)
    sums: dict[tuple[str, datetime, str, str], Decimal] = {}
    for p in first.values():
        unit, times, per = TO_BILLING.get((p.product_sku, p.use_unit), (p.use_unit, 1, 1))
        hour = p.occurred_at.replace(minute=0, second=0, microsecond=0)
        key = (p.tenant_id, hour, p.product_sku, unit)
        # Exact for these amounts: every one divides evenly (30 vCPU-minute = 0.5 vCPU-hour).
        sums[key] = WIDE.add(sums.get(key, Decimal(0)), WIDE.divide(p.used_amount * times, per))
    return sums


def test_each_unique_pulse_is_in_the_ledger_once(embedded: Embedded) -> None:
    # given
    embedded.publish(SENT)

    # when
    embedded.drain_writer()

    # then
    events = embedded.ledger()
    assert sorted((e.pulse.tenant_id, e.pulse.pulse_id) for e in events) == [
        ("acme", "c1"),
        ("acme", "e1"),
        ("acme", "e2"),
        ("acme", "e3"),
        ("acme", "x1"),
        ("globex", "g1"),
    ]
    e2 = embedded.store.get("acme", "e2")
    assert e2 is not None and e2.pulse.used_amount == Decimal("0.75")  # the first one wins
    assert all(e.arrival == NOW for e in events)


def test_conflicts_are_recorded_and_dead_lettered_with_undecodable_records(
    embedded: Embedded,
) -> None:
    # given
    embedded.publish(SENT)

    # when
    embedded.drain_writer()

    # then
    conflicts = embedded.store.conflicts("acme")
    assert [(c.event.pulse.pulse_id, c.event.pulse.used_amount) for c in conflicts] == [
        ("e2", Decimal(9))
    ]
    first_e2 = SENT[1]
    assert isinstance(first_e2, Pulse)
    assert conflicts[0].existing_hash == first_e2.payload_hash()
    letters = embedded.log.dead_letters(10)
    assert sorted(letter.reason for letter in letters) == ["conflict", "undecodable"]
    by_reason = {letter.reason: letter for letter in letters}
    assert by_reason["undecodable"].record.value == GARBAGE
    assert codec.decode(by_reason["conflict"].record.value).used_amount == Decimal(9)
    assert "e2" in by_reason["conflict"].detail


def test_hourly_usage_equals_an_independent_sum(embedded: Embedded) -> None:
    # given
    embedded.publish(SENT)

    # when
    embedded.drain_writer()
    embedded.drain_projector()

    # then
    assert embedded.hourly() == expected_hourly(SENT)
    # 0.25 + 0.75 + 12345678.901123456789 GB, worked out by hand
    assert embedded.hourly()[("acme", T0, "network.egress", "GB")] == Decimal(
        "12345679.901123456789"
    )


def test_the_projector_never_runs_ahead_of_the_writer(embedded: Embedded) -> None:
    # given: records in the log, none written to the ledger yet
    embedded.publish(SENT)

    # when
    projected_early = embedded.projector.run_once()

    # then: nothing projected, nothing committed
    assert projected_early == 0
    assert embedded.hourly() == {}
    assert embedded.log.committed(PROJECTOR) == {}

    # when: the writer takes one batch only, and the projector catches up with it
    embedded.writer.run_once()
    embedded.drain_projector()

    # then: the projector stopped at the writer's offsets
    writer_at, projector_at = embedded.log.committed(WRITER), embedded.log.committed(PROJECTOR)
    assert projector_at == writer_at
    assert sum(writer_at.values()) < len(SENT)
    assert embedded.projector.run_once() == 0
    assert embedded.log.committed(PROJECTOR) == writer_at

    # when: the writer drains the log
    embedded.drain_writer()
    embedded.drain_projector()

    # then
    assert embedded.hourly() == expected_hourly(SENT)


def test_writing_the_same_records_again_changes_nothing(embedded: Embedded) -> None:
    # given: a drained pipeline
    embedded.publish(SENT)
    embedded.drain_writer()
    before = sorted((e.pulse.pulse_id, e.payload_hash, str(e.position)) for e in embedded.ledger())
    records = embedded.log.consumer("replay").poll(1000, 0)

    # when: a crash before the commit re-delivers everything
    report = embedded.writer.apply(records)

    # then
    assert report.written == 0
    after = sorted((e.pulse.pulse_id, e.payload_hash, str(e.position)) for e in embedded.ledger())
    assert after == before
    assert len(embedded.store.conflicts("acme")) == 1
    assert len(embedded.log.dead_letters(10)) == 2


def test_a_record_with_an_impossible_time_is_dead_lettered(embedded: Embedded) -> None:
    # given
    message = pulse_pb2.Pulse(pulse_id="p", tenant_id="acme", used_amount="1", use_unit="B")
    message.product_sku = "network.egress"
    message.occurred_at.seconds = 2**62
    embedded.publish([message.SerializeToString(), pulse("ok")])

    # when
    embedded.drain_writer()

    # then: it decodes, but breaks the ingestor's rule on occurred_at
    letters = embedded.log.dead_letters(10)
    assert [(d.reason, d.detail.split(":")[0]) for d in letters] == [("invalid", "occurred_at")]
    assert [e.pulse.pulse_id for e in embedded.ledger()] == ["ok"]
