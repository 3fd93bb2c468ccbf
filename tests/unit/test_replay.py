"""`pulse replay` (projections.replay) on the embedded backends: the real SQLite log, ledger,
usage store and event store, the real writer path. Expected quantities are the test's own sums."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from catalog.billing import BillingApp
from catalog.files import read_catalog
from ledger import codec
from ledger.model import Pulse
from ledger.ports import OutgoingRecord
from ledger.sqlite import SQLitePulseLog
from ledger.sqlite_history import SQLiteLogHistory
from ledger.sqlite_store import SQLiteLedgerStore
from ledger.writer import LedgerAppender, LedgerWriter
from projections.invoices import Invoicing, writer_commits
from projections.replay import Replay, ReplayReport
from projections.runner import project_hours
from projections.sqlite import SQLiteUsageStore
from pulse.bootstrap import SAMPLE_CATALOG
from tests.unit.helpers import catalog

OCT = datetime(2026, 10, 5, 10, tzinfo=UTC)
NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
WRITER = "writer"


def egress(tenant: str, pulse_id: str, gb: str, hour: int = 0) -> Pulse:
    return Pulse(pulse_id, tenant, "network.egress", Decimal(gb), "GB", OCT + timedelta(hours=hour))


@dataclass
class World:
    root: Path
    log: SQLitePulseLog
    history: SQLiteLogHistory
    ledger: SQLiteLedgerStore
    usage: SQLiteUsageStore
    app: BillingApp

    def publish(self, pulses: Sequence[Pulse]) -> None:
        records = [OutgoingRecord(p.tenant_id.encode(), codec.encode(p)) for p in pulses]
        self.log.publish(records, NOW)

    def write_all(self) -> None:
        writer = LedgerWriter(self.log, self.ledger, self.log.consumer(WRITER))
        while writer.run_once().records:
            pass
        hours = {(t, h) for t in self.ledger.tenants() for h in self.ledger.hours(t)}
        project_hours(hours, self.ledger, self.usage, catalog())

    def invoicing(self) -> Invoicing:
        committed = writer_commits(self.log, WRITER)
        return Invoicing(self.app, self.ledger, self.usage, committed, clock=lambda: NOW)

    def replay(self) -> Replay:
        return Replay(
            self.history,
            LedgerAppender(self.log, self.ledger),
            self.ledger,
            self.usage,
            self.invoicing(),
            catalog(),
        )

    def everything(self) -> tuple[dict[int, int], dict[int, int]]:
        bounds = self.history.bounds()
        return {p: lo for p, (lo, _hi) in bounds.items()}, {
            p: hi for p, (_lo, hi) in bounds.items()
        }

    def run(self, **options: object) -> ReplayReport:
        start, end = self.everything()
        return self.replay().run(start, end, **options)  # type: ignore[arg-type]

    def usage_gb(self, tenant: str) -> dict[datetime, Decimal]:
        rows = self.usage.usage(tenant, OCT - timedelta(days=1), OCT + timedelta(days=2))
        return {r.hour: r.quantity for r in rows}

    def ledger_ids(self) -> list[str]:
        return sorted(
            e.pulse.pulse_id
            for t in self.ledger.tenants()
            for h in self.ledger.hours(t)
            for e in self.ledger.events_in_hour(t, h)
        )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    app = BillingApp(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "b.db")}
    )
    app.apply_catalog(read_catalog(SAMPLE_CATALOG.read_text()))
    w = World(
        tmp_path,
        SQLitePulseLog(tmp_path / "log.sqlite", partitions=3),
        SQLiteLogHistory(tmp_path / "log.sqlite", partitions=3),
        SQLiteLedgerStore(tmp_path / "ledger.sqlite"),
        SQLiteUsageStore(tmp_path / "usage.sqlite"),
        app,
    )
    yield w
    for closing in (w.history, w.log, w.ledger, w.usage, app):
        closing.close()


def _lose_ledger(world: World) -> None:
    """The ledger and usage are restored empty (e.g. from an old backup); the log is intact."""
    world.ledger.close()
    world.usage.close()
    world.ledger = SQLiteLedgerStore(world.root / "ledger-restored.sqlite")
    world.usage = SQLiteUsageStore(world.root / "usage-restored.sqlite")


def test_replaying_what_the_ledger_holds_changes_nothing(world: World) -> None:
    # given: 12 pulses and 3 client retries of them, all written and projected
    pulses = [egress("acme", f"p{i}", "1.5", hour=i % 4) for i in range(12)]
    world.publish(pulses + pulses[:3])
    world.write_all()
    before = world.usage_gb("acme")

    # when
    report = world.run()

    # then
    assert (report.records, report.added, report.duplicates) == (15, 0, 15)
    assert not report.changed and report.buckets == [] and report.drafts == []
    assert world.usage_gb("acme") == before


def test_a_replay_restores_a_lost_ledger_and_reports_every_change(world: World) -> None:
    # given: 10 pulses of 2 GB over two hours, written; then the ledger and usage are lost
    world.publish([egress("acme", f"p{i}", "2", hour=i % 2) for i in range(10)])
    world.write_all()
    _lose_ledger(world)

    # when
    report = world.run()

    # then: every pulse is back, each hour holds 5 x 2 GB, and the report says so
    assert report.added == 10 and world.ledger_ids() == sorted(f"p{i}" for i in range(10))
    hours = [OCT, OCT + timedelta(hours=1)]
    assert world.usage_gb("acme") == dict.fromkeys(hours, Decimal(10))
    assert [(b.hour, b.before, b.after) for b in report.buckets] == [
        (h, None, Decimal(10)) for h in hours
    ]
    assert [(d.period, d.before) for d in report.drafts] == [("2026-10", Decimal(0))]
    assert report.drafts[0].after > 0


def test_a_replay_rolls_the_restored_hours_up_into_their_day(world: World) -> None:
    # given: 10 pulses of 2 GB over two hours, written; then the ledger and usage are lost
    world.publish([egress("acme", f"p{i}", "2", hour=i % 2) for i in range(10)])
    world.write_all()
    _lose_ledger(world)

    # when
    world.run()

    # then: the day that drafts price is back too, covering both hours
    (day,) = world.usage.daily_usage("acme", OCT.date(), OCT.date() + timedelta(days=1))
    assert (day.product_sku, day.quantity, day.pulse_count) == ("network.egress", Decimal(20), 10)
    assert day.hours == (OCT, OCT + timedelta(hours=1))


def test_a_dry_run_reports_what_a_replay_would_do_and_changes_nothing(world: World) -> None:
    # given
    world.publish([egress("acme", f"p{i}", "3", hour=i % 3) for i in range(9)])
    world.write_all()
    _lose_ledger(world)

    # when
    dry = world.run(dry_run=True)
    untouched = (world.ledger_ids(), world.usage_gb("acme"))
    real = world.run()

    # then
    assert untouched == ([], {})
    assert (dry.added, dry.buckets, dry.drafts) == (real.added, real.buckets, real.drafts)
    assert dry.added == 9


def test_a_stopped_replay_says_where_to_resume_and_resuming_counts_nothing_twice(
    world: World,
) -> None:
    # given: 30 pulses in the log only
    world.publish([egress("acme", f"p{i}", "1", hour=i % 5) for i in range(30)])
    stop = threading.Event()

    # when: the operator presses Ctrl-C during the first batch of 4
    start, end = world.everything()
    first = world.replay().run(start, end, batch=4, progress=lambda _n: stop.set(), stop=stop)
    resume = {p: first.resume_at.get(p, o) for p, o in start.items()}
    second = world.replay().run(resume, end, batch=4)

    # then
    assert first.stopped and 0 < first.added < 30
    assert first.added + second.added == 30 and second.duplicates == 0
    assert sum(world.usage_gb("acme").values()) == Decimal(30)


def test_a_replay_narrowed_to_a_tenant_leaves_the_others_alone(world: World) -> None:
    # given
    world.publish(
        [egress("acme", "a1", "1"), egress("globex", "g1", "7"), egress("acme", "a2", "1")]
    )

    # when
    report = world.run(tenant="globex")

    # then
    assert (report.added, report.other_tenants) == (1, 2)
    assert world.ledger_ids() == ["g1"]


def test_late_usage_found_by_a_replay_in_a_finalized_month_gets_a_correction_note(
    world: World,
) -> None:
    # given: October finalized with 4 GB (inside the free tier of 10 GB); then a late pulse of
    # 20 GB that the writer group
    # passed over without it reaching our ledger (it went to a store since lost)
    world.publish([egress("acme", "early", "4")])
    world.write_all()
    world.invoicing().finalize("acme", "2026-10")
    world.publish([egress("acme", "late", "20", hour=1)])
    lost = SQLiteLedgerStore(world.root / "lost.sqlite")
    LedgerWriter(world.log, lost, world.log.consumer(WRITER)).run_once()
    lost.close()

    # when
    report = world.run()

    # then: the invoice stays as finalized and a debit note carries the 20 GB, of which 14
    # are above the free tier at 0.45 BRL
    assert report.added == 1
    assert [(n.kind, n.total) for n in report.notes] == [("debit", Decimal("6.30"))]
    assert [line.quantity_delta for line in report.notes[0].lines] == [Decimal(20)]
    assert world.invoicing().verify("acme", "2026-10").ok
