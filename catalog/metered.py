"""What the pricing engine prices: a metered quantity of one SKU in one hour or one day (its
input types).

Structural types, so the engine depends on no producer of usage: projections.hourly's rows
satisfy `MeteredUsage` as they are, projections.daily's roll-ups satisfy `MeteredDay` (and
its columnar read `DayColumns` satisfies `MeteredDays`), and so would a test's own rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol


class LedgerPosition(Protocol):
    """Where the greatest pulse behind a quantity sits in the pulse log."""

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


class MeteredQuantity(Protocol):
    """What every grain of usage has: a quantity of one SKU by one tenant, in one unit.

    `unit` is the SKU's billing unit when the usage could be converted to it; otherwise a
    non-empty `unpriced_reason` says why it cannot be priced.
    """

    @property
    def tenant_id(self) -> str: ...

    @property
    def product_sku(self) -> str: ...

    @property
    def unit(self) -> str: ...

    @property
    def quantity(self) -> Decimal: ...

    @property
    def unpriced_reason(self) -> str: ...


class MeteredUsage(MeteredQuantity, Protocol):
    """Usage of one SKU by one tenant in one UTC hour, in one unit; `position` is where its
    greatest pulse sits in the log."""

    @property
    def hour(self) -> datetime: ...

    @property
    def position(self) -> LedgerPosition: ...


class MeteredDay(MeteredQuantity, Protocol):
    """The hourly rows of one (tenant, UTC day, SKU, unit, unpriced reason), summed.

    It keeps what an invoice document shows of those hours, so that a day prices exactly as
    its hours do (segments are cut at midnights only): `hour_mask` has bit h set when hour h
    of `day` has a row (lineage: the line's `hours`), and `positions` are (partition,
    greatest offset) over the rows' positions, ascending by partition (the draft's pins).
    """

    @property
    def day(self) -> date: ...

    @property
    def hour_mask(self) -> int: ...

    @property
    def positions(self) -> tuple[tuple[int, int], ...]: ...


class MeteredDayColumn(Protocol):
    """The daily rows (`MeteredDay`) of one SKU, unit and unpriced reason, as parallel
    columns: row i is (`days[i]`, `quantities[i]`, `hour_masks[i]`)."""

    @property
    def product_sku(self) -> str: ...

    @property
    def unit(self) -> str: ...

    @property
    def unpriced_reason(self) -> str: ...

    @property
    def days(self) -> Sequence[date]: ...

    @property
    def quantities(self) -> Sequence[Decimal]: ...

    @property
    def hour_masks(self) -> Sequence[int]: ...


class MeteredDays(Protocol):
    """A tenant's daily rows read as columns, one `MeteredDayColumn` per (SKU, unit, unpriced
    reason): what a day row holds apart from its `positions`, which only the draft's pins
    use, so they come folded: (partition, greatest offset) over every row, ascending."""

    @property
    def tenant_id(self) -> str: ...

    @property
    def columns(self) -> Sequence[MeteredDayColumn]: ...

    @property
    def positions(self) -> tuple[tuple[int, int], ...]: ...
