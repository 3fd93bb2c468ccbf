"""Invoice drafts, finalization, verification, corrections and lineage: the billing use cases."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError

from catalog.billing import BillingApp
from catalog.invoice import InvoiceDraft, canonical_json, correction, invoice_hash, note_kind
from catalog.pricing import draft_invoice
from catalog.pricing import period_bounds as pricing_period_bounds
from catalog.terms import ContractTerms, ProductTerms
from kernel.decimals import plain
from kernel.errors import Conflict, Invalid, NotFound, Unavailable
from ledger.model import LedgerEvent
from ledger.ports import LedgerStore
from projections.hourly import HourlyUsage, derive_hour
from projections.ports import UsageStore

Positions = dict[int, int]  # partition -> greatest offset included


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """catalog.pricing.period_bounds, with a malformed period as the Invalid category."""
    try:
        return pricing_period_bounds(period)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def _within(event: LedgerEvent, positions: Positions | None) -> bool:
    if positions is None:
        return True
    limit = positions.get(event.position.partition)
    return limit is not None and event.position.offset <= limit


def period_events(ledger: LedgerStore, tenant_id: str, period: str) -> list[list[LedgerEvent]]:
    """The tenant's ledger events of the period, one list per UTC hour that holds any."""
    start, end = period_bounds(period)
    return [
        ledger.events_in_hour(tenant_id, hour)
        for hour in ledger.hours(tenant_id)
        if start <= hour < end
    ]


def usage_of(
    hours: list[list[LedgerEvent]],
    products: dict[str, ProductTerms],
    positions: Positions | None = None,
) -> tuple[list[HourlyUsage], Positions]:
    """Hourly usage derived from ledger events — as known at `positions` when given — and the
    greatest position of each partition it includes."""
    units = {sku: p.billing_unit for sku, p in products.items()}
    rows: list[HourlyUsage] = []
    covered: Positions = {}
    for hour in hours:
        events = [e for e in hour if _within(e, positions)]
        for e in events:
            p = e.position.partition
            covered[p] = max(covered.get(p, -1), e.position.offset)
        rows.extend(derive_hour(events, units.get))
    return rows, covered


def ledger_usage(
    ledger: LedgerStore,
    tenant_id: str,
    period: str,
    products: dict[str, ProductTerms],
    positions: Positions | None = None,
) -> tuple[list[HourlyUsage], Positions]:
    """usage_of the period's ledger events."""
    return usage_of(period_events(ledger, tenant_id, period), products, positions)


@dataclass(frozen=True)
class Verification:
    ok: bool
    recorded: str
    derived: str


@dataclass(frozen=True)
class LineageRow:
    hour: datetime
    pulse_id: str
    quantity: str
    unit: str
    position: str
    arrival: datetime


class Invoicing:
    def __init__(
        self,
        app: BillingApp,
        ledger: LedgerStore,
        usage: UsageStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._clock = clock
        self._app = app
        self._ledger = ledger
        self._usage = usage

    def _contract(self, tenant_id: str) -> tuple[ContractTerms | None, int | None]:
        found = self._app.contract(tenant_id)
        return (None, None) if found is None else found

    def draft(self, tenant_id: str, period: str) -> InvoiceDraft:
        """The live draft from the hourly-usage projection and the terms in force now."""
        start, end = period_bounds(period)
        contract, _version = self._contract(tenant_id)
        rows = self._usage.usage(tenant_id, start, end)
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
        products = self._app.products()
        contract, contract_version = self._contract(tenant_id)
        rows, covered = ledger_usage(self._ledger, tenant_id, period, products)
        draft = draft_invoice(tenant_id, period, rows, products, contract)
        digest = invoice_hash(draft)
        pins = {
            "positions": {str(p): o for p, o in sorted(covered.items())},
            "products": self._app.product_versions(),
            "contract": contract_version,
        }
        self._app.record_finalized(tenant_id, period, canonical_json(draft), digest, pins)
        return draft, digest

    def verify(self, tenant_id: str, period: str) -> Verification:
        """Re-derives the finalized invoice from the ledger up to its recorded positions with
        the catalog and contract versions it used, and compares the SHA-256."""
        invoice = self._require(tenant_id, period)
        positions, products, contract = self._pinned(tenant_id, invoice.pins)
        rows, _ = ledger_usage(self._ledger, tenant_id, period, products, positions)
        derived = invoice_hash(draft_invoice(tenant_id, period, rows, products, contract))
        return Verification(derived == invoice.sha256, invoice.sha256, derived)

    def correct(self, tenant_id: str, period: str) -> dict[str, Any] | None:
        """If the ledger now holds usage the last document of the period did not, records a
        correction document (credit/debit note) with the difference per line and returns it."""
        invoice = self._require(tenant_id, period)
        positions, products, contract = self._pinned(tenant_id, invoice.pins)
        if invoice.corrections:
            last = invoice.corrections[-1]["pins"]["positions"]
            positions = {int(p): o for p, o in last.items()}
        # The previous document is re-derived (reproducibly, see verify) rather than parsed,
        # from the same read of the ledger as the revision.
        hours = period_events(self._ledger, tenant_id, period)
        before, _ = usage_of(hours, products, positions)
        previous = draft_invoice(tenant_id, period, before, products, contract)
        rows, covered = usage_of(hours, products)
        revised = draft_invoice(tenant_id, period, rows, products, contract)
        lines = correction(previous, revised)
        if not lines:
            return None
        total = revised.total - previous.total
        note = {
            "document": canonical_json(revised),
            "sha256": invoice_hash(revised),
            "lines": [
                {
                    "sku": c.sku,
                    "segment_start": c.segment_start.isoformat(),
                    "kind": c.kind,
                    "quantity_delta": plain(c.quantity_delta),
                    "amount_delta": plain(c.amount_delta),
                }
                for c in lines
            ],
            "total": plain(total),
            "pins": {**invoice.pins, "positions": {str(p): o for p, o in sorted(covered.items())}},
        }
        self._app.record_correction(invoice, **note)
        kind = {"debit": "debit note", "credit": "credit note", "none": "zero-sum note"}
        return {**note, "kind": kind[note_kind(total)], "references": invoice.sha256}

    def correct_touched(self, touched: Iterable[tuple[str, datetime]]) -> list[dict[str, Any]]:
        """Correction notes for the finalized periods that these tenant-hours fall in (the
        projector calls this after re-deriving hours, so late usage is noted at once)."""
        notes = []
        # Only ended months can be finalized: hours of the running month (all live traffic)
        # need no look-up in the event store.
        now = self._clock()
        try:
            for tenant, period in sorted({(t, f"{h:%Y-%m}") for t, h in touched}):
                if period_bounds(period)[1] > now:
                    continue
                if self._app.invoice(tenant, period) is not None:
                    note = self.correct(tenant, period)
                    if note is not None:
                        notes.append(note)
        except (OperationalError, InterfaceError) as exc:  # the event store: transient
            raise Unavailable(f"event store: {exc}") from exc
        return notes

    def explain(self, tenant_id: str, period: str, sku: str) -> list[LineageRow]:
        """Line -> hourly buckets -> pulse ids -> Kafka partition/offset and arrival time."""
        start, end = period_bounds(period)
        out = []
        for hour in self._ledger.hours(tenant_id):
            if not start <= hour < end:
                continue
            for e in self._ledger.events_in_hour(tenant_id, hour):
                if e.pulse.product_sku == sku:
                    out.append(
                        LineageRow(
                            hour,
                            e.pulse.pulse_id,
                            plain(e.pulse.used_amount),
                            e.pulse.use_unit,
                            str(e.position),
                            e.arrival,
                        )
                    )
        if not out:
            raise NotFound(f"no usage of {sku} for tenant {tenant_id} in {period}")
        return sorted(out, key=lambda r: (r.hour, r.pulse_id))

    def finalized(self, tenant_id: str, period: str) -> Any:
        """The finalized Invoice aggregate of the period, or None."""
        return self._app.invoice(tenant_id, period)

    def _require(self, tenant_id: str, period: str) -> Any:
        invoice = self._app.invoice(tenant_id, period)
        if invoice is None:
            raise NotFound(f"no finalized invoice of {tenant_id} for {period}")
        return invoice

    def _pinned(
        self, tenant_id: str, pins: dict[str, Any]
    ) -> tuple[Positions, dict[str, ProductTerms], ContractTerms | None]:
        products = self._app.products_at(pins["products"])
        version = pins["contract"]
        contract = None if version is None else self._app.contract_at(tenant_id, version)
        positions = {int(p): o for p, o in pins["positions"].items()}
        return positions, products, contract
