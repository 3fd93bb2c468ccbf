"""The pricing engine (pure): metered usage x catalog plans x contract terms -> an invoice draft.

It implements DESIGN.md "Pricing rules" 1-10; the choices the rules leave open are written
here, once.

Rounding. Every amount is computed exactly, in an 80-digit context that raises
`decimal.Inexact` rather than round. Each invoice line is then rounded once, half-even, to
the currency's minor unit (`MINOR_UNITS`, 2 for a currency not listed) by `round_line`.
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
their per-partition offsets. As rule 3 says, every contract version cuts
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
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import pairwise

from catalog.grains import (
    DAILY,
    HOURLY,
    Grain,
    Row,
    check_days,
    check_rows,
    day_ledger_positions,
    ledger_positions,
    midnight,
)
from catalog.in_force import check_ascending, in_force, plan_in_force, terms_in_force
from catalog.invoice import (
    InvoiceDraft,
    InvoiceLine,
    LineKind,
    PlanSource,
    UnpricedUsage,
    line_order,
)
from catalog.metered import MeteredDay, MeteredQuantity, MeteredUsage
from catalog.plans import PlanError, charge, check_plan
from catalog.terms import (
    MINOR_UNITS,
    ContractTerms,
    ContractVersion,
    PlanKind,
    ProductTerms,
)
from kernel.decimals import EXACT, STRICT, ZERO, exact_sum

# [0-9], not \d: \d also matches other scripts' digits (fullwidth, Arabic-Indic...), and a
# month must have one spelling, since the invoice id is derived from it.
_PERIOD = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def round_line(amount: Decimal, currency: str) -> Decimal:
    """An invoice line's amount: half-even to the currency's minor unit (the one rounding)."""
    minor = MINOR_UNITS.get(currency, 2)
    return amount.quantize(Decimal(1).scaleb(-minor), rounding=ROUND_HALF_EVEN, context=EXACT)


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
# Terms in force: versions, plans (rule 5), discounts (rule 6), allowances (rule 4).
# ---------------------------------------------------------------------------------------


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
    return _draft(
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
    return _draft(
        tenant_id, period, start, end, days, DAILY, day_ledger_positions(days), products, versions
    )


def _versions(tenant_id: str, contract: ContractTerms | None) -> tuple[ContractVersion, ...]:
    if contract is None:
        return ()
    if contract.tenant_id != tenant_id:
        raise ValueError(f"contract of {contract.tenant_id!r} given for {tenant_id!r}")
    check_ascending(contract.versions, f"contract of {tenant_id}")
    return contract.versions


def _draft(
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
    currency = _currency(usage, products)
    unpriced = _Unpriced()
    by_sku: dict[str, list[Row]] = {}
    for row in usage:
        product = products.get(row.product_sku)
        if row.unpriced_reason:
            unpriced.add(row.product_sku, row.unit, row.quantity, row.unpriced_reason)
        elif product is None:
            reason = f"SKU {row.product_sku} is not in the catalog"
            unpriced.add(row.product_sku, row.unit, row.quantity, reason)
        elif row.unit != product.billing_unit:
            reason = f"unit {row.unit} is not the billing unit {product.billing_unit} of the SKU"
            unpriced.add(row.product_sku, row.unit, row.quantity, reason)
        else:
            by_sku.setdefault(row.product_sku, []).append(row)
    lines: list[InvoiceLine] = []
    for sku in sorted(by_sku):
        product = products[sku]
        check_ascending(product.plans, f"catalog plans of {sku}")
        usage_lines = _usage_lines(
            product, by_sku[sku], grain, start, end, versions, currency, unpriced
        )
        lines += usage_lines
        lines += _minimum_line(product, usage_lines, start, end, versions, currency)
    lines += _commitment_line(lines, start, end, versions, currency)
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
    rows: list[Row],
    grain: Grain[Row],
    start: datetime,
    end: datetime,
    versions: Sequence[ContractVersion],
    currency: str,
    unpriced: _Unpriced,
) -> list[InvoiceLine]:
    dates = {v.effective_from for v in product.plans} | {v.effective_from for v in versions}
    inside = {midnight(d) for d in dates if start < midnight(d) < end}
    cuts = sorted({start, end} | inside)
    rows = sorted(rows, key=grain.start)
    starts = [grain.start(row) for row in rows]  # ascending: a segment is a slice
    allowance_used = ZERO  # of the month's one budget, across segments in event-time order
    lines: list[InvoiceLine] = []
    for seg_start, seg_end in pairwise(cuts):
        segment = rows[bisect_left(starts, seg_start) : bisect_left(starts, seg_end)]
        if not segment:
            continue
        quantity = exact_sum(row.quantity for row in segment)
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
                hours=grain.hours(segment),
            )
        )
    return lines


def _minimum_line(
    product: ProductTerms,
    usage_lines: Sequence[InvoiceLine],
    start: datetime,
    end: datetime,
    versions: Sequence[ContractVersion],
    currency: str,
) -> list[InvoiceLine]:
    last_day = (end - timedelta(days=1)).date()
    try:
        plan, source = plan_in_force(product, in_force(versions, last_day), last_day)
        check_plan(plan)
    except PlanError:
        return []  # no usable plan at the end: no minimum (that usage is listed unpriced)
    if exact_sum(line.quantity for line in usage_lines) <= 0:
        return []
    shortfall = STRICT.subtract(plan.minimum_charge, exact_sum(line.amount for line in usage_lines))
    amount = round_line(shortfall, currency)
    if amount <= 0:
        return []
    return [_adjustment(product, start, end, plan.kind, source, shortfall, amount, "minimum")]


def _commitment_line(
    lines: Sequence[InvoiceLine],
    start: datetime,
    end: datetime,
    versions: Sequence[ContractVersion],
    currency: str,
) -> list[InvoiceLine]:
    version = in_force(versions, (end - timedelta(days=1)).date())
    if version is None or not version.commitment.is_finite():
        return []
    shortfall = STRICT.subtract(version.commitment, exact_sum(line.amount for line in lines))
    amount = round_line(shortfall, currency)
    if amount <= 0:
        return []
    return [_adjustment(None, start, end, None, "contract", shortfall, amount, "commitment")]


def _adjustment(
    product: ProductTerms | None,
    start: datetime,
    end: datetime,
    plan_kind: PlanKind | None,
    source: PlanSource,
    shortfall: Decimal,
    amount: Decimal,
    kind: LineKind,
) -> InvoiceLine:
    """A minimum (of `product`) or commitment (no product) line for the whole period."""
    return InvoiceLine(
        sku=product.sku if product else "",
        name=product.name if product else "committed monthly spend",
        category=product.category if product else "",
        segment_start=start,
        segment_end=end,
        quantity=ZERO,
        unit=product.billing_unit if product else "",
        allowance_used=ZERO,
        billable=ZERO,
        plan_kind=plan_kind,
        plan_source=source,
        tiers=(),
        subtotal=shortfall,
        discount_percent=ZERO,
        discount_amount=ZERO,
        amount=amount,
        kind=kind,
        hours=(),
    )


def _currency(usage: Sequence[MeteredQuantity], products: Mapping[str, ProductTerms]) -> str:
    """The catalog's one currency: of the products used, else of the whole catalog."""
    used = {products[r.product_sku].currency for r in usage if r.product_sku in products}
    currencies = used or {p.currency for p in products.values()}
    if len(currencies) > 1:
        raise ValueError(f"one invoice, one currency: the catalog mixes {sorted(currencies)}")
    return currencies.pop() if currencies else "BRL"  # catalog.products.Product's default
