"""Finalize and corrections racing the ledger writer (DESIGN invariant 10: what is pinned is a
prefix): a writer commit between two hour reads must end up on the invoice or in a note."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from catalog.billing import BillingApp
from catalog.files import read_catalog
from kernel.errors import Conflict
from ledger import codec
from ledger.model import LedgerEvent, Position, Pulse
from ledger.ports import (
    ConflictKey,
    ConflictRecord,
    LedgerStore,
    OutgoingRecord,
    PulseKey,
    PulseLog,
    TenantConflictKey,
)
from ledger.sqlite_store import SQLiteLedgerStore
from ledger.writer import LedgerWriter, wait_until
from projections.invoices import Invoicing, writer_commits
from projections.sqlite import SQLiteUsageStore
from pulse.bootstrap import SAMPLE_CATALOG

PERIOD = "2026-10"
H1 = datetime(2026, 10, 5, 9, tzinfo=UTC)
H2 = datetime(2026, 10, 6, 9, tzinfo=UTC)
NOW = datetime(2026, 12, 1, tzinfo=UTC)


class InterleavedLedger:
    """The real ledger store; right after the first hour read, runs `between` once (the writer
    committing while finalize or correct is half-way through its reads)."""

    def __init__(self, inner: LedgerStore) -> None:
        self._inner = inner
        self.between: Callable[[], None] | None = None

    def events_in_hour(self, tenant_id: str, hour: datetime) -> list[LedgerEvent]:
        events = self._inner.events_in_hour(tenant_id, hour)
        between, self.between = self.between, None
        if between is not None:
            between()
        return events

    def seen(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        return self._inner.seen(keys)

    def append(self, events: Sequence[LedgerEvent]) -> None:
        self._inner.append(events)

    def record_conflicts(self, conflicts: Sequence[ConflictRecord]) -> None:
        self._inner.record_conflicts(conflicts)

    def get(self, tenant_id: str, pulse_id: str) -> LedgerEvent | None:
        return self._inner.get(tenant_id, pulse_id)

    def hours(self, tenant_id: str) -> list[datetime]:
        return self._inner.hours(tenant_id)

    def tenants(self) -> list[str]:
        return self._inner.tenants()

    def conflicts(
        self, tenant_id: str, after: ConflictKey | None = None, limit: int | None = None
    ) -> list[ConflictRecord]:
        return self._inner.conflicts(tenant_id, after, limit)

    def pulses(
        self,
        tenant_id: str,
        start: datetime,
        end: datetime,
        *,
        limit: int,
        after: PulseKey | None = None,
        sku: str | None = None,
    ) -> list[LedgerEvent]:
        return self._inner.pulses(tenant_id, start, end, limit=limit, after=after, sku=sku)

    def tenants_between(
        self, start: datetime, end: datetime, *, limit: int, after: str | None = None
    ) -> list[str]:
        return self._inner.tenants_between(start, end, limit=limit, after=after)

    def all_conflicts(
        self, *, limit: int, after: TenantConflictKey | None = None
    ) -> list[ConflictRecord]:
        return self._inner.all_conflicts(limit=limit, after=after)

    def close(self) -> None:
        self._inner.close()


@dataclass
class Setup:
    log: PulseLog
    ledger: InterleavedLedger
    writer: LedgerWriter
    tenant: str
    group: str  # the writer's consumer group, one per test

    def publish(self, pulses: Sequence[Pulse]) -> None:
        self.log.publish(
            [OutgoingRecord(p.tenant_id.encode(), codec.encode(p)) for p in pulses], NOW
        )

    def write_all(self) -> None:
        """Runs the real writer until its group has committed everything in the log."""

        def done() -> bool:
            self.writer.run_once()
            ends = {p: o for p, o in self.log.end_offsets().items() if o > 0}
            committed = self.log.committed(self.group)
            return all(committed.get(p, 0) >= o for p, o in ends.items())

        assert wait_until(done, timeout=60, interval=0), (
            self.log.end_offsets(),
            self.log.committed(self.group),
        )


@pytest.fixture(params=["embedded", pytest.param("servers", marks=pytest.mark.servers)])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    log: PulseLog
    store: LedgerStore
    if request.param == "embedded":
        from ledger.sqlite import SQLitePulseLog
        from ledger.sqlite_store import SQLiteLedgerStore

        log = SQLitePulseLog(tmp_path / "log.sqlite", partitions=3)
        store = SQLiteLedgerStore(tmp_path / "ledger.sqlite")
    else:
        from ledger.kafka import KafkaPulseLog
        from ledger.scylla import ScyllaLedgerStore
        from tests.backends import kafka_settings

        log = KafkaPulseLog(kafka_settings(request.getfixturevalue("kafka_bootstrap")).config())
        store = ScyllaLedgerStore(
            request.getfixturevalue("cql_session"), request.getfixturevalue("migrated_keyspace")
        )
    ledger = InterleavedLedger(store)
    # Batches of two records: the test decides which records each commit covers.
    # A group of its own: a static member of a shared group left by the previous test can
    # hold this test's writer off its partitions past the test's patience.
    group = f"writer-{uuid.uuid4().hex[:8]}"
    consumer = log.consumer(group)
    writer = LedgerWriter(log, ledger, consumer, batch_size=2, poll_timeout=0.5)
    yield Setup(log, ledger, writer, f"race-{uuid.uuid4().hex[:8]}", group)
    consumer.close()
    log.close()


def egress(tenant: str, pulse_id: str, gb: str, at: datetime) -> Pulse:
    return Pulse(pulse_id, tenant, "network.egress", Decimal(gb), "GB", at)


def billing(tmp_path: Path) -> BillingApp:
    app = BillingApp(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "b.db")}
    )
    app.apply_catalog(read_catalog(SAMPLE_CATALOG.read_text()))
    return app


def egress_gb(invoicing: Invoicing, tenant: str) -> Decimal:
    """Egress on the finalized invoice plus every correction note since."""
    invoice = invoicing.finalized(tenant, PERIOD)
    assert invoice is not None
    total = sum(
        (Decimal(line["quantity"]) for line in json.loads(invoice.document)["lines"]), Decimal(0)
    )
    for note in invoice.notes():
        total += sum((line.quantity_delta for line in note.lines), Decimal(0))
    return total


def test_usage_committed_between_two_hour_reads_is_billed_once(
    setup: Setup, tmp_path: Path
) -> None:
    # given: 10 GB in each of two hours, written and committed by the writer
    t = setup.tenant
    setup.publish([egress(t, "a", "10", H1), egress(t, "b", "10", H2)])
    setup.write_all()
    # ... and two more pulses in the log, one back in the first hour (500 GB): the writer
    # commits them after finalize has read the first hour and before it reads the second
    setup.publish([egress(t, "late", "500", H1 + timedelta(minutes=30)), egress(t, "c", "1", H2)])
    setup.ledger.between = setup.write_all
    invoicing = Invoicing(
        billing(tmp_path),
        setup.ledger,
        SQLiteUsageStore(tmp_path / "u.sqlite"),
        writer_commits(setup.log, setup.group),
        clock=lambda: NOW,
    )

    # when: finalized while the writer commits; then corrected, as the projector's hook would
    invoicing.finalize(t, PERIOD)
    invoicing.correct(t, PERIOD)

    # then: every GB of the ledger is on the invoice or a note, once, and verify holds
    verification = invoicing.verify(t, PERIOD)
    assert verification.ok, verification
    assert egress_gb(invoicing, t) == Decimal(521)


# --- two correctors of one invoice: `pulse invoice correct` beside the projector's hook ------


class RacingApp(BillingApp):
    """The real billing app; its first correction waits at `barrier` until the other corrector
    has computed its note too, so both record a note on the same invoice version."""

    name = "billing"  # the same event store as BillingApp (eventsourcing names by class)
    barrier: threading.Barrier

    def record_correction(self, *args: Any, **kwargs: Any) -> None:
        if not getattr(self, "raced", False):
            self.raced = True
            self.barrier.wait(timeout=30)
        super().record_correction(*args, **kwargs)


def test_two_concurrent_correctors_record_one_note_and_raise_nothing(
    event_store_env: dict[str, str], tmp_path: Path
) -> None:
    # given: an invoice finalized over 10 GB, then 500 GB more durably written
    tenant = f"race-{uuid.uuid4().hex[:8]}"
    ledger = SQLiteLedgerStore(tmp_path / "ledger.sqlite")
    usage = SQLiteUsageStore(tmp_path / "u.sqlite")
    first = egress(tenant, "a", "10", H1)
    late = egress(tenant, "late", "500", H2)
    ledger.append([LedgerEvent.of(first, Position(0, 0), NOW)])
    committed = {0: 1}
    finalizer = BillingApp(env=event_store_env)
    finalizer.apply_catalog(read_catalog(SAMPLE_CATALOG.read_text()))
    Invoicing(finalizer, ledger, usage, lambda: committed, clock=lambda: NOW).finalize(
        tenant, PERIOD
    )
    ledger.append([LedgerEvent.of(late, Position(0, 1), NOW)])
    committed[0] = 2
    barrier = threading.Barrier(2)
    apps = [RacingApp(env=event_store_env), RacingApp(env=event_store_env)]
    for app in apps:
        app.barrier = barrier
    operator, projector = (
        Invoicing(app, ledger, usage, lambda: committed, clock=lambda: NOW) for app in apps
    )
    errors: list[BaseException] = []

    def run(action: Callable[[], object]) -> None:
        try:
            action()
        except BaseException as exc:  # the test reports what would have killed the thread
            errors.append(exc)

    # when: the operator's `invoice correct` and the projector's hook run at once
    threads = [
        threading.Thread(target=run, args=(lambda: operator.correct(tenant, PERIOD),)),
        threading.Thread(target=run, args=(lambda: projector.correct_touched({(tenant, H2)}),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then: nothing escaped, one note for the 500 GB, and the invoice verifies
    assert errors == []
    invoice = finalizer.invoice(tenant, PERIOD)
    assert invoice is not None and len(invoice.corrections) == 1
    assert egress_gb(operator, tenant) == Decimal(510)
    assert operator.verify(tenant, PERIOD).ok
    assert operator.correct(tenant, PERIOD) is None


class RacingFinalizer(BillingApp):
    """The real billing app; its finalize waits at `barrier` until the other one has derived
    its invoice too."""

    name = "billing"
    barrier: threading.Barrier

    def record_finalized(self, *args: Any, **kwargs: Any) -> Any:
        self.barrier.wait(timeout=30)
        return super().record_finalized(*args, **kwargs)


def test_two_concurrent_finalizes_record_one_invoice_the_other_is_a_conflict(
    tmp_path: Path,
) -> None:
    # given
    tenant = f"race-{uuid.uuid4().hex[:8]}"
    ledger = SQLiteLedgerStore(tmp_path / "ledger.sqlite")
    usage = SQLiteUsageStore(tmp_path / "u.sqlite")
    ledger.append([LedgerEvent.of(egress(tenant, "a", "10", H1), Position(0, 0), NOW)])
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "b")}
    barrier = threading.Barrier(2)
    apps = [RacingFinalizer(env=env), RacingFinalizer(env=env)]
    apps[0].apply_catalog(read_catalog(SAMPLE_CATALOG.read_text()))
    outcomes: list[object] = []

    def finalize(app: RacingFinalizer) -> None:
        app.barrier = barrier
        service = Invoicing(app, ledger, usage, lambda: {0: 1}, clock=lambda: NOW)
        try:
            outcomes.append(service.finalize(tenant, PERIOD)[1])
        except Exception as exc:
            outcomes.append(exc)

    # when
    threads = [threading.Thread(target=finalize, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then: one invoice; the other finalize is told so, in the Conflict category
    digests = [o for o in outcomes if isinstance(o, str)]
    conflicts = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(digests) == 1 and len(conflicts) == 1, outcomes
    assert "already finalized" in str(conflicts[0])


# --- finalize beside `pulse catalog apply` ---------------------------------------------------


def repriced_egress() -> str:
    """The sample catalog with a new egress price from October 2026 on."""
    text = SAMPLE_CATALOG.read_text()
    start = text.index("  - sku: network.egress\n")
    end = text.index("  - sku: ", start + 1)
    new_plan = '      - {effective_from: "2026-10-01", kind: per_unit, unit_price: "9.99"}\n'
    return text[:end] + new_plan + text[end:]


class ApplyAfterCatalogRead(BillingApp):
    """The real billing app; right after finalize has read the catalog's terms, an operator's
    `pulse catalog apply` reprices egress (once)."""

    name = "billing"

    def versioned_products(self) -> Any:
        found = super().versioned_products()
        self._apply_once()
        return found

    def products(self) -> Any:
        found = super().products()
        self._apply_once()
        return found

    def _apply_once(self) -> None:
        if not getattr(self, "applied", False):
            self.applied = True
            BillingApp(env=self.env).apply_catalog(read_catalog(repriced_egress()))


def test_a_catalog_applied_while_finalizing_is_not_pinned_to_the_invoice(
    setup: Setup, tmp_path: Path
) -> None:
    # given: 20 GB of egress in October, written
    t = setup.tenant
    setup.publish([egress(t, "a", "10", H1), egress(t, "b", "10", H2)])
    setup.write_all()
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "b.db")}
    billing(tmp_path)  # the catalog as it stood
    invoicing = Invoicing(
        ApplyAfterCatalogRead(env=env),
        setup.ledger,
        SQLiteUsageStore(tmp_path / "u.sqlite"),
        writer_commits(setup.log, setup.group),
        clock=lambda: NOW,
    )
    # when: finalized while the catalog is repriced
    draft, _digest = invoicing.finalize(t, PERIOD)
    # then: the invoice re-derives from the catalog versions it pins: the ones that priced it
    verification = invoicing.verify(t, PERIOD)
    assert verification.ok, verification
    (line,) = [x for x in draft.lines if x.sku == "network.egress"]
    assert "9.99" not in json.dumps(json.loads(invoicing.finalized(t, PERIOD).document))
    assert line.quantity == Decimal(20)
