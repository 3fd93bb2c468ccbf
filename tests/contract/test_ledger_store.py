"""Contract of LedgerStore, run against every backend (SQLite and Cassandra/ScyllaDB CQL)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ledger.model import LedgerEvent, Position, Pulse
from ledger.ports import ConflictRecord, LedgerStore, PulseKey, TenantConflictKey

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


def pulse_at(
    tenant_id: str, pulse_id: str, at: datetime, sku: str = "storage.block", offset: int = 0
) -> LedgerEvent:
    pulse = Pulse(pulse_id, tenant_id, sku, Decimal(1), "GB-hour", at)
    return LedgerEvent.of(pulse, Position(0, offset), ARRIVAL)


def read_all(
    store: LedgerStore,
    t: str,
    start: datetime,
    end: datetime,
    limit: int,
    sku: str | None = None,
    between_pages: Callable[[PulseKey], None] | None = None,
) -> list[list[str]]:
    """Pages of pulse ids, each read after the last key of the previous one."""
    pages: list[list[str]] = []
    after: PulseKey | None = None
    while True:
        page = store.pulses(t, start, end, limit=limit, after=after, sku=sku)
        if not page:
            return pages
        pages.append([e.pulse.pulse_id for e in page])
        after = (page[-1].hour, page[-1].pulse.pulse_id)
        if between_pages is not None:
            between_pages(after)
        assert len(pages) < 2000, "paging never ends"


def test_pulses_of_a_range_come_by_hour_then_id_bytes_cut_at_event_time(
    ledger_store: LedgerStore,
) -> None:
    # given: ids whose UTF-8 byte order differs from their code-point-insensitive look
    t = tenant()
    h0, h1, h2 = HOUR, HOUR + timedelta(hours=1), HOUR + timedelta(hours=2)
    ledger_store.append(
        [
            pulse_at(t, "before-start", h0 + timedelta(minutes=10)),
            pulse_at(t, "b", h0 + timedelta(minutes=30)),
            pulse_at(t, "é", h0 + timedelta(minutes=31)),
            pulse_at(t, "Z", h0 + timedelta(minutes=59)),
            pulse_at(t, "a", h1 + timedelta(minutes=5), sku="network.egress"),
            pulse_at(t, "c", h1 + timedelta(minutes=6)),
            pulse_at(t, "at-end", h2),
            pulse_at(tenant(), "other-tenant", h1),
        ]
    )
    # when: from h0:20 (inside the first hour) to h2 (exclusive), two at a time
    pages = read_all(ledger_store, t, h0 + timedelta(minutes=20), h2, limit=2)
    only_block = read_all(ledger_store, t, h0, h2 + timedelta(hours=1), 10, "storage.block")
    # then: hour first, then bytes of the id ("Z" < "b" < "é"); end exclusive
    assert pages == [["Z", "b"], ["é", "a"], ["c"]]
    assert only_block == [["Z", "b", "before-start", "é", "c", "at-end"]]


@pytest.mark.parametrize("limit", [1, 4, 9, 100])
def test_pages_over_many_sparse_hours_keep_hour_order_whatever_the_page_size(
    ledger_store: LedgerStore, limit: int
) -> None:
    # given: 23 hours, most with one or two pulses, some empty, some of another SKU (pages
    # then cross more hour partitions than a store may read at once)
    t = tenant()
    stored = []
    for h in range(23):
        if h % 5 == 3:
            continue
        at = HOUR + timedelta(hours=h)
        stored.append(pulse_at(t, f"q{h:02d}", at + timedelta(minutes=1)))
        if h % 3 == 0:
            stored.append(pulse_at(t, f"p{h:02d}", at + timedelta(minutes=2), "api.requests"))
    ledger_store.append(stored)
    end = HOUR + timedelta(hours=23)
    # when
    pages = read_all(ledger_store, t, HOUR, end, limit)
    block = read_all(ledger_store, t, HOUR, end, limit, "storage.block")
    # then: every page full but the last, and together the pulses by hour, then id
    expected = [e.pulse.pulse_id for e in sorted(stored, key=lambda e: (e.hour, e.pulse.pulse_id))]
    assert [i for page in pages for i in page] == expected
    assert all(len(page) == limit for page in pages[:-1])
    assert [i for page in block for i in page] == [i for i in expected if i.startswith("q")]


def test_paging_pulses_while_the_writer_appends_lists_each_stored_one_once(
    ledger_store: LedgerStore,
) -> None:
    # given: 40 pulses over two hours
    t = tenant()
    h0, h1 = HOUR, HOUR + timedelta(hours=1)
    stored = [pulse_at(t, f"m{i:02d}", h0 + timedelta(minutes=i)) for i in range(20)]
    stored += [pulse_at(t, f"m{i:02d}", h1 + timedelta(minutes=i)) for i in range(20, 40)]
    ledger_store.append(stored)
    added = iter(range(8))  # the writer keeps up with the reader for 8 pages, then stops

    def append_around(cursor: PulseKey) -> None:
        # after a page: new pulses in the hour being paged, with ids before and after the
        # cursor, in the next hour and in an hour before the range
        hour, _ = cursor
        n = next(added, None)
        if n is None:
            return
        ledger_store.append(
            [
                pulse_at(t, f"a{n:03d}", hour + timedelta(minutes=1)),
                pulse_at(t, f"z{n:03d}", hour + timedelta(minutes=2)),
                pulse_at(t, f"n{n:03d}", h1 + timedelta(minutes=3)),
                pulse_at(t, f"e{n:03d}", h0 - timedelta(minutes=1)),
            ]
        )

    # when
    pages = read_all(ledger_store, t, h0, h1 + timedelta(hours=1), 7, between_pages=append_around)
    # then: every pulse stored before paging began exactly once, in order
    seen = [pid for page in pages for pid in page]
    before = [e.pulse.pulse_id for e in stored]
    assert [pid for pid in seen if pid.startswith("m")] == before
    assert len(seen) == len(set(seen))


def test_tenants_between_lists_those_with_usage_in_the_hours_paged(
    ledger_store: LedgerStore,
) -> None:
    # given: a month no other test uses; one tenant just before and one just after it
    month = datetime(2031, 3, 1, tzinfo=UTC)
    after_month = datetime(2031, 4, 1, tzinfo=UTC)
    inside = sorted(f"{tenant()}-{n}" for n in range(5))
    for n, t in enumerate(inside):
        ledger_store.append([pulse_at(t, "p", month + timedelta(days=n, hours=n))])
    early, late = tenant(), tenant()
    ledger_store.append([pulse_at(early, "p", month - timedelta(minutes=1))])
    ledger_store.append([pulse_at(late, "p", after_month)])
    # when: two at a time
    found: list[str] = []
    after: str | None = None
    while page := ledger_store.tenants_between(month, after_month, limit=2, after=after):
        assert len(page) <= 2
        found.extend(page)
        after = page[-1]
    # then
    assert [t for t in found if t in {*inside, early, late}] == inside
    assert found == sorted(found, key=str.encode)


def test_conflicts_of_every_tenant_page_by_tenant_then_id(ledger_store: LedgerStore) -> None:
    # given: conflicts of three tenants
    mine = sorted(tenant() for _ in range(3))
    records = []
    for t in mine:
        kept = event(t, "kept")
        ledger_store.append([kept])
        for i, pid in enumerate(["b", "a", "c"]):
            records.append(ConflictRecord(event(t, pid, offset=50 + i), kept.payload_hash))
    ledger_store.record_conflicts(records)
    # when: two at a time across the whole store (other tests' tenants included)
    read: list[ConflictRecord] = []
    after: TenantConflictKey | None = None
    while page := ledger_store.all_conflicts(limit=2, after=after):
        assert len(page) <= 2
        read.extend(page)
        e = page[-1].event
        after = (e.pulse.tenant_id, e.pulse.pulse_id, e.position.partition, e.position.offset)
    # then: tenant, then id; each once
    keys = [
        (c.event.pulse.tenant_id, c.event.pulse.pulse_id, c.event.position.offset) for c in read
    ]
    assert len(keys) == len(set(keys))
    assert [k[:2] for k in keys if k[0] in mine] == [(t, pid) for t in mine for pid in "abc"]
    assert keys == sorted(keys, key=lambda k: (k[0].encode(), k[1].encode(), k[2]))
