"""Daily roll-ups price to the very invoice document their hourly rows price to."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.invoice import canonical_json
from catalog.pricing import draft_invoice, draft_invoice_daily
from catalog.terms import ContractTerms, ContractVersion, Discount, PlanKind
from projections.daily import DailyUsage, roll_up
from projections.hourly import HourlyUsage
from tests.unit.test_pricing import LONG_AGO, PERIOD, TENANT, at, catalog, per_unit, product, row
from tests.unit.test_pricing_properties import plan_of

# Plans and contract versions that change inside May 2024, so lines are cut at several
# midnights; egress has no plan before May 20 (that usage is unpriced by its terms).
PRODUCTS = catalog(
    product("vcpu", (LONG_AGO, per_unit("0.0125", "5")), (date(2024, 5, 16), per_unit("0.03"))),
    product(
        "disk",
        (LONG_AGO, plan_of(PlanKind.GRADUATED, [Decimal(100)], [Decimal("0.1"), Decimal("0.05")])),
        (date(2024, 5, 23), plan_of(PlanKind.VOLUME, [Decimal(50)], [Decimal("0.2"), Decimal(0)])),
    ),
    product("egress", (date(2024, 5, 20), per_unit("0.09"))),
)
TERMS = ContractTerms(
    TENANT,
    (
        ContractVersion(
            LONG_AGO,
            discounts=(Discount(Decimal("7.5"), category="compute"),),
            allowances=(("disk", Decimal(40)),),
        ),
        ContractVersion(
            date(2024, 5, 9),
            discounts=(Discount(Decimal("2.5")),),
            allowances=(("disk", Decimal(60)),),
            commitment=Decimal(50),
        ),
    ),
)
# (sku, unit, reason): priced rows, a unit that is not the billing unit, a SKU the catalog
# lacks, and rows the projector already marked unpriced (two reasons for one SKU and unit).
KINDS = [
    ("vcpu", "vCPU-hour", ""),
    ("disk", "GB-hour", ""),
    ("disk", "MB-hour", ""),
    ("egress", "GB", ""),
    ("gpu.h100", "hour", "SKU gpu.h100 is not in the catalog"),
    ("egress", "parsec", "unknown unit parsec"),
    ("egress", "parsec", "parsec is not a data unit"),
]
quantities = st.decimals(min_value=0, max_value=10**6, places=3) | st.sampled_from(
    [Decimal("1.50"), Decimal("1.5"), Decimal(0), Decimal("0.000"), Decimal("1E+2")]
)


@st.composite
def month_of_usage(draw: st.DrawFn) -> list[HourlyUsage]:
    """Hourly rows of distinct (hour, sku, unit) in May 2024, many on the same days, with
    positions on four partitions and several pulses each."""
    buckets = draw(
        st.lists(st.tuples(st.integers(1, 31), st.sampled_from(KINDS)), max_size=8, unique=True)
    )
    rows = []
    for day, (sku, unit, reason) in buckets:
        for hour in draw(st.sets(st.integers(0, 23), min_size=1, max_size=6)):
            hourly = row(
                sku,
                at(day, hour),
                "0",
                unit=unit,
                offset=draw(st.integers(0, 10**6)),
                partition=draw(st.integers(0, 2)),
                reason=reason,
            )
            rows.append(
                replace(hourly, quantity=draw(quantities), pulse_count=draw(st.integers(1, 5)))
            )
    # (sku, unit) twice in one hour under two reasons would be one hour counted twice
    unique: dict[tuple[object, ...], HourlyUsage] = {}
    for r in rows:
        unique.setdefault((r.hour, r.product_sku, r.unit), r)
    return list(unique.values())


@settings(max_examples=300)
@given(month_of_usage(), st.randoms(use_true_random=False))
def test_a_month_rolled_up_by_day_prices_to_the_same_document(
    hourly: list[HourlyUsage], rnd: random.Random
) -> None:
    # given
    daily = roll_up(hourly)
    rnd.shuffle(daily)

    # when
    from_hours = draft_invoice(TENANT, PERIOD, hourly, PRODUCTS, TERMS)
    from_days = draft_invoice_daily(TENANT, PERIOD, daily, PRODUCTS, TERMS)

    # then
    assert canonical_json(from_days) == canonical_json(from_hours)


def test_roll_up_sums_a_day_per_sku_unit_and_reason() -> None:
    # given: three hours of vcpu on May 3 on two partitions, one on May 4, and an unpriced
    # hour of the same SKU and unit on May 3
    hourly = [
        row("vcpu", at(3, 0), "1.5", offset=7, partition=0),
        row("vcpu", at(3, 5), "2.25", offset=3, partition=1),
        row("vcpu", at(3, 23), "0.25", offset=9, partition=1),
        row("vcpu", at(4, 1), "4", offset=2, partition=0),
        row("vcpu", at(3, 6), "10", offset=1, partition=2, reason="too big"),
    ]

    # when
    daily = roll_up(hourly)

    # then
    assert daily == [
        DailyUsage(TENANT, date(2024, 5, 3), "vcpu", "vCPU-hour", "", Decimal(4), 3,
                   0b1000_0000_0000_0000_0010_0001, ((0, 7), (1, 9))),
        DailyUsage(TENANT, date(2024, 5, 3), "vcpu", "vCPU-hour", "too big", Decimal(10), 1,
                   0b100_0000, ((2, 1),)),
        DailyUsage(TENANT, date(2024, 5, 4), "vcpu", "vCPU-hour", "", Decimal(4), 1,
                   0b10, ((0, 2),)),
    ]  # fmt: skip
    assert daily[0].hours == (at(3, 0), at(3, 5), at(3, 23))


def test_roll_up_refuses_an_hour_given_twice() -> None:
    with pytest.raises(ValueError, match="vcpu vCPU-hour at 2024-05-03T05:00:00"):
        roll_up([row("vcpu", at(3, 5), "1"), row("vcpu", at(3, 5), "2", offset=1)])


def day_row(mask: int, reason: str = "", **changes: object) -> DailyUsage:
    base = DailyUsage(TENANT, date(2024, 5, 3), "vcpu", "vCPU-hour", reason, Decimal(1), 1,
                      mask, ((0, 1),))  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([day_row(0b11), day_row(0b110, reason="x")], "repeats an hour of another row"),
        ([day_row(0)], "hour_mask 0"),
        ([day_row(1 << 24)], "hour_mask 16777216"),
        ([day_row(1, quantity=Decimal(-1))], "quantity -1"),
        ([day_row(1, day=date(2024, 6, 1))], "outside the period 2024-05"),
        ([day_row(1, tenant_id="other")], "belongs to 'other'"),
    ],
)
def test_daily_rows_that_would_miscount_are_refused(rows: list[DailyUsage], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        draft_invoice_daily(TENANT, PERIOD, rows, PRODUCTS, TERMS)


def test_disjoint_hours_of_one_sku_and_unit_under_two_reasons_are_accepted() -> None:
    # when
    draft = draft_invoice_daily(
        TENANT, PERIOD, [day_row(0b01, reason="a"), day_row(0b10, reason="b")], PRODUCTS, TERMS
    )

    # then
    assert [(u.reason, u.quantity) for u in draft.unpriced] == [
        ("a", Decimal(1)),
        ("b", Decimal(1)),
    ]
