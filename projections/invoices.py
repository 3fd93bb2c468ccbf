"""Invoice drafts, finalization, verification and corrections: the billing use cases (their
lists and lineage: `projections.invoice_lists`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from catalog.billing import BillingApp
from catalog.invoice import (
    CorrectionNote,
    InvoiceDraft,
    Pins,
    canonical_json,
    correction_note,
    invoice_hash,
)
from catalog.pricing import draft_invoice, draft_invoice_columns
from catalog.terms import ContractTerms, ProductTerms
from kernel.errors import Conflict, Invalid, NotFound, Unavailable
from ledger.model import LedgerEvent
from ledger.ports import LedgerStore, PulseLog
from projections.hourly import HourlyUsage, derive_hour
from projections.invoice_lists import InvoiceListing, period_bounds
from projections.ports import UsageStore

Positions = dict[int, int]  # partition -> greatest offset included

# Each failed attempt means another corrector recorded a note, so this bounds only contention.
_CORRECTION_ATTEMPTS = 10

WriterCommits = Callable[[], Mapping[int, int]]
"""The ledger writer group's committed offsets (PulseLog.committed): per partition, the next
offset the writer will read — everything below it is durably in the ledger."""


def writer_commits(log: PulseLog, group: str) -> WriterCommits:
    """What `Invoicing` pins positions from: the committed offsets of the writer `group`."""
    return lambda: log.committed(group)


def covered_by(committed: Mapping[int, int]) -> Positions:
    """The greatest offset per partition that the writer has durably stored: a committed
    offset is the next one to read, so it covers the one before; a partition without a commit
    covers nothing."""
    return {p: o - 1 for p, o in committed.items() if o > 0}


def _within(event: LedgerEvent, positions: Positions) -> bool:
    limit = positions.get(event.position.partition)
    return limit is not None and event.position.offset <= limit


def period_events(ledger: LedgerStore, tenant_id: str, period: str) -> list[list[LedgerEvent]]:
    """The tenant's ledger events of the period, one list per UTC hour that holds any.

    Each hour is its own read, so the lists are no snapshot: events keep arriving while they
    are read. Callers fix their positions *before* this read and keep only what is at or below
    them (DESIGN invariant 10): everything up to a writer commit is in the ledger by then.
    """
    start, end = period_bounds(period)
    return [
        ledger.events_in_hour(tenant_id, hour)
        for hour in ledger.hours(tenant_id)
        if start <= hour < end
    ]


def usage_of(
    hours: list[list[LedgerEvent]], products: dict[str, ProductTerms], positions: Positions
) -> list[HourlyUsage]:
    """Hourly usage derived from the ledger events at or below `positions`."""
    units = {sku: p.billing_unit for sku, p in products.items()}
    rows: list[HourlyUsage] = []
    for hour in hours:
        rows.extend(derive_hour([e for e in hour if _within(e, positions)], units.get))
    return rows


def ledger_usage(
    ledger: LedgerStore,
    tenant_id: str,
    period: str,
    products: dict[str, ProductTerms],
    positions: Positions,
) -> list[HourlyUsage]:
    """usage_of the period's ledger events; `positions` must have been fixed before this call."""
    return usage_of(period_events(ledger, tenant_id, period), products, positions)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _positions_doc(positions: Positions) -> dict[str, int]:
    return {str(p): o for p, o in sorted(positions.items())}


@dataclass(frozen=True)
class Verification:
    """SHA-256s of a finalized invoice: `recorded` at finalization, `derived` again from the
    ledger, `stored` of the document kept (what the API serves); `differs` names what does
    not match `recorded` (and any correction note whose stored document is not its hash)."""

    recorded: str
    derived: str
    stored: str
    differs: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.differs


class Invoicing(InvoiceListing):
    """The billing use cases. `writer_committed` tells how far the ledger writer has durably
    written (see `writer_commits`): finalize and correct pin their positions from it."""

    def __init__(
        self,
        app: BillingApp,
        ledger: LedgerStore,
        usage: UsageStore,
        writer_committed: WriterCommits,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._writer_committed = writer_committed
        self._clock = clock
        self._app = app
        self._ledger = ledger
        self._usage = usage

    def _contract(self, tenant_id: str) -> tuple[ContractTerms | None, int | None]:
        found = self._app.contract(tenant_id)
        return (None, None) if found is None else found

    def draft(self, tenant_id: str, period: str) -> InvoiceDraft:
        """The live draft from the daily-usage projection and the terms in force now.

        Daily rows price to the same document as the hourly rows they roll up (a 24th of the
        rows to read, read as columns: no object per row); finalize, verify and corrections
        derive from the ledger below their pins instead, and `draft_with` and `explain` keep
        the hourly rows they replace or show."""
        start, end = period_bounds(period)
        products, found = self._app.terms_of(tenant_id)
        contract = None if found is None else found[0]
        days = self._usage.day_columns(tenant_id, start.date(), end.date())
        return draft_invoice_columns(tenant_id, period, days, products, contract)

    def draft_with(
        self, tenant_id: str, period: str, hours: Mapping[datetime, Sequence[HourlyUsage]]
    ) -> InvoiceDraft:
        """The live draft as it would be with these hours' rows in place of the stored ones
        (a replay's dry run)."""
        start, end = period_bounds(period)
        contract, _version = self._contract(tenant_id)
        rows = [r for r in self._usage.usage(tenant_id, start, end) if r.hour not in hours]
        rows += [r for hour, found in hours.items() if start <= hour < end for r in found]
        return draft_invoice(tenant_id, period, rows, self._app.products(), contract)

    def finalize(self, tenant_id: str, period: str) -> tuple[InvoiceDraft, str]:
        """Prices the period from the ledger and records it; a finalized invoice never changes."""
        _start, end = period_bounds(period)
        if end > self._clock():
            raise Invalid(
                f"period {period} has not ended; finalize it from {end.isoformat()} on "
                "(until then `pulse invoice show` gives the live draft)"
            )
        if self._app.invoice(tenant_id, period) is not None:
            raise Conflict(
                f"invoice of {tenant_id} for {period} is already finalized; "
                "use `pulse invoice verify` or `pulse invoice correct`"
            )
        # Terms and the versions pinned come from one read: an apply between two reads would
        # pin versions other than those that priced the invoice, and verify would fail it.
        versioned = self._app.versioned_products()
        products = {sku: terms for sku, (terms, _v) in versioned.items()}
        contract, contract_version = self._contract(tenant_id)
        # Positions first, then the reads: an event below a pin that the hour-by-hour reads
        # missed would be on no invoice and in no note (invariant 10).
        positions = self._pin()
        rows = ledger_usage(self._ledger, tenant_id, period, products, positions)
        draft = draft_invoice(tenant_id, period, rows, products, contract)
        digest = invoice_hash(draft)
        pins = {
            "positions": _positions_doc(positions),
            "products": {sku: version for sku, (_t, version) in versioned.items()},
            "contract": contract_version,
        }
        try:
            self._app.record_finalized(tenant_id, period, canonical_json(draft), digest, pins)
        except Conflict:  # another finalize of the period was recorded meanwhile
            raise Conflict(f"invoice of {tenant_id} for {period} is already finalized") from None
        return draft, digest

    def verify(self, tenant_id: str, period: str) -> Verification:
        """Re-derives the finalized invoice from the ledger up to its recorded positions with
        the catalog and contract versions it used, and compares the SHA-256."""
        invoice = self._require(tenant_id, period)
        positions, products, contract = self._pinned(tenant_id, invoice.pins)
        rows = ledger_usage(self._ledger, tenant_id, period, products, positions)
        derived = invoice_hash(draft_invoice(tenant_id, period, rows, products, contract))
        stored = _sha256(invoice.document)
        differs = [
            name
            for name, digest in (("re-derived invoice", derived), ("stored document", stored))
            if digest != invoice.sha256
        ]
        differs.extend(
            f"document of correction note {n}"
            for n, note in enumerate(invoice.notes(), start=1)
            if _sha256(note.document) != note.sha256
        )
        return Verification(invoice.sha256, derived, stored, tuple(differs))

    def correct(self, tenant_id: str, period: str) -> CorrectionNote | None:
        """If the ledger now holds usage the last document of the period did not, records a
        correction document (credit/debit note) with the difference per line and returns it.

        Safe beside other correctors (`pulse invoice correct` and the projector's hook): the
        note is recorded on the invoice version it was computed from; if another note got
        there first, the event store refuses this one and it is computed again from that
        note, which usually leaves nothing to correct.
        """
        for _attempt in range(_CORRECTION_ATTEMPTS):
            invoice = self._require(tenant_id, period)
            try:
                return self._correct(invoice)
            except Conflict:
                continue  # another corrector recorded a note on this version first
        raise Unavailable(
            f"invoice of {tenant_id} for {period}: other correctors kept recording notes "
            f"first ({_CORRECTION_ATTEMPTS} attempts); try again"
        )

    def _correct(self, invoice: Any) -> CorrectionNote | None:
        tenant_id, period = invoice.tenant_id, invoice.period
        positions, products, contract = self._pinned(tenant_id, invoice.pins)
        notes = invoice.notes()
        if notes:
            positions = dict(notes[-1].pins.positions)
        # Pinned before the read, never below the previous document (a replay can move the
        # writer's commits back; what they covered then is still in the ledger).
        pins = self._pin(at_least=positions)
        # The previous document is re-derived (reproducibly, see verify) rather than parsed,
        # from the same read of the ledger as the revision.
        hours = period_events(self._ledger, tenant_id, period)
        previous = draft_invoice(
            tenant_id, period, usage_of(hours, products, positions), products, contract
        )
        rows = usage_of(hours, products, pins)
        revised = draft_invoice(tenant_id, period, rows, products, contract)
        pinned = Pins.from_doc({**invoice.pins, "positions": _positions_doc(pins)})
        note = correction_note(invoice.sha256, previous, revised, pinned)
        if note is not None:
            self._app.record_correction(invoice, note)
        return note

    def correct_touched(self, touched: Iterable[tuple[str, datetime]]) -> list[CorrectionNote]:
        """Correction notes for the finalized periods that these tenant-hours fall in (the
        projector calls this after re-deriving hours, so late usage is noted at once)."""
        notes = []
        # Only ended months can be finalized: hours of the running month (all live traffic)
        # need no look-up in the event store.
        now = self._clock()
        # The billing app raises Unavailable for a transient event-store error: the projector
        # retries its batch.
        for tenant, period in sorted({(t, f"{h:%Y-%m}") for t, h in touched}):
            if period_bounds(period)[1] > now:
                continue
            if self._app.invoice(tenant, period) is not None:
                note = self.correct(tenant, period)
                if note is not None:
                    notes.append(note)
        return notes

    def finalized(self, tenant_id: str, period: str) -> Any:
        """The finalized Invoice aggregate of the period, or None."""
        period_bounds(period)  # Invalid unless ASCII YYYY-MM: the invoice id is built from it
        return self._app.invoice(tenant_id, period)

    def _require(self, tenant_id: str, period: str) -> Any:
        period_bounds(period)
        invoice = self._app.invoice(tenant_id, period)
        if invoice is None:
            raise NotFound(f"no finalized invoice of {tenant_id} for {period}")
        return invoice

    def _pin(self, at_least: Positions | None = None) -> Positions:
        """Positions fixed from the writer's commits now, raised to `at_least` per partition."""
        pins = covered_by(self._writer_committed())
        for partition, offset in (at_least or {}).items():
            pins[partition] = max(pins.get(partition, -1), offset)
        return pins

    def _pinned(
        self, tenant_id: str, pins: dict[str, Any]
    ) -> tuple[Positions, dict[str, ProductTerms], ContractTerms | None]:
        products = self._app.products_at(pins["products"])
        version = pins["contract"]
        contract = None if version is None else self._app.contract_at(tenant_id, version)
        positions = {int(p): o for p, o in pins["positions"].items()}
        return positions, products, contract
