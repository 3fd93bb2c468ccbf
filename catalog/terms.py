"""Price plans and contract terms as frozen values (pure): what the pricing engine reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum


class PlanKind(StrEnum):
    PER_UNIT = "per_unit"  # q x unit_price
    GRADUATED = "graduated"  # each part of q inside a tier at that tier's price
    VOLUME = "volume"  # all of q at the price of the tier that contains q
    PACKAGE = "package"  # ceil(q / package_size) x package_price


@dataclass(frozen=True, slots=True)
class Tier:
    """Quantities up to `up_to` (inclusive; None = no upper bound) cost `unit_price` each."""

    up_to: Decimal | None
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class PricePlan:
    kind: PlanKind
    unit_price: Decimal = Decimal(0)
    tiers: tuple[Tier, ...] = ()
    package_size: Decimal = Decimal(0)
    package_price: Decimal = Decimal(0)
    minimum_charge: Decimal = Decimal(0)  # per SKU per period; see DESIGN pricing rule 8


@dataclass(frozen=True, slots=True)
class PlanVersion:
    """A plan in force from `effective_from` (UTC date, inclusive) until the next version."""

    effective_from: date
    plan: PricePlan


@dataclass(frozen=True, slots=True)
class ProductTerms:
    sku: str
    name: str
    category: str
    billing_unit: str
    currency: str
    plans: tuple[PlanVersion, ...]  # ascending effective_from


@dataclass(frozen=True, slots=True)
class Discount:
    """A percentage off; scope is one SKU, else one category, else everything."""

    percent: Decimal
    sku: str | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True)
class ContractVersion:
    """The whole set of a tenant's terms in force from `effective_from` until the next one.

    Each amendment of a contract yields a new version carrying all terms then in force.
    """

    effective_from: date
    discounts: tuple[Discount, ...] = ()
    overrides: tuple[tuple[str, PricePlan], ...] = ()  # sku -> plan replacing the catalog's
    allowances: tuple[tuple[str, Decimal], ...] = ()  # sku -> free quantity per month
    commitment: Decimal = Decimal(0)  # committed monthly spend; true-up when below


@dataclass(frozen=True, slots=True)
class ContractTerms:
    tenant_id: str
    versions: tuple[ContractVersion, ...] = field(default=())  # ascending effective_from


MINOR_UNITS = {"BRL": 2, "USD": 2, "EUR": 2, "JPY": 0}
