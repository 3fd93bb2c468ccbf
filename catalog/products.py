"""Products of the catalog (SKU, name, category, billing unit, currency) and their lookup."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    category: str
    billing_unit: str
    currency: str = "BRL"


class ProductCatalog:
    """Read-only lookup of products by SKU (the pricing aggregates build on the same data)."""

    def __init__(self, products: Iterable[Product]) -> None:
        self._by_sku = {p.sku: p for p in products}

    def get(self, sku: str) -> Product | None:
        return self._by_sku.get(sku)

    def billing_unit(self, sku: str) -> str | None:
        product = self._by_sku.get(sku)
        return product.billing_unit if product else None

    def products(self) -> list[Product]:
        return sorted(self._by_sku.values(), key=lambda p: p.sku)
