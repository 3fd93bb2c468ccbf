"""Event-sourced aggregates: products of the catalog, tenant contracts, finalized invoices."""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from catalog.invoice import CorrectionNote
from catalog.terms import ContractTerms, ContractVersion, ProductTerms
from catalog.terms_codec import Doc, contract_version_of, plan_version_of


def product_id(sku: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"pulse-ledger:product:{sku}")


def contract_id(tenant_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"pulse-ledger:contract:{tenant_id}")


def invoice_id(tenant_id: str, period: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"pulse-ledger:invoice:{tenant_id}:{period}")


def index_id(kind: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"pulse-ledger:index:{kind}")


CATALOG_INDEX_ID = index_id("catalog")
CONTRACT_INDEX_ID = index_id("contracts")


class Index(Aggregate):
    """The list of keys (SKUs or tenant ids) that have an aggregate, to enumerate them."""

    @staticmethod
    def create_id(kind: str) -> UUID:
        return index_id(kind)

    @event("Created")
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.keys: list[str] = []

    @event("KeyAdded")
    def add(self, key: str) -> None:
        self.keys.append(key)


class Product(Aggregate):
    @staticmethod
    def create_id(sku: str) -> UUID:
        return product_id(sku)

    @event("Registered")
    def __init__(
        self, sku: str, name: str, category: str, billing_unit: str, currency: str
    ) -> None:
        self.sku = sku
        self.name = name
        self.category = category
        self.billing_unit = billing_unit
        self.currency = currency
        self.plans: dict[str, Doc] = {}  # effective_from ISO date -> plan version doc
        self.units_set = 1  # events that set the billing unit (see BillingApp.metering_terms)

    @event("DetailsChanged")
    def change_details(self, name: str, category: str, billing_unit: str, currency: str) -> None:
        self.name, self.category = name, category
        self.billing_unit, self.currency = billing_unit, currency
        self.units_set = getattr(self, "units_set", 1) + 1

    @event("PlanScheduled")
    def schedule_plan(self, version: Doc) -> None:
        """A plan from a date; a later event for the same date supersedes it (history stays)."""
        self.plans[version["effective_from"]] = version

    def terms(self) -> ProductTerms:
        versions = tuple(plan_version_of(self.plans[d]) for d in sorted(self.plans))
        return ProductTerms(
            self.sku, self.name, self.category, self.billing_unit, self.currency, versions
        )


class Contract(Aggregate):
    @staticmethod
    def create_id(tenant_id: str) -> UUID:
        return contract_id(tenant_id)

    @event("Opened")
    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.amendments: dict[str, Doc] = {}  # effective_from ISO date -> version doc

    @event("Amended")
    def amend(self, version: Doc) -> None:
        self.amendments[version["effective_from"]] = version

    def terms(self) -> ContractTerms:
        versions: tuple[ContractVersion, ...] = tuple(
            contract_version_of(self.amendments[d]) for d in sorted(self.amendments)
        )
        return ContractTerms(self.tenant_id, versions)


class Invoice(Aggregate):
    """A tenant's invoice of one period: finalized once, then only correction documents."""

    @staticmethod
    def create_id(tenant_id: str, period: str) -> UUID:
        return invoice_id(tenant_id, period)

    @event("Finalized")
    def __init__(
        self,
        tenant_id: str,
        period: str,
        document: str,
        sha256: str,
        pins: dict[str, Any],
    ) -> None:
        self.tenant_id = tenant_id
        self.period = period
        self.document = document  # canonical JSON of the invoice
        self.sha256 = sha256
        self.pins = pins  # ledger positions, product and contract versions used
        self.corrections: list[dict[str, Any]] = []

    @event("Corrected")
    def correct(
        self,
        document: str,
        sha256: str,
        lines: list[dict[str, str]],
        total: str,
        pins: dict[str, Any],
    ) -> None:
        """A credit or debit note: the difference to the previous document, line by line."""
        self.corrections.append(
            {"document": document, "sha256": sha256, "lines": lines, "total": total, "pins": pins}
        )

    def notes(self) -> tuple[CorrectionNote, ...]:
        """The correction notes recorded since finalization, oldest first."""
        return tuple(CorrectionNote.from_payload(c, self.sha256) for c in self.corrections)
