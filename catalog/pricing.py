"""The pricing engine (pure): metered usage x catalog plans x contract terms -> an invoice draft.

It implements DESIGN.md "Pricing rules" 1-10; the choices the rules leave open are written
here, once.

Rounding. Every amount is computed exactly, in an 80-digit context that raises
`decimal.Inexact` rather than round. Each invoice line is then rounded once, half-even, to
the currency's minor unit (`MINOR_UNITS`, 2 for a currency not listed) by
`catalog.lines.round_line`.
Nothing else rounds: tier amounts, subtotals and discount amounts keep full precision;
minimum-charge and commitment adjustments are lines and follow the same rule; the total is
the exact sum of the rounded lines.

Segments. The period (a calendar month, UTC) of a SKU is cut at every effective date inside
it of the SKU's catalog plan versions and of the tenant's contract versions (an effective
date D takes effect at D 00:00 UTC). A segment holds the usage rows whose hour lies in
[segment_start, segment_end); each segment with usage becomes one line, priced on its own
(graduated tiers restart at 0 in each segment). Since every cut is a midnight, a day never
straddles two segments: `draft_invoice_daily` prices daily rows (`MeteredDay`) to the same
document, taking each line's hours from the rows' hour masks and the draft's positions from
their per-partition offsets; `draft_invoice_columns` prices the same rows read as columns
(`MeteredDays`), again to the same document. As rule 3 says, every contract version cuts
every SKU, also one whose terms it leaves unchanged.

Free allowance. One monthly budget per SKU, consumed in event-time order (segment by
segment) by priced usage. The budget in force in a segment is the allowance of the contract
version in force in that segment; what a segment may use is that budget minus what earlier
segments of the month used, never below 0. So without an amendment the month has one
allowance; an amendment that raises it mid-month frees only the increase; one that lowers
it below what was already used leaves nothing for the rest of the month, and claws nothing
back. Usage that cannot be priced consumes no allowance.

Unpriced usage is listed per (sku, unit, reason), never dropped and never priced: rows
carrying an `unpriced_reason`, SKUs missing from the catalog, rows in another unit than the
billing unit, and segments whose terms cannot price them (no plan in force, a malformed
plan or discount, a quantity above the last tier).

Adjustments. The minimum charge is the plan's in force on the last day of the period
(contract override, else catalog); it applies when the SKU's priced quantity is above 0,
even if all of it was free. The commitment is the contract version's in force on the last
day; its true-up compares with every line, minimum adjustments included. Either line adds
the rounded shortfall, and only when that is above 0.

The invoice document (lines, canonical JSON, hash, corrections) lives in `catalog.invoice`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise

from catalog.day_columns import DaySlices, check_columns
from catalog.grains import (
    DAILY,
    HOURLY,
    Grain,
    Row,
    RowSlices,
    Slices,
    check_days,
    check_rows,
    day_ledger_positions,
    ledger_positions,
    midnight,
)
from catalog.in_force import check_ascending, in_force, terms_in_force
from catalog.invoice import InvoiceDraft, InvoiceLine, UnpricedUsage, line_order
from catalog.lines import commitment_line, minimum_line, round_line
from catalog.metered import MeteredDay, MeteredDays, MeteredUsage
from catalog.plans import PlanError, charge
from catalog.terms import (
    ContractTerms,
    ContractVersion,
    ProductTerms,
)
from kernel.decimals import STRICT, ZERO, exact_sum

# [0-9], not \d: \d also matches other scripts' digits (fullwidth, Arabic-Indic...), and a
# month must have one spelling, since the invoice id is derived from it.
_PERIOD = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a "YYYY-MM" billing period: the calendar month in UTC."""
    match = _PERIOD.fullmatch(period)
    if match is None:
        raise ValueError(f"period: {period!r} is not YYYY-MM in ASCII digits, e.g. 2024-05")
    year, month = int(match[1]), int(match[2])
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


# ---------------------------------------------------------------------------------------
# The invoice draft.
# ---------------------------------------------------------------------------------------


class _Unpriced:
    def __init__(self) -> None:
        self._sums: dict[tuple[str, str, str], Decimal] = {}

    def add(self, sku: str, unit: str, quantity: Decimal, reason: str) -> None:
        key = (sku, unit, reason)
        self._sums[key] = STRICT.add(self._sums.get(key, ZERO), quantity)

    def listed(self) -> tuple[UnpricedUsage, ...]:
        return tuple(UnpricedUsage(s, u, q, r) for (s, u, r), q in sorted(self._sums.items()))


def draft_invoice(
    tenant_id: str,
    period: str,
    usage: Sequence[MeteredUsage],
    products: Mapping[str, ProductTerms],
    contract: ContractTerms | None,
) -> InvoiceDraft:
    """The invoice draft of `tenant_id` for `period` ("YYYY-MM") from that month's usage rows.

    Pure and deterministic: the order of `usage` does not matter. Raises ValueError for rows
    of another tenant or outside the period, a repeated (hour, sku, unit) row, a contract of
    another tenant, versions out of order, or products of different currencies.
    """
    start, end = period_bounds(period)
    versions = _versions(tenant_id, contract)
    check_rows(tenant_id, period, start, end, usage)
    return _draft_rows(
        tenant_id, period, start, end, usage, HOURLY, ledger_positions(usage), products, versions
    )


def draft_invoice_daily(
    tenant_id: str,
    period: str,
    days: Sequence[MeteredDay],
    products: Mapping[str, ProductTerms],
    contract: ContractTerms | None,
) -> InvoiceDraft:
    """The same draft as `draft_invoice` gives for the hourly rows that `days` sum up.

    Segments are cut at midnights only, so a day never straddles two of them: each day row
    falls in one segment whole, its `hour_mask` gives the line's hours and its `positions`
    the draft's. Raises ValueError as `draft_invoice` does, and for two rows of one (day,
    sku, unit) that claim the same hour (it would be counted twice) or a row with no hour.
    """
    start, end = period_bounds(period)
    versions = _versions(tenant_id, contract)
    check_days(tenant_id, period, start, end, days)
    return _draft_rows(
        tenant_id, period, start, end, days, DAILY, day_ledger_positions(days), products, versions
    )


def draft_invoice_columns(
    tenant_id: str,
    period: str,
    usage: MeteredDays,
    products: Mapping[str, ProductTerms],
    contract: ContractTerms | None,
) -> InvoiceDraft:
    """The same draft as `draft_invoice_daily` gives for the day rows that `usage` holds as
    columns (one per SKU, unit and unpriced reason), without an object per row.

    Raises ValueError as `draft_invoice_daily` does (`catalog.day_columns.check_columns`),
    and for columns of different lengths or a (SKU, unit, reason) given twice.
    """
    start, end = period_bounds(period)
    versions = _versions(tenant_id, contract)
    check_columns(tenant_id, period, start, end, usage)
    columns = [column for column in usage.columns if column.days]
    currency = _currency({column.product_sku for column in columns}, products)
    unpriced = _Unpriced()
    by_sku: dict[str, Slices] = {}
    for column in columns:
        sku, unit = column.product_sku, column.unit
        reason = _unpriced_reason(sku, unit, column.unpriced_reason, products)
        if reason:
            unpriced.add(sku, unit, exact_sum(column.quantities), reason)
        else:  # (sku, its billing unit, no reason): one column a SKU
            by_sku[sku] = DaySlices(column)
    return _draft(
        tenant_id, period, start, end, currency, unpriced, by_sku, usage.positions, products,
        versions,
    )  # fmt: skip


def _versions(tenant_id: str, contract: ContractTerms | None) -> tuple[ContractVersion, ...]:
    if contract is None:
        return ()
    if contract.tenant_id != tenant_id:
        raise ValueError(f"contract of {contract.tenant_id!r} given for {tenant_id!r}")
    check_ascending(contract.versions, f"contract of {tenant_id}")
    return contract.versions


def _unpriced_reason(sku: str, unit: str, reason: str, products: Mapping[str, ProductTerms]) -> str:
    """Why usage of `sku` in `unit` cannot be priced ("" when it can)."""
    if reason:
        return reason
    product = products.get(sku)
    if product is None:
        return f"SKU {sku} is not in the catalog"
    if unit != product.billing_unit:
        return f"unit {unit} is not the billing unit {product.billing_unit} of the SKU"
    return ""


def _draft_rows(
    tenant_id: str,
    period: str,
    start: datetime,
    end: datetime,
    usage: Sequence[Row],
    grain: Grain[Row],
    positions: tuple[tuple[int, int], ...],
    products: Mapping[str, ProductTerms],
    versions: tuple[ContractVersion, ...],
) -> InvoiceDraft:
    currency = _currency({row.product_sku for row in usage}, products)
    unpriced = _Unpriced()
    rows_of: dict[str, list[Row]] = {}
    for row in usage:  # hot: the reason is worked out only for usage that is not priced
        product = products.get(row.product_sku)
        if row.unpriced_reason or product is None or row.unit != product.billing_unit:
            reason = _unpriced_reason(row.product_sku, row.unit, row.unpriced_reason, products)
            unpriced.add(row.product_sku, row.unit, row.quantity, reason)
        else:
            rows_of.setdefault(row.product_sku, []).append(row)
    by_sku: dict[str, Slices] = {sku: RowSlices(rows, grain) for sku, rows in rows_of.items()}
    return _draft(
        tenant_id, period, start, end, currency, unpriced, by_sku, positions, products, versions
    )


def _draft(
    tenant_id: str,
    period: str,
    start: datetime,
    end: datetime,
    currency: str,
    unpriced: _Unpriced,
    by_sku: Mapping[str, Slices],
    positions: tuple[tuple[int, int], ...],
    products: Mapping[str, ProductTerms],
    versions: tuple[ContractVersion, ...],
) -> InvoiceDraft:
    """The draft from each priced SKU's usage (`by_sku`) and what is already `unpriced`."""
    lines: list[InvoiceLine] = []
    for sku in sorted(by_sku):
        product = products[sku]
        check_ascending(product.plans, f"catalog plans of {sku}")
        usage_lines = _usage_lines(product, by_sku[sku], start, end, versions, currency, unpriced)
        lines += usage_lines
        lines += minimum_line(product, usage_lines, start, end, versions, currency)
    lines += commitment_line(lines, start, end, versions, currency)
    lines.sort(key=lambda line: line_order(line.key))
    return InvoiceDraft(
        tenant_id=tenant_id,
        period=period,
        currency=currency,
        lines=tuple(lines),
        unpriced=unpriced.listed(),
        total=exact_sum(line.amount for line in lines),
        positions=positions,
    )


def _usage_lines(
    product: ProductTerms,
    usage: Slices,
    start: datetime,
    end: datetime,
    versions: Sequence[ContractVersion],
    currency: str,
    unpriced: _Unpriced,
) -> list[InvoiceLine]:
    dates = {v.effective_from for v in product.plans} | {v.effective_from for v in versions}
    inside = {midnight(d) for d in dates if start < midnight(d) < end}
    cuts = sorted({start, end} | inside)
    allowance_used = ZERO  # of the month's one budget, across segments in event-time order
    lines: list[InvoiceLine] = []
    for seg_start, seg_end in pairwise(cuts):
        i, j = usage.bounds(seg_start, seg_end)
        if i == j:
            continue
        quantity = usage.quantity(i, j)
        day = seg_start.date()
        try:
            terms = terms_in_force(product, in_force(versions, day), day)
            free = min(quantity, max(ZERO, STRICT.subtract(terms.allowance, allowance_used)))
            billable = STRICT.subtract(quantity, free)
            tiers, subtotal = charge(terms.plan, billable)
        except PlanError as exc:
            reason = f"terms in force for {product.sku} on {day.isoformat()}: {exc}"
            unpriced.add(product.sku, product.billing_unit, quantity, reason)
            continue
        allowance_used = STRICT.add(allowance_used, free)
        # percent <= 100 and subtotal >= 0, so the discount never takes a line below 0.
        discount = STRICT.multiply(subtotal, terms.discount_percent).scaleb(-2, STRICT)
        lines.append(
            InvoiceLine(
                sku=product.sku,
                name=product.name,
                category=product.category,
                segment_start=seg_start,
                segment_end=seg_end,
                quantity=quantity,
                unit=product.billing_unit,
                allowance_used=free,
                billable=billable,
                plan_kind=terms.plan.kind,
                plan_source=terms.source,
                tiers=tiers,
                subtotal=subtotal,
                discount_percent=terms.discount_percent,
                discount_amount=discount,
                amount=round_line(STRICT.subtract(subtotal, discount), currency),
                kind="usage",
                hours=usage.hours(i, j),
            )
        )
    return lines


def _currency(skus: Iterable[str], products: Mapping[str, ProductTerms]) -> str:
    """The catalog's one currency: of the products used, else of the whole catalog."""
    used = {products[sku].currency for sku in skus if sku in products}
    currencies = used or {p.currency for p in products.values()}
    if len(currencies) > 1:
        raise ValueError(f"one invoice, one currency: the catalog mixes {sorted(currencies)}")
    return currencies.pop() if currencies else "BRL"  # catalog.products.Product's default
