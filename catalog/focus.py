"""FinOps FOCUS 1.0 cost rows of an invoice (pure): one row per invoice line, one per correction.

The rows are the invoice itself re-shaped, never a second pricing: a draft's lines, or a
finalized document followed by its correction notes (DESIGN invariant 8). So Σ BilledCost of
an export equals the invoice total to the cent: the finalized total plus every note's total,
which is the last document's total.

Mapping (docs/operations.md "FOCUS export" has the full table):

* BilledCost = EffectiveCost = ContractedCost = the line `amount` (the one rounding, pricing
  rule 7). Contract discounts and price overrides are negotiated rates, hence in
  ContractedCost; there are no amortized commitment discounts, so EffectiveCost is BilledCost.
* ListCost = the line `subtotal` before discount, rounded like `amount` (half-even to the
  currency's minor unit). With a contract price override it is the override plan's subtotal:
  the line does not carry the catalog price.
* ChargeCategory: `Usage` for usage lines, `Adjustment` for the minimum-charge and committed
  spend true-ups; a correction row has the category of the line it corrects and
  ChargeClass `Correction`, with the deltas as its cost and quantities.
* ChargePeriod = the line's segment (the period split at effective dates, pricing rule 3);
  BillingPeriod = the calendar month (UTC).
* Unpriced usage (listed on the invoice, not billed) has no row: it has no cost.

Column names follow the FOCUS 1.0 specification. The FinOps Foundation validator 1.0.0 still
names four of them as the 1.0 preview did (Provider, Publisher, InvoiceIssuer, ResourceID);
`VALIDATOR_ALIASES` lists them and `rows(..., validator_aliases=True)` adds those columns too.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from catalog.invoice import (
    CorrectionLine,
    CorrectionNote,
    InvoiceDraft,
    InvoiceLine,
    LineKind,
    TierCharge,
    UnpricedUsage,
)
from catalog.lines import round_line
from catalog.pricing import period_bounds
from catalog.terms import PlanKind
from kernel.decimals import plain

FOCUS_VERSION = "1.0"
ISSUER = "pulse-ledger"

COLUMNS: tuple[str, ...] = (
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
)

# FOCUS 1.0 name -> the name focus-validator 1.0.0 checks (its rules kept the preview names).
VALIDATOR_ALIASES: dict[str, str] = {
    "InvoiceIssuerName": "InvoiceIssuer",
    "ProviderName": "Provider",
    "PublisherName": "Publisher",
    "ResourceId": "ResourceID",
}

# Our catalog categories -> FOCUS 1.0 ServiceCategory (a closed list in the specification).
SERVICE_CATEGORIES: dict[str, str] = {
    "compute": "Compute",
    "storage": "Storage",
    "network": "Networking",
}

_CHARGE_CATEGORY: dict[str, str] = {
    "usage": "Usage",
    "minimum": "Adjustment",
    "commitment": "Adjustment",
}

Row = dict[str, str]  # column -> text; "" is null (CSV has no other null)


def service_category(category: str) -> str:
    """The FOCUS ServiceCategory of one of our catalog categories (`Other` when unmapped)."""
    return SERVICE_CATEGORIES.get(category, "Other")


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _money(amount: Decimal, currency: str) -> str:
    """A cost as text with the currency's minor unit (0.50, not 0.5); amounts and deltas of
    amounts are already at that unit, so this rounds nothing of theirs."""
    return format(round_line(amount, currency), "f")


def _unit_price(line: InvoiceLine) -> str:
    """The price per pricing unit when one price applies to every unit of the line (a
    per-unit plan, or a single tier); null otherwise (tiers and packages have none)."""
    if line.kind != "usage" or len(line.tiers) != 1 or line.plan_kind == "package":
        return ""
    return plain(line.tiers[0].unit_price)


def _description(line: InvoiceLine) -> str:
    match line.kind:
        case "minimum":
            return f"{line.name}: minimum charge adjustment for the period"
        case "commitment":
            return "committed monthly spend: true-up to the commitment"
        case _:
            plan = f"{line.plan_kind} plan" if line.plan_kind else "no plan"
            source = ", contract price" if line.plan_source == "contract" else ""
            discount = (
                f", {plain(line.discount_percent)}% discount" if line.discount_percent else ""
            )
            return f"{line.name} ({plan}{source}{discount})"


def _sku_price_id(line: InvoiceLine) -> str:
    """Identifies the price a line was charged at: SKU, plan source, segment start."""
    if line.kind == "commitment":
        return "commitment"
    return f"{line.sku}:{line.plan_source}:{line.segment_start:%Y-%m-%d}"


@dataclass(frozen=True, slots=True)
class _Account:
    tenant_id: str
    period: str
    currency: str

    def columns(self) -> Row:
        start, end = period_bounds(self.period)
        return {
            "BillingAccountId": self.tenant_id,
            "BillingAccountName": self.tenant_id,
            "SubAccountId": self.tenant_id,
            "SubAccountName": self.tenant_id,
            "BillingCurrency": self.currency,
            "BillingPeriodStart": _time(start),
            "BillingPeriodEnd": _time(end),
            "InvoiceIssuerName": ISSUER,
            "ProviderName": ISSUER,
            "PublisherName": ISSUER,
        }


def _line_columns(line: InvoiceLine) -> Row:
    """The columns that describe what was charged (not how much)."""
    usage = line.kind == "usage"
    return {
        "ChargeCategory": _CHARGE_CATEGORY[line.kind],
        "ChargeDescription": _description(line),
        "ChargeFrequency": "Usage-Based" if usage else "Recurring",
        "ChargePeriodStart": _time(line.segment_start),
        "ChargePeriodEnd": _time(line.segment_end),
        "ConsumedUnit": line.unit if usage else "",
        "PricingUnit": line.unit if usage else "",
        "PricingCategory": "Standard" if usage else "",
        "ServiceName": line.name,
        "ServiceCategory": service_category(line.category),
        "SkuId": line.sku,
        "SkuPriceId": _sku_price_id(line),
        "ListUnitPrice": _unit_price(line) if line.plan_source == "catalog" else "",
        "ContractedUnitPrice": _unit_price(line),
    }


def _empty() -> Row:
    return dict.fromkeys(COLUMNS, "")


def line_row(account: _Account, line: InvoiceLine) -> Row:
    """The FOCUS row of one invoice line."""
    usage = line.kind == "usage"
    amount = _money(line.amount, account.currency)
    row = _empty() | account.columns() | _line_columns(line)
    row |= {
        "BilledCost": amount,
        "EffectiveCost": amount,
        "ContractedCost": amount,
        "ListCost": _money(line.subtotal, account.currency),
        "ConsumedQuantity": plain(line.quantity) if usage else "",
        "PricingQuantity": plain(line.billable) if usage else "",
    }
    return row


def correction_row(
    account: _Account, note: CorrectionNote, delta: CorrectionLine, line: InvoiceLine
) -> Row:
    """The FOCUS row of one line of a correction note: the deltas, described by `line` (the
    corrected line as the revised document has it, or as the previous one had it when the
    revision dropped it)."""
    usage = delta.kind == "usage"
    amount = _money(delta.amount_delta, account.currency)
    row = _empty() | account.columns() | _line_columns(line)
    row |= {
        "ChargeClass": "Correction",
        "ChargeDescription": f"{note.title} to invoice {note.references[:16]}: "
        + row["ChargeDescription"],
        "BilledCost": amount,
        "EffectiveCost": amount,
        "ContractedCost": amount,
        "ListCost": amount,
        "ConsumedQuantity": plain(delta.quantity_delta) if usage else "",
        "PricingQuantity": plain(delta.quantity_delta) if usage else "",
    }
    return row


def draft_rows(draft: InvoiceDraft) -> list[Row]:
    """FOCUS rows of a draft (live or finalized): one per line, in line order."""
    account = _Account(draft.tenant_id, draft.period, draft.currency)
    return [line_row(account, line) for line in draft.lines]


def finalized_rows(document: InvoiceDraft, notes: Sequence[CorrectionNote]) -> list[Row]:
    """FOCUS rows of a finalized invoice: its lines, then each note's lines as corrections."""
    account = _Account(document.tenant_id, document.period, document.currency)
    out = draft_rows(document)
    previous = _by_key(document.lines)
    for note in notes:
        revised = _by_key(draft_from_json(note.document).lines)
        for delta in note.lines:
            key = (delta.sku, delta.segment_start, delta.kind)
            line = revised.get(key) or previous[key]
            out.append(correction_row(account, note, delta, line))
        previous = revised
    return out


def with_validator_aliases(rows: Iterable[Row]) -> list[Row]:
    """`rows` with the four columns also under the names focus-validator 1.0.0 checks."""
    return [row | {alias: row[name] for name, alias in VALIDATOR_ALIASES.items()} for row in rows]


def to_csv(rows: Iterable[Row], columns: Sequence[str] = COLUMNS) -> str:
    """The rows as CSV text: a header, then one record per row; null is an empty field."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def billed_total(rows: Iterable[Mapping[str, str]]) -> Decimal:
    """Σ BilledCost of `rows` (exact)."""
    return sum((Decimal(row["BilledCost"]) for row in rows), Decimal(0))


def _by_key(lines: Iterable[InvoiceLine]) -> dict[tuple[str, datetime, LineKind], InvoiceLine]:
    return {line.key: line for line in lines}


# ---------------------------------------------------------------------------------------
# A stored document (canonical JSON, catalog.invoice) back to its value.
# ---------------------------------------------------------------------------------------


def draft_from_json(text: str) -> InvoiceDraft:
    """The InvoiceDraft of its canonical JSON (what a finalized invoice and a note store)."""
    doc: dict[str, Any] = json.loads(text)

    def when(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    def number(text: str | None) -> Decimal | None:
        return None if text is None else Decimal(text)

    lines = tuple(
        InvoiceLine(
            sku=ln["sku"],
            name=ln["name"],
            category=ln["category"],
            segment_start=when(ln["segment_start"]),
            segment_end=when(ln["segment_end"]),
            quantity=Decimal(ln["quantity"]),
            unit=ln["unit"],
            allowance_used=Decimal(ln["allowance_used"]),
            billable=Decimal(ln["billable"]),
            plan_kind=None if ln["plan_kind"] is None else PlanKind(ln["plan_kind"]),
            plan_source=ln["plan_source"],
            tiers=tuple(
                TierCharge(
                    Decimal(t["from_qty"]),
                    number(t["to_qty"]),
                    Decimal(t["quantity"]),
                    Decimal(t["unit_price"]),
                    Decimal(t["amount"]),
                )
                for t in ln["tiers"]
            ),
            subtotal=Decimal(ln["subtotal"]),
            discount_percent=Decimal(ln["discount_percent"]),
            discount_amount=Decimal(ln["discount_amount"]),
            amount=Decimal(ln["amount"]),
            kind=ln["kind"],
            hours=tuple(when(h) for h in ln["hours"]),
        )
        for ln in doc["lines"]
    )
    unpriced = tuple(
        UnpricedUsage(u["sku"], u["unit"], Decimal(u["quantity"]), u["reason"])
        for u in doc["unpriced"]
    )
    return InvoiceDraft(
        tenant_id=doc["tenant_id"],
        period=doc["period"],
        currency=doc["currency"],
        lines=lines,
        unpriced=unpriced,
        total=Decimal(doc["total"]),
        positions=tuple((int(p), int(o)) for p, o in doc["positions"]),
    )
