"""The read side of invoices: a tenant's invoice list and the lineage of a line (hours ->
pulses -> Kafka positions), paged. A mixin of `projections.invoices.Invoicing`, which
provides the ledger, the billing app and the live draft."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from catalog.billing import BillingApp
from catalog.invoice import InvoiceDraft
from catalog.pricing import period_bounds as pricing_period_bounds
from kernel.decimals import plain
from kernel.errors import Invalid, NotFound
from ledger.ports import LedgerStore, PulseKey

# Pulses per ledger read of `explain`.
_EXPLAIN_PAGE = 5000


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """catalog.pricing.period_bounds, with a malformed period as the Invalid category."""
    try:
        return pricing_period_bounds(period)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


@dataclass(frozen=True)
class LineageRow:
    hour: datetime
    pulse_id: str
    quantity: str
    unit: str
    position: str
    arrival: datetime


@dataclass(frozen=True)
class InvoiceSummary:
    """One row of a tenant's invoice list: `total` is the finalized document's (correction
    notes not added) or the live draft's; `sha256` only for a finalized invoice."""

    period: str
    status: Literal["draft", "finalized"]
    total: Decimal
    currency: str
    notes: int
    sha256: str | None


class InvoiceListing:
    """Invoice lists and line lineage, on the ledger and billing app of `Invoicing`."""

    _ledger: LedgerStore
    _app: BillingApp

    def draft(self, tenant_id: str, period: str) -> InvoiceDraft:
        raise NotImplementedError  # Invoicing.draft

    def explain(self, tenant_id: str, period: str, sku: str) -> list[LineageRow]:
        """Line -> hourly buckets -> pulse ids -> Kafka partition/offset and arrival time: every
        page of `lineage`, in (hour, pulse id) order."""
        rows = self.lineage(tenant_id, period, sku, limit=_EXPLAIN_PAGE)
        while len(rows) % _EXPLAIN_PAGE == 0:
            last = rows[-1]
            more = self.lineage(
                tenant_id, period, sku, limit=_EXPLAIN_PAGE, after=(last.hour, last.pulse_id)
            )
            if not more:
                break
            rows += more
        return rows

    def lineage(
        self, tenant_id: str, period: str, sku: str, *, limit: int, after: PulseKey | None = None
    ) -> list[LineageRow]:
        """A page of `explain`: the line's pulses in (hour, pulse id) order after `after`;
        NotFound when the SKU has no usage in the period at all (asked for the first page)."""
        start, end = period_bounds(period)
        events = self._ledger.pulses(tenant_id, start, end, limit=limit, after=after, sku=sku)
        if not events and after is None:
            raise NotFound(f"no usage of {sku} for tenant {tenant_id} in {period}")
        return [
            LineageRow(
                e.hour,
                e.pulse.pulse_id,
                plain(e.pulse.used_amount),
                e.pulse.use_unit,
                str(e.position),
                e.arrival,
            )
            for e in events
        ]

    def periods(self, tenant_id: str) -> list[str]:
        """Periods with an invoice to list, newest first: every finalized one, and every month
        in which the ledger holds usage of the tenant (a draft until it is finalized)."""
        used = {f"{hour:%Y-%m}" for hour in self._ledger.hours(tenant_id)}
        return sorted(used | set(self._app.invoice_periods(tenant_id)), reverse=True)

    def summaries(
        self, tenant_id: str, *, limit: int, before: str | None = None
    ) -> tuple[list[InvoiceSummary], bool]:
        """The tenant's invoices of `periods` older than `before`, at most `limit`, and whether
        more follow. A draft is priced now (as `draft`), so `limit` bounds the pricing work."""
        periods = [p for p in self.periods(tenant_id) if before is None or p < before]
        out: list[InvoiceSummary] = []
        for period in periods[:limit]:
            invoice = self._app.invoice(tenant_id, period)
            if invoice is not None:
                document = json.loads(invoice.document)
                out.append(
                    InvoiceSummary(
                        period,
                        "finalized",
                        Decimal(document["total"]),
                        document["currency"],
                        len(invoice.corrections),
                        invoice.sha256,
                    )
                )
            else:
                draft = self.draft(tenant_id, period)
                out.append(InvoiceSummary(period, "draft", draft.total, draft.currency, 0, None))
        return out, len(periods) > limit
