"""Daily usage read as columns prices to the very document its day rows price to, and is
refused for the same reasons with the same messages."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.invoice import canonical_json
from catalog.pricing import draft_invoice, draft_invoice_columns, draft_invoice_daily
from projections.daily import DailyUsage, DayColumn, DayColumns, day_columns, roll_up
from projections.hourly import HourlyUsage
from tests.unit.test_pricing import PERIOD, TENANT
from tests.unit.test_pricing_daily import PRODUCTS, TERMS, day_row, month_of_usage


def columns_of(rows: list[DailyUsage], tenant: str = TENANT) -> DayColumns:
    return day_columns(
        tenant,
        ((r.day, r.product_sku, r.unit, r.unpriced_reason, r.quantity, r.hour_mask, r.positions)
         for r in rows),
    )  # fmt: skip


@settings(max_examples=300)
@given(month_of_usage(), st.sampled_from(["acme", "t-1", "z" * 40]), st.randoms())
def test_columns_price_to_the_document_of_their_rows(
    hourly: list[HourlyUsage], tenant: str, rnd: random.Random
) -> None:
    # given: a random tenant's day rows, in any order (so a column's days may be unsorted)
    hourly = [replace(r, tenant_id=tenant) for r in hourly]
    terms = replace(TERMS, tenant_id=tenant)
    daily = roll_up(hourly)
    rnd.shuffle(daily)

    # when
    from_columns = draft_invoice_columns(tenant, PERIOD, columns_of(daily, tenant), PRODUCTS, terms)

    # then
    expected = canonical_json(draft_invoice_daily(tenant, PERIOD, daily, PRODUCTS, terms))
    assert canonical_json(from_columns) == expected
    assert expected == canonical_json(draft_invoice(tenant, PERIOD, hourly, PRODUCTS, terms))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([day_row(0b11), day_row(0b110, reason="x")], "repeats an hour of another row"),
        ([day_row(0b11, day=date(2024, 5, 4)), day_row(0b1)], None),  # other days: fine
        ([day_row(0)], "hour_mask 0"),
        ([day_row(1 << 24)], "hour_mask 16777216"),
        ([day_row(1, quantity=Decimal(-1))], "quantity -1"),
        ([day_row(1, quantity=Decimal("NaN"))], "quantity NaN"),
        ([day_row(1, quantity=Decimal("Infinity"))], "quantity Infinity"),
        ([day_row(1, day=date(2024, 6, 1))], "outside the period 2024-05"),
        ([day_row(1, day=date(2024, 4, 30))], "outside the period 2024-05"),
    ],
)
def test_columns_are_refused_as_their_rows_are(rows: list[DailyUsage], message: str | None) -> None:
    if message is None:
        draft_invoice_daily(TENANT, PERIOD, rows, PRODUCTS, TERMS)
        draft_invoice_columns(TENANT, PERIOD, columns_of(rows), PRODUCTS, TERMS)
        return
    with pytest.raises(ValueError, match=message) as by_rows:
        draft_invoice_daily(TENANT, PERIOD, rows, PRODUCTS, TERMS)
    with pytest.raises(ValueError, match=message) as by_columns:
        draft_invoice_columns(TENANT, PERIOD, columns_of(rows), PRODUCTS, TERMS)
    assert str(by_columns.value) == str(by_rows.value)


def test_a_row_repeating_a_day_of_its_own_column_is_refused() -> None:
    # given: a column that holds May 3 twice with a shared hour (no store gives this)
    column = DayColumn("vcpu", "vCPU-hour", "", [date(2024, 5, 3)] * 2, [Decimal(1)] * 2, [1, 3])
    # when / then
    with pytest.raises(ValueError, match="vcpu vCPU-hour on 2024-05-03 repeats an hour"):
        draft_invoice_columns(TENANT, PERIOD, DayColumns(TENANT, (column,), ()), PRODUCTS, TERMS)


@pytest.mark.parametrize(
    ("usage", "message"),
    [
        (DayColumns("other", (), ()), "daily usage of 'other' given for 'acme'"),
        (
            DayColumns(TENANT, (DayColumn("vcpu", "vCPU-hour", "", [date(2024, 5, 3)]),), ()),
            "of vcpu in vCPU-hour has columns of different lengths",
        ),
        (
            DayColumns(TENANT, (DayColumn("vcpu", "h", "x"), DayColumn("vcpu", "h", "x")), ()),
            "of vcpu in h \\(unpriced: x\\) is given in two columns",
        ),
    ],
)
def test_columns_that_do_not_fit_together_are_refused(usage: DayColumns, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        draft_invoice_columns(TENANT, PERIOD, usage, PRODUCTS, TERMS)
