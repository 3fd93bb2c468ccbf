"""Usage as of ledger positions (projections.as_of): what an auditor re-checks an invoice with."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from kernel.errors import Invalid
from ledger.sqlite import partition_of
from projections.as_of import parse_positions, usage_as_of
from tests.unit.helpers import catalog
from tests.unit.test_replay import OCT, World, egress, world

__all__ = ["world"]

DAY = (OCT - timedelta(hours=10), OCT + timedelta(hours=14))


def _gb(w: World, positions: dict[int, int]) -> Decimal:
    rows = usage_as_of(w.ledger, "acme", *DAY, positions, catalog().billing_unit)
    return sum((r.quantity for r in rows), Decimal(0))


def test_only_pulses_at_or_below_the_positions_count(world: World) -> None:
    # given: 1, 2 and 4 GB at offsets 0, 1, 2 of acme's partition
    world.publish([egress("acme", "a", "1"), egress("acme", "b", "2"), egress("acme", "c", "4", 1)])
    world.write_all()
    p = partition_of(b"acme", 3)

    # when / then
    assert _gb(world, {p: 0}) == Decimal(1)
    assert _gb(world, {p: 1}) == Decimal(3)
    assert _gb(world, {p: 2}) == Decimal(7)
    assert _gb(world, {(p + 1) % 3: 99}) == Decimal(0)  # another partition: nothing of acme


def test_usage_as_of_a_finalized_invoices_pins_equals_what_it_billed(world: World) -> None:
    # given: October finalized over 5 GB, then 20 GB more arrive late
    world.publish([egress("acme", "a", "5")])
    world.write_all()
    world.invoicing().finalize("acme", "2026-10")
    world.publish([egress("acme", "late", "20", hour=2)])
    world.write_all()
    pins = world.invoicing().finalized("acme", "2026-10").pins["positions"]

    # when
    audited = _gb(world, {int(p): o for p, o in pins.items()})

    # then
    assert audited == Decimal(5) and _gb(world, {0: 99, 1: 99, 2: 99}) == Decimal(25)


@pytest.mark.parametrize("text", ["", "0", "0:", ":1", "a:1", "0:1,0:2", "\u0660:1", "0:-1"])
def test_malformed_positions_are_invalid(text: str) -> None:
    with pytest.raises(Invalid, match="as_of"):
        parse_positions(text)
