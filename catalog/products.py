"""Products as metering sees them (SKU, billing unit…) and their lookup by SKU.

Not to be confused with `catalog.aggregates.Product` (the event-sourced history of a product)
or `catalog.terms.ProductTerms` (a product with its price plan versions, as pricing reads it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

# A catalog version orders the derivations of one tenant-hour made from the same ledger events
# (`projections.hourly.HourlyUsage.catalog_version`): (metering epoch, units fingerprint).
# The epoch orders catalogs in time: the event-sourced catalog's counts every time a
# product's billing unit was set (`BillingApp.metering_terms`), and a catalog file's is 0, so
# any applied catalog outranks any file. The fingerprint, a hash of the SKU -> billing unit
# map, tells apart catalogs at one epoch (two catalog files, or a read that straddled an
# apply), so that equal versions are equal units and hence equal rows. Versions are packed
# into CQL write timestamps, 24 of them summed for a day, so they stay below 2^25.
CATALOG_VERSIONS = 1 << 25
_FINGERPRINT_BITS = 9
MAX_EPOCH = (CATALOG_VERSIONS >> _FINGERPRINT_BITS) - 1


def catalog_version(epoch: int, products: Iterable[MeteredProduct]) -> int:
    """The version of a catalog at metering `epoch` holding `products`."""
    if not 0 <= epoch <= MAX_EPOCH:
        raise ValueError(
            f"catalog metering epoch {epoch} (billing units set so far): at most {MAX_EPOCH} "
            "can order usage derivations"
        )
    units = "\n".join(sorted(f"{p.sku}\0{p.billing_unit}" for p in products))
    digest = int.from_bytes(hashlib.sha256(units.encode()).digest()[:4], "big")
    return epoch << _FINGERPRINT_BITS | digest % (1 << _FINGERPRINT_BITS)


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
    at one `version` of the catalog (`catalog_version`)."""

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
