"""What the pricing engine prices: a metered quantity of one SKU in one hour (its input type).

A structural type, so the engine depends on no producer of usage: projections.hourly's rows
satisfy it as they are, and so would daily roll-ups or a test's own rows.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Protocol


class LedgerPosition(Protocol):
    """Where the greatest pulse behind a quantity sits in the pulse log."""

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


class MeteredUsage(Protocol):
    """Usage of one SKU by one tenant in one UTC hour, in one unit.

    `unit` is the SKU's billing unit when the usage could be converted to it; otherwise a
    non-empty `unpriced_reason` says why it cannot be priced.
    """

    @property
    def tenant_id(self) -> str: ...

    @property
    def hour(self) -> datetime: ...

    @property
    def product_sku(self) -> str: ...

    @property
    def unit(self) -> str: ...

    @property
    def quantity(self) -> Decimal: ...

    @property
    def unpriced_reason(self) -> str: ...

    @property
    def position(self) -> LedgerPosition: ...
