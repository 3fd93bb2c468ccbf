"""Products as metering sees them (SKU, billing unit…) and their lookup by SKU.

Not to be confused with `catalog.aggregates.Product` (the event-sourced history of a product)
or `catalog.terms.ProductTerms` (a product with its price plan versions, as pricing reads it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MeteredProduct:
    """What the ingestor's unit check and the hourly projection need of a product."""

    sku: str
    name: str
    category: str
    billing_unit: str
    currency: str = "BRL"


class ProductCatalog:
    """Read-only lookup of products by SKU (the pricing aggregates build on the same data)."""

    def __init__(self, products: Iterable[MeteredProduct]) -> None:
        self._by_sku = {p.sku: p for p in products}

    def get(self, sku: str) -> MeteredProduct | None:
        return self._by_sku.get(sku)

    def billing_unit(self, sku: str) -> str | None:
        product = self._by_sku.get(sku)
        return product.billing_unit if product else None

    def products(self) -> list[MeteredProduct]:
        return sorted(self._by_sku.values(), key=lambda p: p.sku)
