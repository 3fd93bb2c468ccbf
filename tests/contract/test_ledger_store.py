"""Contract of LedgerStore, run against every backend (SQLite and Cassandra/ScyllaDB CQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ledger.model import LedgerEvent, Position, Pulse
from ledger.ports import ConflictRecord, LedgerStore

HOUR = datetime(2026, 10, 5, 14, tzinfo=UTC)
ARRIVAL = datetime(2026, 10, 5, 15, 0, 1, 250000, tzinfo=UTC)  # millisecond precision


def tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"


def event(
    tenant_id: str,
    pulse_id: str,
    amount: str = "1.5",
    at: datetime = HOUR + timedelta(minutes=7, microseconds=123456),
    offset: int = 0,
) -> LedgerEvent:
    pulse = Pulse(
        pulse_id=pulse_id,
        tenant_id=tenant_id,
        product_sku="storage.block",
        used_amount=Decimal(amount),
        use_unit="GB-hour",
        occurred_at=at,
        resource_id="vol-1",
        region="br-se1",
        source="block",
        attributes=(("env", "prod"), ("team", "data")),
    )
    return LedgerEvent.of(pulse, Position(2, offset), ARRIVAL)


def test_appended_events_read_back_equal(ledger_store: LedgerStore) -> None:
    # given
    t = tenant()
    events = [event(t, f"p{i}", amount=f"{i}.25", offset=i) for i in range(5)]
    # when
    ledger_store.append(events)
    # then
    stored = sorted(ledger_store.events_in_hour(t, HOUR), key=lambda e: e.position.offset)
    assert stored == events
    assert ledger_store.get(t, "p3") == events[3]
    assert ledger_store.get(t, "missing") is None
    assert ledger_store.hours(t) == [HOUR]
    assert t in ledger_store.tenants()


def test_seen_reports_payload_hash_of_stored_ids_only(ledger_store: LedgerStore) -> None:
    # given
    t = tenant()
    stored = event(t, "a")
    ledger_store.append([stored])
    # when
    seen = ledger_store.seen([(t, "a"), (t, "b")])
    # then
    assert seen == {(t, "a"): stored.payload_hash}


def test_re_appending_the_same_events_changes_nothing(ledger_store: LedgerStore) -> None:
    # given
    t = tenant()
    events = [event(t, "x", offset=1), event(t, "y", offset=2)]
    ledger_store.append(events)
    # when: a crash after the write re-delivers the batch
    ledger_store.append(events)
    # then
    assert len(ledger_store.events_in_hour(t, HOUR)) == 2


def test_amounts_keep_all_38_digits(ledger_store: LedgerStore) -> None:
    # given
    t = tenant()
    exact = "12345678901234567890.123456789012345678"
    # when
    ledger_store.append([event(t, "big", amount=exact)])
    # then
    got = ledger_store.get(t, "big")
    assert got is not None
    assert got.pulse.used_amount == Decimal(exact)
    assert str(got.pulse.used_amount) == exact


def test_events_are_grouped_by_utc_hour_of_event_time(ledger_store: LedgerStore) -> None:
    # given
    t = tenant()
    early = event(t, "early", at=HOUR + timedelta(minutes=59, seconds=59))
    late = event(t, "late", at=HOUR + timedelta(hours=1))
    # when
    ledger_store.append([early, late])
    # then
    assert [e.pulse.pulse_id for e in ledger_store.events_in_hour(t, HOUR)] == ["early"]
    assert [
        e.pulse.pulse_id for e in ledger_store.events_in_hour(t, HOUR + timedelta(hours=1))
    ] == ["late"]
    assert ledger_store.hours(t) == [HOUR, HOUR + timedelta(hours=1)]


def test_conflicts_are_recorded_once_and_kept_out_of_the_ledger(ledger_store: LedgerStore) -> None:
    # given
    t = tenant()
    first = event(t, "dup", amount="1", offset=1)
    second = event(t, "dup", amount="2", offset=9)
    ledger_store.append([first])
    conflict = ConflictRecord(second, first.payload_hash)
    # when
    ledger_store.record_conflicts([conflict])
    ledger_store.record_conflicts([conflict])
    # then
    assert ledger_store.conflicts(t) == [conflict]
    assert ledger_store.get(t, "dup") == first


def test_conflicts_page_in_pulse_id_order_without_gaps_or_repeats(
    ledger_store: LedgerStore,
) -> None:
    # given: seven conflicts, two of them reuses of the same id at different positions
    t = tenant()
    kept = event(t, "kept")
    ledger_store.append([kept])
    ids = ["b", "a/1", "é", "c", "a", "c", "Z"]
    conflicts = [
        ConflictRecord(event(t, pulse_id, amount=str(i + 2), offset=10 + i), kept.payload_hash)
        for i, pulse_id in enumerate(ids)
    ]
    ledger_store.record_conflicts(conflicts)
    ledger_store.record_conflicts([ConflictRecord(event(tenant(), "b", offset=99), "x")])

    # when: read three at a time, each page after the last key of the previous one
    pages: list[list[ConflictRecord]] = []
    after: tuple[str, int, int] | None = None
    while True:
        page = ledger_store.conflicts(t, after=after, limit=3)
        if not page:
            break
        pages.append(page)
        last = page[-1].event
        after = (last.pulse.pulse_id, last.position.partition, last.position.offset)

    # then: UTF-8 byte order of the id, then position; every conflict exactly once
    assert [len(p) for p in pages] == [3, 3, 1]
    read = [c for p in pages for c in p]
    expected = sorted(
        conflicts,
        key=lambda c: (c.event.pulse.pulse_id.encode(), c.event.position.offset),
    )
    assert read == expected
