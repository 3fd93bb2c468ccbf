"""Rule 5 of the pricing rules (DESIGN.md): one price plan applied to one billable quantity.

Exact arithmetic only: every operation runs in a wide context that raises instead of
rounding; the single rounding of an invoice line happens in catalog.lines.round_line.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from itertools import pairwise
from typing import assert_never

from catalog.invoice import TierCharge
from catalog.terms import PlanKind, PricePlan, Tier
from kernel.decimals import STRICT, ZERO, exact_sum, plain


class PlanError(ValueError):
    """Terms that cannot price a quantity: a malformed plan or discount, or q above the tiers."""


def charge(plan: PricePlan, quantity: Decimal) -> tuple[tuple[TierCharge, ...], Decimal]:
    """The breakdown and exact subtotal of `quantity` billing units under `plan` (rule 5).

    q = 0 costs 0 under every kind and has no breakdown. Raises PlanError for a malformed
    plan or a quantity above a bounded last tier.
    """
    check_plan(plan)
    if not quantity.is_finite() or quantity < 0:
        raise PlanError(f"quantity {quantity} is not a finite amount >= 0")
    if quantity.is_zero():
        return (), ZERO
    match plan.kind:
        case PlanKind.PER_UNIT:
            amount = STRICT.multiply(quantity, plan.unit_price)
            return (TierCharge(ZERO, None, quantity, plan.unit_price, amount),), amount
        case PlanKind.GRADUATED:
            return _graduated(plan.tiers, quantity)
        case PlanKind.VOLUME:
            return _volume(plan.tiers, quantity)
        case PlanKind.PACKAGE:
            packages = STRICT.divide_int(quantity, plan.package_size)
            if not STRICT.remainder(quantity, plan.package_size).is_zero():
                packages = STRICT.add(packages, 1)
            amount = STRICT.multiply(packages, plan.package_price)
            return (TierCharge(ZERO, None, packages, plan.package_price, amount),), amount
        case _:
            assert_never(plan.kind)


def _graduated(tiers: Sequence[Tier], quantity: Decimal) -> tuple[tuple[TierCharge, ...], Decimal]:
    charges: list[TierCharge] = []
    lower = ZERO
    for tier in tiers:
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        part = STRICT.subtract(upper, lower)
        if part > 0:
            amount = STRICT.multiply(part, tier.unit_price)
            charges.append(TierCharge(lower, tier.up_to, part, tier.unit_price, amount))
        if tier.up_to is None or quantity <= tier.up_to:
            return tuple(charges), exact_sum(c.amount for c in charges)
        lower = tier.up_to
    raise PlanError(f"quantity {plain(quantity)} is above the last tier (up to {plain(lower)})")


def _volume(tiers: Sequence[Tier], quantity: Decimal) -> tuple[tuple[TierCharge, ...], Decimal]:
    lower = ZERO
    for tier in tiers:
        if tier.up_to is None or quantity <= tier.up_to:
            amount = STRICT.multiply(quantity, tier.unit_price)
            return (TierCharge(lower, tier.up_to, quantity, tier.unit_price, amount),), amount
        lower = tier.up_to
    raise PlanError(f"quantity {plain(quantity)} is above the last tier (up to {plain(lower)})")


def check_plan(plan: PricePlan) -> None:
    numbers = [plan.unit_price, plan.package_size, plan.package_price, plan.minimum_charge]
    numbers += [t.unit_price for t in plan.tiers]
    numbers += [t.up_to for t in plan.tiers if t.up_to is not None]
    if any(not n.is_finite() or n < 0 for n in numbers):
        raise PlanError("the plan has a negative or non-finite number")
    if plan.kind in (PlanKind.GRADUATED, PlanKind.VOLUME):
        if not plan.tiers:
            raise PlanError(f"the {plan.kind} plan has no tiers")
        bounds = [t.up_to for t in plan.tiers]
        if None in bounds[:-1]:
            raise PlanError(f"only the last tier of the {plan.kind} plan may be open")
        closed = [b for b in bounds if b is not None]
        if any(b <= a for a, b in pairwise([ZERO, *closed])):
            raise PlanError(f"the tier bounds of the {plan.kind} plan are not ascending from 0")
    if plan.kind is PlanKind.PACKAGE and plan.package_size <= 0:
        raise PlanError("the package plan has a package size <= 0")
