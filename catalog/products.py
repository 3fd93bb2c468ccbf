"""Products as metering sees them (SKU, billing unit…) and their lookup by SKU.

Not to be confused with `catalog.aggregates.Product` (the event-sourced history of a product)
or `catalog.terms.ProductTerms` (a product with its price plan versions, as pricing reads it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Catalog versions order the derivations of one tenant-hour made from the same ledger events
# (`projections.hourly.HourlyUsage.catalog_version`): the newer catalog's wins. They are packed
# into CQL write timestamps, 24 hours of them summed for a day, so they stay below 2^25.
CATALOG_VERSIONS = 1 << 25
# Event-sourced catalogs (`pulse catalog apply`) are versioned above every catalog file, so
# the first apply after running on a file outranks what the file derived.
_EVENT_SOURCED = 1 << 24
_EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z


def file_catalog_version(modified: float) -> int:
    """The version of a catalog file: the minute it was last modified (since 2024), so an
    edited file outranks the file it replaced (good until 2055)."""
    return min(max(int(modified - _EPOCH) // 60, 0), _EVENT_SOURCED - 1)


def event_sourced_version(product_versions: Iterable[int]) -> int:
    """The version of the event-sourced catalog: every change to any product raises it (a
    product's aggregate version only grows, and products are never removed)."""
    version = _EVENT_SOURCED + sum(product_versions)
    if version >= CATALOG_VERSIONS:
        raise ValueError(
            f"the catalog has {version - _EVENT_SOURCED} product versions: at most "
            f"{CATALOG_VERSIONS - _EVENT_SOURCED - 1} can order usage derivations"
        )
    return version


@dataclass(frozen=True, slots=True)
class MeteredProduct:
    """What the ingestor's unit check and the hourly projection need of a product."""

    sku: str
    name: str
    category: str
    billing_unit: str
    currency: str = "BRL"


class ProductCatalog:
    """Read-only lookup of products by SKU (the pricing aggregates build on the same data),
    at one `version` of the catalog (see `file_catalog_version`, `event_sourced_version`)."""

    def __init__(self, products: Iterable[MeteredProduct], version: int = 0) -> None:
        if not 0 <= version < CATALOG_VERSIONS:
            raise ValueError(f"catalog version {version} is not in [0, {CATALOG_VERSIONS})")
        self._by_sku = {p.sku: p for p in products}
        self.version = version

    def get(self, sku: str) -> MeteredProduct | None:
        return self._by_sku.get(sku)

    def billing_unit(self, sku: str) -> str | None:
        product = self._by_sku.get(sku)
        return product.billing_unit if product else None

    def products(self) -> list[MeteredProduct]:
        return sorted(self._by_sku.values(), key=lambda p: p.sku)
