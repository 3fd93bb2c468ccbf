"""Terms as plain JSON-able dicts (decimals and dates as text) for recorded events, and back."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from catalog.terms import ContractVersion, Discount, PlanKind, PlanVersion, PricePlan, Tier

Doc = dict[str, Any]


def plan_doc(plan: PricePlan) -> Doc:
    return {
        "kind": plan.kind.value,
        "unit_price": str(plan.unit_price),
        "tiers": [
            {"up_to": None if t.up_to is None else str(t.up_to), "unit_price": str(t.unit_price)}
            for t in plan.tiers
        ],
        "package_size": str(plan.package_size),
        "package_price": str(plan.package_price),
        "minimum_charge": str(plan.minimum_charge),
    }


def plan_of(doc: Doc) -> PricePlan:
    return PricePlan(
        kind=PlanKind(doc["kind"]),
        unit_price=Decimal(doc["unit_price"]),
        tiers=tuple(
            Tier(None if t["up_to"] is None else Decimal(t["up_to"]), Decimal(t["unit_price"]))
            for t in doc["tiers"]
        ),
        package_size=Decimal(doc["package_size"]),
        package_price=Decimal(doc["package_price"]),
        minimum_charge=Decimal(doc["minimum_charge"]),
    )


def plan_version_doc(version: PlanVersion) -> Doc:
    return {"effective_from": version.effective_from.isoformat(), "plan": plan_doc(version.plan)}


def plan_version_of(doc: Doc) -> PlanVersion:
    return PlanVersion(date.fromisoformat(doc["effective_from"]), plan_of(doc["plan"]))


def contract_version_doc(v: ContractVersion) -> Doc:
    return {
        "effective_from": v.effective_from.isoformat(),
        "discounts": [
            {"percent": str(d.percent), "sku": d.sku, "category": d.category} for d in v.discounts
        ],
        "overrides": [[sku, plan_doc(plan)] for sku, plan in v.overrides],
        "allowances": [[sku, str(amount)] for sku, amount in v.allowances],
        "commitment": str(v.commitment),
    }


def contract_version_of(doc: Doc) -> ContractVersion:
    return ContractVersion(
        effective_from=date.fromisoformat(doc["effective_from"]),
        discounts=tuple(
            Discount(Decimal(d["percent"]), d["sku"], d["category"]) for d in doc["discounts"]
        ),
        overrides=tuple((sku, plan_of(plan)) for sku, plan in doc["overrides"]),
        allowances=tuple((sku, Decimal(amount)) for sku, amount in doc["allowances"]),
        commitment=Decimal(doc["commitment"]),
    )
