"""Products of the catalog (SKU, name, category, billing unit, currency) and their YAML form."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from catalog import units


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


class CatalogFileError(ValueError):
    """A catalog file that does not describe products; lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def products_from_document(document: object) -> list[Product]:
    """Products of a parsed catalog document: `{products: [{sku, name, category, billing_unit,
    currency?}, ...]}`; raises CatalogFileError naming each bad entry and field."""
    if not isinstance(document, Mapping) or not isinstance(document.get("products"), list):
        raise CatalogFileError(["top level: expected a mapping with a 'products' list"])
    problems: list[str] = []
    products: list[Product] = []
    seen: set[str] = set()
    for index, entry in enumerate(document["products"]):
        where = f"products[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: expected a mapping")
            continue
        fields = {}
        for name in ("sku", "name", "category", "billing_unit"):
            value = entry.get(name)
            if not isinstance(value, str) or not value:
                problems.append(f"{where}.{name}: required text")
            fields[name] = str(value)
        if fields["billing_unit"] and not units.is_known(fields["billing_unit"]):
            problems.append(f"{where}.billing_unit: unknown unit {fields['billing_unit']!r}")
        if fields["sku"] in seen:
            problems.append(f"{where}.sku: {fields['sku']!r} listed twice")
        seen.add(fields["sku"])
        currency = str(entry.get("currency", "BRL"))
        products.append(Product(currency=currency, **fields))
    if problems:
        raise CatalogFileError(problems)
    return products
