"""Rules 3-6 of the pricing rules (DESIGN.md): which plan, discount and allowance are in force.

Pure lookups over effective-dated versions: the catalog plan or the contract's override
(rule 5), the most specific discount (rule 6) and the month's free allowance (rule 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import pairwise
from typing import Protocol, TypeVar

from catalog.invoice import PlanSource
from catalog.plans import PlanError, check_plan
from catalog.terms import ContractVersion, PricePlan, ProductTerms
from kernel.decimals import ZERO


class Dated(Protocol):
    @property
    def effective_from(self) -> date: ...


V = TypeVar("V", bound=Dated)
T = TypeVar("T")


def in_force(versions: Sequence[V], day: date) -> V | None:
    found: V | None = None
    for version in versions:
        if version.effective_from > day:
            break
        found = version
    return found


def check_ascending(versions: Sequence[Dated], what: str) -> None:
    for before, after in pairwise(versions):
        if after.effective_from <= before.effective_from:
            raise ValueError(
                f"{what}: version of {after.effective_from} follows {before.effective_from};"
                " versions must be strictly ascending by effective_from"
            )


def only(values: list[T], what: str) -> T | None:
    if len(values) > 1:
        raise PlanError(f"{len(values)} {what}")
    return values[0] if values else None


@dataclass(frozen=True, slots=True)
class Terms:
    plan: PricePlan
    source: PlanSource
    discount_percent: Decimal
    allowance: Decimal


def plan_in_force(
    product: ProductTerms, version: ContractVersion | None, day: date
) -> tuple[PricePlan, PlanSource]:
    if version is not None:
        overrides = [plan for sku, plan in version.overrides if sku == product.sku]
        override = only(
            overrides, f"contract overrides for {product.sku} from {version.effective_from}"
        )
        if override is not None:
            return override, "contract"
    catalog = in_force(product.plans, day)
    if catalog is None:
        raise PlanError(f"no price plan in force for {product.sku} on {day.isoformat()}")
    return catalog.plan, "catalog"


def discount_in_force(product: ProductTerms, version: ContractVersion | None) -> Decimal:
    """The most specific discount (SKU, else category, else all); never compounded."""
    if version is None:
        return ZERO
    discounts = version.discounts
    scopes = [
        (f"SKU {product.sku}", [d for d in discounts if d.sku == product.sku]),
        (
            f"category {product.category}",
            [d for d in discounts if d.sku is None and d.category == product.category],
        ),
        ("all products", [d for d in discounts if d.sku is None and d.category is None]),
    ]
    for scope, found in scopes:
        discount = only(found, f"discounts for {scope} from {version.effective_from}")
        if discount is None:
            continue
        if not discount.percent.is_finite() or not 0 <= discount.percent <= 100:
            raise PlanError(f"discount of {discount.percent}% for {scope} is not within 0-100")
        return discount.percent
    return ZERO


def terms_in_force(product: ProductTerms, version: ContractVersion | None, day: date) -> Terms:
    plan, source = plan_in_force(product, version, day)
    check_plan(plan)
    allowance = ZERO
    if version is not None:
        allowances = [a for sku, a in version.allowances if sku == product.sku]
        found = only(allowances, f"allowances for {product.sku} from {version.effective_from}")
        if found is not None:
            if not found.is_finite() or found < 0:
                raise PlanError(f"allowance {found} for {product.sku} is not an amount >= 0")
            allowance = found
    return Terms(plan, source, discount_in_force(product, version), allowance)
