"""Invoice line amounts: the one rounding (`round_line`, DESIGN pricing rule 7) and the
period's adjustment lines, minimum charge (rule 8) and commitment true-up (rule 9), whose
choices `catalog.pricing` documents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from catalog.in_force import in_force, plan_in_force
from catalog.invoice import InvoiceLine, LineKind, PlanSource
from catalog.plans import PlanError, check_plan
from catalog.terms import MINOR_UNITS, ContractVersion, PlanKind, ProductTerms
from kernel.decimals import EXACT, STRICT, ZERO, exact_sum


def round_line(amount: Decimal, currency: str) -> Decimal:
    """An invoice line's amount: half-even to the currency's minor unit (the one rounding)."""
    minor = MINOR_UNITS.get(currency, 2)
    return amount.quantize(Decimal(1).scaleb(-minor), rounding=ROUND_HALF_EVEN, context=EXACT)


def minimum_line(
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


def commitment_line(
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
